"""Bridge configuration: YAML in the OpenTelemetry Collector's style.

Every option has a default (an empty file is a valid configuration), is
documented in `config/bridge.yaml`, and is validated: unknown keys and wrong
values are all reported, each with its dotted path. Values may reference the
environment as `${env:VAR}` or `${env:VAR:-default}` (also `${VAR}`), as the
Collector allows.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every bad key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class Duration(float):
    """Seconds, written in YAML as a number of seconds or as `500ms`, `30s`, `5m`, `2h`, `7d`."""


class ByteSize(int):
    """Bytes, written in YAML as a number or as `512KiB`, `16MiB`, `1GiB`, `10MB`."""


@dataclass
class GrpcConfig:
    endpoint: str = "127.0.0.1:4317"
    enabled: bool = True


@dataclass
class HttpConfig:
    endpoint: str = "127.0.0.1:4318"


@dataclass
class OtlpProtocols:
    grpc: GrpcConfig = field(default_factory=GrpcConfig)
    http: HttpConfig = field(default_factory=HttpConfig)


@dataclass
class OtlpReceiverConfig:
    protocols: OtlpProtocols = field(default_factory=OtlpProtocols)
    max_request_body_size: ByteSize = ByteSize(16 * 1024 * 1024)
    max_pending_requests: int = 64
    retry_after: Duration = Duration(1.0)


@dataclass
class ReceiversConfig:
    otlp: OtlpReceiverConfig = field(default_factory=OtlpReceiverConfig)


@dataclass
class SqliteConfig:
    synchronous: str = "full"


@dataclass
class StorageConfig:
    data_dir: str = "./session-bridge-data"
    sqlite: SqliteConfig = field(default_factory=SqliteConfig)


@dataclass
class SessionsConfig:
    inactivity_timeout: Duration = Duration(30 * 60.0)
    project_id: str = "default"


@dataclass
class ApiConfig:
    default_page_size: int = 50


@dataclass
class UserAgentConfig:
    enabled: bool = True


@dataclass
class GeoIpConfig:
    databases: list[str] = field(default_factory=list)


@dataclass
class ClientAddressConfig:
    from_request: bool = False
    trusted_proxies: list[str] = field(default_factory=list)


@dataclass
class CostConfig:
    enabled: bool = True


@dataclass
class EnrichConfig:
    user_agent: UserAgentConfig = field(default_factory=UserAgentConfig)
    geoip: GeoIpConfig = field(default_factory=GeoIpConfig)
    client_address: ClientAddressConfig = field(default_factory=ClientAddressConfig)
    cost: CostConfig = field(default_factory=CostConfig)


@dataclass
class ModelPriceConfig:
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None


@dataclass
class PricingConfig:
    models: dict[str, ModelPriceConfig] = field(default_factory=dict)


@dataclass
class PrivacyConfig:
    pseudonymize_user_id: bool = False
    user_id_key: str = ""
    client_ip: str = "keep"


@dataclass
class LogConfig:
    format: str = "text"
    level: str = "info"


@dataclass
class BridgeConfig:
    receivers: ReceiversConfig = field(default_factory=ReceiversConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    enrich: EnrichConfig = field(default_factory=EnrichConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    log: LogConfig = field(default_factory=LogConfig)


_CHOICES: dict[str, tuple[str, ...]] = {
    "storage.sqlite.synchronous": ("full", "normal", "extra"),
    "log.format": ("text", "json"),
    "log.level": ("debug", "info", "warning", "error"),
    "privacy.client_ip": ("keep", "truncate", "drop"),
}
_RANGES: dict[str, tuple[float, float]] = {
    "receivers.otlp.max_request_body_size": (1024, 1024**3),
    "receivers.otlp.max_pending_requests": (1, 100_000),
    "receivers.otlp.retry_after": (0, 3600),
    "sessions.inactivity_timeout": (1, 365 * 86400),
    "api.default_page_size": (1, 1000),
}
_ENDPOINTS = {"receivers.otlp.protocols.grpc.endpoint", "receivers.otlp.protocols.http.endpoint"}

_OPTIONAL_FLOAT = float | None
_ENV_PATTERN = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
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


def substitute_env(text: str, environ: typing.Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None or value == "":
            return default if default is not None else ""
        return value

    return _ENV_PATTERN.sub(replace, text)


def load(path: Path | None, environ: typing.Mapping[str, str] | None = None) -> BridgeConfig:
    """Read and validate a configuration file (None: the embedded defaults)."""
    if path is None:
        return BridgeConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    return parse(substitute_env(text, environ), str(path))


def parse(text: str, source: str = "<config>") -> BridgeConfig:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML: {exc}"]) from exc
    if document is None:
        document = {}
    problems: list[str] = []
    config = _build(BridgeConfig, document, "", problems)
    if isinstance(config, BridgeConfig):
        _check_relations(config, problems)
    if problems:
        raise ConfigError(problems)
    assert isinstance(config, BridgeConfig)
    return config


def _build(cls: type[Any], data: Any, prefix: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{prefix.rstrip('.') or '<root>'}: expected a mapping, got {_kind(data)}")
        return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, raw in data.items():
        path = f"{prefix}{key}"
        if key not in known:
            problems.append(f"{path}: unknown key (expected one of: {', '.join(sorted(known))})")
            continue
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            values[key] = _build(hint, raw if raw is not None else {}, f"{path}.", problems)
        else:
            converted = _convert(hint, raw, path, problems)
            if converted is not None:
                values[key] = converted
    return cls(**values)


def _convert(hint: Any, raw: Any, path: str, problems: list[str]) -> Any:
    before = len(problems)
    value: Any = None
    if hint is Duration:
        value = _duration(raw)
        if value is None:
            problems.append(f"{path}: expected a duration such as 30s, 5m or 2h, got {raw!r}")
    elif hint is ByteSize:
        value = _size(raw)
        if value is None:
            problems.append(f"{path}: expected a size such as 16MiB or 1048576, got {raw!r}")
    elif hint is bool:
        if isinstance(raw, bool):
            value = raw
        else:
            problems.append(f"{path}: expected true or false, got {raw!r}")
    elif hint in (float, _OPTIONAL_FLOAT):
        if raw is None and hint == _OPTIONAL_FLOAT:
            return None
        if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
            value = float(raw)
        else:
            problems.append(f"{path}: expected a number >= 0, got {raw!r}")
    elif hint == list[str]:
        if isinstance(raw, list) and all(isinstance(item, str) and item for item in raw):
            value = list(raw)
        else:
            problems.append(f"{path}: expected a list of strings, got {raw!r}")
    elif typing.get_origin(hint) is dict:
        item_type = typing.get_args(hint)[1]
        if isinstance(raw, dict):
            value = {
                str(key): _build(item_type, item, f"{path}.{key}.", problems)
                for key, item in raw.items()
            }
        else:
            problems.append(f"{path}: expected a mapping, got {_kind(raw)}")
    elif hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            value = raw
        else:
            problems.append(f"{path}: expected an integer, got {raw!r}")
    elif hint is str:
        if isinstance(raw, str | int | float) and not isinstance(raw, bool):
            value = str(raw)
        else:
            problems.append(f"{path}: expected a string, got {_kind(raw)}")
    else:  # pragma: no cover - a field type this loader does not know
        raise TypeError(f"unsupported config field type {hint!r} at {path}")
    if len(problems) > before:
        return None
    return _check(path, value, problems)


def _check(path: str, value: Any, problems: list[str]) -> Any:
    choices = _CHOICES.get(path)
    if choices is not None and str(value).lower() not in choices:
        problems.append(f"{path}: must be one of {', '.join(choices)}, got {value!r}")
        return None
    if choices is not None:
        return str(value).lower()
    bounds = _RANGES.get(path)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        problems.append(f"{path}: must be between {bounds[0]:g} and {bounds[1]:g}, got {value!r}")
        return None
    if path in _ENDPOINTS:
        try:
            split_endpoint(value)
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
            return None
    return value


def _check_relations(config: BridgeConfig, problems: list[str]) -> None:
    privacy = config.privacy
    if privacy.pseudonymize_user_id and len(privacy.user_id_key.encode()) < 16:
        problems.append(
            "privacy.user_id_key: must be at least 16 bytes when privacy.pseudonymize_user_id"
            " is true (use ${env:VAR} to keep it out of the file)"
        )
    for index, network in enumerate(config.enrich.client_address.trusted_proxies):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            problems.append(
                f"enrich.client_address.trusted_proxies[{index}]: not an IP network: {network!r}"
            )
    for model, price in config.pricing.models.items():
        if not model.strip():
            problems.append("pricing.models: a model name is empty")
        if price.input_per_mtok == 0 and price.output_per_mtok == 0:
            problems.append(f"pricing.models.{model}: set input_per_mtok and/or output_per_mtok")


def _duration(raw: Any) -> Duration | None:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return Duration(raw)
    if isinstance(raw, str) and (m := _DURATION.match(raw)):
        return Duration(float(m.group(1)) * _DURATION_UNITS[m.group(2)])
    return None


def _size(raw: Any) -> ByteSize | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return ByteSize(raw)
    if isinstance(raw, str) and (m := _SIZE.match(raw)):
        unit = m.group(2).lower() if m.group(2) else None
        return ByteSize(int(m.group(1)) * _SIZE_UNITS[unit])
    return None


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port)."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {endpoint!r}")
    return host.strip("[]"), int(port)


__all__ = ["BridgeConfig", "ByteSize", "ConfigError", "Duration", "load", "parse", "split_endpoint"]
