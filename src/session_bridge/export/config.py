"""The exporters' configuration and their registry: type name -> config model + constructor.

`exporters:` is written as the Collector writes components, a map keyed `type` or
`type/name` (`ingestion/langfuse: {...}`, `otlp/tempo: {...}`); the older list form
(`- type: otlp`, `name: tempo`) is still read. Adding an exporter is its module, its config
model here and one line in `EXPORTERS`. The constructors import their module when called:
reading a configuration does not load gRPC or an HTTP client.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field

from session_bridge.configkit import (
    NOT_BOOL,
    ByteSize,
    Duration,
    DurationValue,
    NonNegative,
    Section,
    SizeValue,
    StringMap,
    between,
    check_tree,
    join,
    kind,
    one_of,
    validate,
)

if TYPE_CHECKING:
    from session_bridge.export.base import Exporter


class ExportRetryConfig(Section):
    initial_interval: DurationValue = Duration(1.0)
    max_interval: DurationValue = Duration(30.0)
    multiplier: NonNegative = 2.0
    randomization_factor: NonNegative = 0.5
    max_elapsed_time: DurationValue = Duration(0.0)  # 0: retry until delivered

    def check(self, path: str) -> list[str]:
        problems = []
        if self.multiplier < 1 or not 0 <= self.randomization_factor < 1:
            problems.append(f"{path}: multiplier >= 1, randomization_factor in [0, 1)")
        if self.initial_interval > self.max_interval:
            problems.append(f"{path}.initial_interval: must not exceed max_interval")
        return problems


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ExporterCommon(Section):
    """Settings every exporter has; `type` picks the exporter (see `EXPORTERS`)."""

    MAX_BATCH: ClassVar[int] = 64 << 20  # the largest max_batch_size the exporter accepts

    type: str = ""
    name: str = ""  # default: the type
    queue_capacity: SizeValue = ByteSize(1024**3)
    max_batch_size: SizeValue = ByteSize(4 * 1024 * 1024)
    flush_interval: DurationValue = Duration(1.0)
    settle_delay: DurationValue = Duration(2.0)
    timeout: DurationValue = Duration(30.0)
    unhealthy_after: DurationValue = Duration(300.0)
    retry: ExportRetryConfig = Field(default_factory=ExportRetryConfig)

    @property
    def label(self) -> str:
        """The exporter's name: in metrics, logs, the export log and the dead-letter store."""
        return self.name or self.type

    def check(self, path: str) -> list[str]:
        problems = []
        if not _NAME.match(self.label):
            problems.append(f"{path}.name: use letters, digits, _ . - (got {self.label!r})")
        if not 1024 <= self.max_batch_size <= self.MAX_BATCH:
            problems.append(
                f"{path}.max_batch_size: must be between 1024 and {self.MAX_BATCH} bytes"
            )
        if self.queue_capacity < self.max_batch_size:
            problems.append(f"{path}.queue_capacity: must be at least max_batch_size")
        if self.timeout <= 0:
            problems.append(f"{path}.timeout: must be more than 0")
        return problems


class FileExporterConfig(ExporterCommon):
    type: str = "file"
    path: str = ""  # default: <data_dir>/export/<name>.jsonl (.binpb for protobuf)
    format: Annotated[str, one_of("ingestion", "protobuf")] = "ingestion"
    max_file_size: Annotated[SizeValue, between(1024, 1 << 50)] = ByteSize(64 * 1024 * 1024)
    max_files: Annotated[int, NOT_BOOL, between(1, 1_000_000)] = 5
    fsync: bool = True


_LANGFUSE_ENV = {
    "base_url": ("LANGFUSE_BASE_URL", "LANGFUSE_HOST"),
    "public_key": ("LANGFUSE_PUBLIC_KEY",),
    "secret_key": ("LANGFUSE_SECRET_KEY",),
}


class IngestionExporterConfig(ExporterCommon):
    MAX_BATCH: ClassVar[int] = 3_500_000  # the API's documented limit (bodies > 4.5 MB: 413)

    type: str = "ingestion"
    base_url: str = ""  # default: $LANGFUSE_BASE_URL, else $LANGFUSE_HOST
    public_key: str = ""  # default: $LANGFUSE_PUBLIC_KEY
    secret_key: str = ""  # default: $LANGFUSE_SECRET_KEY
    max_batch_size: SizeValue = ByteSize(MAX_BATCH)
    max_event_size: Annotated[SizeValue, between(16384, 1 << 40)] = ByteSize(1_000_000)

    def check(self, path: str) -> list[str]:
        problems = super().check(path)
        for key, variables in _LANGFUSE_ENV.items():
            if not ingestion_setting(self, key):
                problems.append(f"{path}.{key}: required (or set {' or '.join(variables)})")
        return problems


def ingestion_setting(exporter: IngestionExporterConfig, key: str) -> str:
    """An ingestion exporter's base_url/public_key/secret_key: the configured value, else
    the environment variable the Langfuse SDKs read."""
    value: str = getattr(exporter, key)
    for variable in _LANGFUSE_ENV[key]:
        value = value or os.environ.get(variable, "")
    return value


class OtlpExporterConfig(ExporterCommon):
    type: str = "otlp"
    endpoint: str = ""
    protocol: Annotated[str, one_of("http/protobuf", "grpc")] = "http/protobuf"
    headers: StringMap = Field(default_factory=dict)
    compression: Annotated[str, one_of("gzip", "none")] = "gzip"

    def check(self, path: str) -> list[str]:
        problems = super().check(path)
        if not self.endpoint.strip():
            problems.append(f"{path}.endpoint: required (e.g. http://collector:4318)")
        return problems


# -- the registry ---------------------------------------------------------------------------


def _file(config: Any, data_dir: Path) -> Exporter:
    from session_bridge.export.file import FileExporter

    return FileExporter(config, data_dir)


def _ingestion(config: Any, data_dir: Path) -> Exporter:
    from session_bridge.export.ingestion import IngestionExporter

    return IngestionExporter(config)


def _otlp(config: Any, data_dir: Path) -> Exporter:
    from session_bridge.export.otlp import OtlpExporter

    return OtlpExporter(config)


@dataclass(frozen=True)
class ExporterType:
    config: type[ExporterCommon]
    create: Callable[[Any, Path], Exporter]  # (its config, the data dir) -> the exporter


EXPORTERS: dict[str, ExporterType] = {
    "file": ExporterType(FileExporterConfig, _file),
    "ingestion": ExporterType(IngestionExporterConfig, _ingestion),
    "otlp": ExporterType(OtlpExporterConfig, _otlp),
}


def create_exporter(config: ExporterCommon, data_dir: Path) -> Exporter:
    return EXPORTERS[config.type].create(config, data_dir)


def default_exporters() -> list[ExporterCommon]:
    return [FileExporterConfig()]


def _entries(raw: Any, path: str, problems: list[str]) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(key path, body, type and name) for each exporter of either form, in document order."""
    if isinstance(raw, dict):
        for key, body in raw.items():
            at = join(path, key)
            type_name, _, name = str(key).partition("/")
            if isinstance(body, dict) and {"type", "name"} & body.keys():
                problems.append(f"{at}: the key names the type and name (write type/name)")
            else:
                yield at, body, {"type": type_name, **({"name": name} if name else {})}
    elif isinstance(raw, list):
        for index, body in enumerate(raw):
            at = join(path, index)
            if isinstance(body, dict):
                rest = {key: value for key, value in body.items() if key != "type"}
                yield at, rest, {"type": body.get("type")}
            else:
                problems.append(f"{at}: expected a mapping with a type, got {kind(body)}")
    elif raw is not None:
        problems.append(f"{path}: expected a mapping of exporters, got {kind(raw)}")


def parse_exporters(raw: Any, path: str, problems: list[str]) -> list[ExporterCommon]:
    """`exporters:` in either form, every exporter checked, names unique."""
    exporters: list[ExporterCommon] = []
    seen: set[str] = set()
    for at, body, identity in _entries(raw, path, problems):
        registered = EXPORTERS.get(identity["type"])
        if registered is None:
            choices = ", ".join(sorted(EXPORTERS))
            problems.append(f"{at}.type: must be one of {choices}, got {identity['type']!r}")
            continue
        if body is not None and not isinstance(body, dict):
            problems.append(f"{at}: expected a mapping, got {kind(body)}")
            continue
        config = validate(registered.config, {**(body or {}), **identity}, at, problems)
        if config is None:
            continue
        problems.extend(check_tree(config, at))
        if config.label in seen:
            problems.append(f"{at}.name: {config.label!r} is used by another exporter")
        seen.add(config.label)
        exporters.append(config)
    return exporters
