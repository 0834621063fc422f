"""The exporters' registry: type name -> config model + constructor, and `exporters:`.

`exporters:` is written as the Collector writes components, a map keyed `type` or
`type/name` (`ingestion/langfuse: {...}`, `otlp/tempo: {...}`); the older list form
(`- type: otlp`, `name: tempo`) is still read. Each exporter's module declares its config
model and its exporter (as a Collector component's package does); adding an exporter is its
module and one line in `EXPORTERS`. Settings every exporter has are in `export/common.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from session_bridge.configkit import (
    check_tree,
    join,
    kind,
    validate,
)
from session_bridge.export import debug, file, ingestion, otlp
from session_bridge.export.base import Exporter
from session_bridge.export.common import ExporterCommon, ExportRetryConfig

__all__ = ["ExportRetryConfig", "ExporterCommon"]  # declared in export/common.py


# -- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExporterType:
    config: type[ExporterCommon]
    create: Callable[[Any, Path], Exporter]  # (its config, the data dir) -> the exporter


EXPORTERS: dict[str, ExporterType] = {
    "file": ExporterType(file.FileExporterConfig, file.create),
    "ingestion": ExporterType(ingestion.IngestionExporterConfig, ingestion.create),
    "otlp": ExporterType(otlp.OtlpExporterConfig, otlp.create),
    "debug": ExporterType(debug.DebugExporterConfig, debug.create),
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
