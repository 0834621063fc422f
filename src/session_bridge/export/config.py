"""The exporters' configuration and their registry: type name -> config model + constructor.

`exporters:` is written as the Collector writes components, a map keyed `type` or
`type/name` (`ingestion/langfuse: {...}`, `otlp/tempo: {...}`); the older list form
(`- type: otlp`, `name: tempo`) is still read. Adding an exporter is its module (its config
model may live there, as `export/debug.py`'s does) and one line in `EXPORTERS`. The
constructors import their module when called: reading a configuration does not load gRPC or
an HTTP client.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field

from session_bridge.configkit import (
    NOT_BOOL,
    ByteSize,
    SizeValue,
    StringMap,
    between,
    check_tree,
    join,
    kind,
    one_of,
    validate,
)
from session_bridge.export.common import ExporterCommon, ExportRetryConfig
from session_bridge.export.debug import DebugExporterConfig

if TYPE_CHECKING:
    from session_bridge.export.base import Exporter

__all__ = ["ExportRetryConfig", "ExporterCommon"]  # declared in export/common.py


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


def _debug(config: Any, data_dir: Path) -> Exporter:
    from session_bridge.export.debug import DebugExporter

    return DebugExporter(config)


@dataclass(frozen=True)
class ExporterType:
    config: type[ExporterCommon]
    create: Callable[[Any, Path], Exporter]  # (its config, the data dir) -> the exporter


EXPORTERS: dict[str, ExporterType] = {
    "file": ExporterType(FileExporterConfig, _file),
    "ingestion": ExporterType(IngestionExporterConfig, _ingestion),
    "otlp": ExporterType(OtlpExporterConfig, _otlp),
    "debug": ExporterType(DebugExporterConfig, _debug),
}


def create_exporter(config: ExporterCommon, data_dir: Path) -> Exporter:
    return EXPORTERS[config.type].create(config, data_dir)


def default_exporters() -> list[ExporterCommon]:
    # none: an exporter costs ingest (the file exporter ~3x its CPU), so it is chosen, not given
    return []


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
