"""What every component's configuration model is built from: a strict pydantic base
(`Section`), the Collector's value types (durations, sizes, bounded numbers, choices),
`${env:VAR}` expansion, and the validation that turns a YAML mapping into a model plus
every problem in it, each named by its full key path.

A model checks its own fields (types, bounds, choices); what relates fields to each other,
to the environment or to the file system is its `check(path)`, run once the whole document
has been read, so that one bad value does not hide the other problems.
"""

from __future__ import annotations

import copy
import math
import re
import typing
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every bad key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("config", "{message}", {"message": message})


class Section(BaseModel):
    """A block of the configuration: unknown keys are errors; an empty block (`grpc:`)
    means the defaults."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    # blocks checked where they are read, under the paths the document gives them
    CHECKED_APART: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        return {} if data is None else data

    def check(self, path: str) -> list[str]:
        """Problems between this block's fields, or with the files and environment they
        name (`path`: the block's key path); its sub-blocks are checked on their own."""
        return []


class Duration(float):
    """Seconds, written in YAML as a number of seconds or as `500ms`, `30s`, `5m`, `2h`, `7d`."""


class ByteSize(int):
    """Bytes, written in YAML as a number or as `512KiB`, `16MiB`, `1GiB`, `10MB`."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 10**3,
    "kib": 2**10,
    "mb": 10**6,
    "mib": 2**20,
    "gb": 10**9,
    "gib": 2**30,
}


def _duration(raw: Any) -> Duration:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return Duration(raw)
    if isinstance(raw, str) and (m := _DURATION.match(raw)):
        return Duration(float(m.group(1)) * _DURATION_UNITS[m.group(2)])
    raise _problem(f"expected a duration such as 30s, 5m or 2h, got {raw!r}")


def _size(raw: Any) -> ByteSize:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return ByteSize(raw)
    if isinstance(raw, str) and (m := _SIZE.match(raw)):
        unit = m.group(2).lower() if m.group(2) else None
        return ByteSize(int(m.group(1)) * _SIZE_UNITS[unit])
    raise _problem(f"expected a size such as 16MiB or 1048576, got {raw!r}")


def between(low: float, high: float) -> AfterValidator:
    """A bound on a number (a duration in seconds, a size in bytes)."""

    def check(value: Any) -> Any:
        if not low <= value <= high:
            raise _problem(f"must be between {low:g} and {high:g}, got {value!r}")
        return value

    return AfterValidator(check)


def one_of(*choices: str) -> BeforeValidator:
    """A word from a fixed list (case-insensitive; kept lower-case)."""

    def check(raw: Any) -> Any:
        text = str(raw).lower() if isinstance(raw, str | int | float) else None
        if text not in choices:
            raise _problem(f"must be one of {', '.join(choices)}, got {raw!r}")
        return text

    return BeforeValidator(check)


def _not_bool(raw: Any) -> Any:
    if isinstance(raw, bool):  # YAML's true is not 1
        raise _problem(f"expected a number, got {raw!r}")
    return raw


NOT_BOOL = BeforeValidator(_not_bool)


def _non_negative(value: float) -> float:
    if value < 0 or math.isnan(value):
        raise _problem(f"expected a number >= 0, got {value!r}")
    return value


DurationValue = Annotated[Duration, PlainValidator(_duration)]
SizeValue = Annotated[ByteSize, PlainValidator(_size)]
NonNegative = Annotated[float, NOT_BOOL, AfterValidator(_non_negative)]


def _nonempty_strings(raw: Any) -> Any:
    if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
        raise _problem(f"expected a list of strings, got {raw!r}")
    return raw


Strings = Annotated[list[str], BeforeValidator(_nonempty_strings)]


def _string_map(raw: Any) -> Any:
    if not isinstance(raw, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in raw.values()
    ):
        raise _problem(f"expected a mapping of strings, got {raw!r}")
    return {str(key): str(value) for key, value in raw.items()}


StringMap = Annotated[dict[str, str], BeforeValidator(_string_map)]


# -- ${env:VAR} ------------------------------------------------------------------------------

_ENV_PATTERN = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str, environ: Mapping[str, str], path: str, problems: list[str]) -> str:
    """`${env:VAR}`, `${env:VAR:-default}` and `${VAR}` in one string scalar of the parsed
    document: the value is inserted as text, so a `#`, quote, newline or `: ` in it stays
    part of this one value (a number or flag option reads the text as YAML would). A
    variable that is unset (or empty) takes its default; unset with no default is a
    problem named with the option's path."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        if found is None:
            missing.append(name)
        return ""

    expanded = _ENV_PATTERN.sub(replace, value)
    for name in missing:
        problems.append(
            f"{path}: environment variable {name} is not set"
            f" (set it, or give a default: ${{env:{name}:-value}})"
        )
    return expanded


def expand_document(node: Any, environ: Mapping[str, str], path: str, problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {
            key: expand_document(item, environ, join(path, key), problems)
            for key, item in node.items()
        }
    if isinstance(node, list):
        return [
            expand_document(item, environ, f"{path}[{index}]", problems)
            for index, item in enumerate(node)
        ]
    if isinstance(node, str) and "$" in node:
        return expand_env(node, environ, path, problems)
    return node


def read_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML: {exc}"]) from exc


# -- validation -----------------------------------------------------------------------------


def join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


_MESSAGES = {
    "model_type": "expected a mapping, got {kind}",
    "model_attributes_type": "expected a mapping, got {kind}",
    "dict_type": "expected a mapping, got {kind}",
    "list_type": "expected a list, got {kind}",
    "int_type": "expected an integer, got {value!r}",
    "int_parsing": "expected an integer, got {value!r}",
    "int_from_float": "expected an integer, got {value!r}",
    "bool_type": "expected true or false, got {value!r}",
    "bool_parsing": "expected true or false, got {value!r}",
    "float_type": "expected a number, got {value!r}",
    "float_parsing": "expected a number, got {value!r}",
    "string_type": "expected a string, got {kind}",
}


def _field_model(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class reached from `model` along `loc` (for the keys an error may list)."""
    current: Any = model
    for step in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(step))
            if field is None:
                return None
            current = field.annotation
        else:
            args = typing.get_args(current)
            current = args[-1] if args else None
        while typing.get_origin(current) is Annotated:
            current = typing.get_args(current)[0]
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _describe(model: type[BaseModel], error: Any, path: str) -> str:
    loc = tuple(error["loc"])
    where = path
    for step in loc:
        where = join(where, step)
    where = where or "<root>"
    kind_of = error["type"]
    if kind_of == "extra_forbidden":
        parent = _field_model(model, loc[:-1])
        known = ", ".join(sorted(parent.model_fields)) if parent else ""
        return f"{where}: unknown key (expected one of: {known})"
    if kind_of == "value_error":
        return f"{where}: {error['ctx']['error']}"
    template = _MESSAGES.get(kind_of)
    if template is not None:
        value = error.get("input")
        return f"{where}: " + template.format(kind=kind(value), value=value)
    return f"{where}: {error['msg']}"


def _drop(document: Any, loc: tuple[int | str, ...], reset: bool) -> Any:
    """`document` without the value at `loc` (that key takes its default)."""
    if not loc:
        return {}
    node = document
    for step in loc[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return document
    if isinstance(node, dict):
        node.pop(loc[-1], None)
    elif isinstance(node, list) and isinstance(loc[-1], int) and loc[-1] < len(node):
        if reset and isinstance(node[loc[-1]], dict):
            node[loc[-1]] = {}  # a block: its defaults, so later items keep their index
        else:
            del node[loc[-1]]
    return document


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], raw: Any, path: str, problems: list[str]) -> M | None:
    """`raw` as a `model`, every problem appended to `problems` with its full key path;
    a bad value takes its default so that the rest can still be checked (None: not even
    the defaults would do)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
    problems.extend(_describe(model, error, path) for error in errors)
    document = copy.deepcopy(raw)
    for attempt in range(3):  # each pass removes the values the previous one refused
        for error in reversed(errors):  # the later items of a list first
            document = _drop(document, tuple(error["loc"]), reset=attempt == 0)
        try:
            return model.model_validate(document)
        except ValidationError as exc:
            errors = exc.errors()
    return None  # pragma: no cover - defaults always validate


def _children(section: Section, path: str) -> Iterator[tuple[Section, str]]:
    for name in type(section).model_fields:
        if name in section.CHECKED_APART:
            continue
        value = getattr(section, name)
        at = join(path, name)
        if isinstance(value, Section):
            yield value, at
        elif isinstance(value, list):
            yield from ((v, join(at, i)) for i, v in enumerate(value) if isinstance(v, Section))
        elif isinstance(value, dict):
            yield from ((v, join(at, k)) for k, v in value.items() if isinstance(v, Section))


def check_tree(section: Section, path: str) -> list[str]:
    """`check` of `section` and of every block inside it, outermost first."""
    problems = section.check(path)
    for child, at in _children(section, path):
        problems.extend(check_tree(child, at))
    return problems
