"""Bridge configuration: YAML in the OpenTelemetry Collector's style.

Every option has a default (an empty file is a valid configuration), is documented in
`config/bridge.yaml`, and is validated: unknown keys and wrong values are all reported,
each with its dotted path. Values may reference the environment as `${env:VAR}` or
`${env:VAR:-default}` (also `${VAR}`), expanded after parsing in string values only, as
the Collector does.

Each component's block is declared beside it (`receivers/config.py`, `store/config.py`,
`export/`: each exporter's module, registered in `export/config.py`; `enrich/config.py`,
`keys.py`); this module assembles them.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field

from session_bridge.configkit import (
    NOT_BOOL,
    ByteSize,
    ConfigError,
    Duration,
    DurationValue,
    Section,
    between,
    check_tree,
    expand_document,
    kind,
    one_of,
    read_yaml,
    validate,
)
from session_bridge.enrich.config import EnrichConfig, PricingConfig, PrivacyConfig
from session_bridge.export.config import ExporterCommon, default_exporters, parse_exporters
from session_bridge.keys import PROJECT_ID, PROJECT_ID_PATTERN, AuthConfig
from session_bridge.logs import LogConfig
from session_bridge.receivers.config import ReceiversConfig
from session_bridge.store.config import StorageConfig


class SessionsConfig(Section):
    inactivity_timeout: Annotated[DurationValue, between(1, 365 * 86400)] = Duration(30 * 60.0)
    project_id: str = "default"

    def check(self, path: str) -> list[str]:
        if not PROJECT_ID.match(self.project_id):
            return [f"{path}.project_id: must match {PROJECT_ID_PATTERN}, got {self.project_id!r}"]
        return []


PUBLIC_ENDPOINTS = ("metrics", "openapi")


class ApiConfig(Section):
    default_page_size: Annotated[int, NOT_BOOL, between(1, 1000)] = 50
    # With API keys configured, /metrics and /openapi.json need a key unless listed here.
    public_endpoints: list[Annotated[str, one_of(*PUBLIC_ENDPOINTS)]] = Field(default_factory=list)


class BridgeConfig(Section):
    receivers: ReceiversConfig = Field(default_factory=ReceiversConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    sessions: SessionsConfig = Field(default_factory=SessionsConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    enrich: EnrichConfig = Field(default_factory=EnrichConfig)
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    # each item is its exporter type's model (see export.config)
    exporters: list[ExporterCommon] = Field(default_factory=default_exporters)

    CHECKED_APART: ClassVar[frozenset[str]] = frozenset({"exporters"})

    def check(self, path: str) -> list[str]:
        if self.receivers.otlp.auth == "required" and not self.auth.api_keys:
            return ["receivers.otlp.auth: required needs at least one auth.api_keys entry"]
        return []


def load(path: Path | None, environ: typing.Mapping[str, str] | None = None) -> BridgeConfig:
    """Read and validate a configuration file (None: the embedded defaults); `${env:...}`
    references are expanded from `environ` (default: the process environment)."""
    if path is None:
        return BridgeConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    return parse(text, str(path), os.environ if environ is None else environ)


def parse(
    text: str, source: str = "<config>", environ: typing.Mapping[str, str] | None = None
) -> BridgeConfig:
    """Validate a configuration document; with `environ`, expand its `${env:...}` first
    (after YAML parsing, in string values only, as the Collector does)."""
    document = read_yaml(text, source)
    if document is None:
        document = {}
    problems: list[str] = []
    if environ is not None:
        document = expand_document(document, environ, "", problems)
    if not isinstance(document, dict):
        raise ConfigError([f"<root>: expected a mapping, got {kind(document)}"])
    sections: dict[str, Any] = {}
    fields = BridgeConfig.model_fields
    for key, raw in document.items():
        field = fields.get(key)
        if field is None:
            known = ", ".join(sorted(fields))
            problems.append(f"{key}: unknown key (expected one of: {known})")
        elif key == "exporters":
            sections[key] = parse_exporters(raw, key, problems)
        else:
            section = validate(typing.cast(type[Section], field.annotation), raw, key, problems)
            if section is not None:
                sections[key] = section
    config = BridgeConfig(**sections)
    problems.extend(check_tree(config, ""))
    if problems:
        raise ConfigError(problems)
    config.auth.hash_secrets()
    return config


__all__ = [
    "PROJECT_ID_PATTERN",
    "BridgeConfig",
    "ByteSize",
    "ConfigError",
    "Duration",
    "load",
    "parse",
]
