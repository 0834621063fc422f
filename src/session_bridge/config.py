"""Bridge configuration: YAML in the OpenTelemetry Collector's style.

Every option has a default (an empty file is a valid configuration), is
documented in `config/bridge.yaml`, and is validated: unknown keys and wrong
values are all reported, each with its dotted path. Values may reference the
environment as `${env:VAR}` or `${env:VAR:-default}` (also `${VAR}`), expanded after
parsing in string values only, as the Collector does.
"""

from __future__ import annotations

import dataclasses
import hashlib
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
class TlsConfig:
    """A listener's TLS (the Collector's `tls:` block): off unless cert_file is set."""

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""  # set: clients must present a certificate it signed (mTLS)
    min_version: str = "1.2"
    reload_interval: Duration = Duration(0.0)  # 0: the files are read once, at start

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)


@dataclass
class KeepaliveServerParameters:
    max_connection_idle: Duration = Duration(300.0)  # 0: never
    max_connection_age: Duration = Duration(0.0)  # 0: never
    max_connection_age_grace: Duration = Duration(0.0)  # 0: forever
    time: Duration = Duration(7200.0)
    timeout: Duration = Duration(20.0)


@dataclass
class KeepaliveEnforcementPolicy:
    min_time: Duration = Duration(300.0)
    permit_without_stream: bool = False


@dataclass
class GrpcKeepaliveConfig:
    server_parameters: KeepaliveServerParameters = field(default_factory=KeepaliveServerParameters)
    enforcement_policy: KeepaliveEnforcementPolicy = field(
        default_factory=KeepaliveEnforcementPolicy
    )


@dataclass
class GrpcConfig:
    endpoint: str = "127.0.0.1:4317"
    enabled: bool = True
    max_concurrent_streams: int = 100
    max_connections: int = 1000
    keepalive: GrpcKeepaliveConfig = field(default_factory=GrpcKeepaliveConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)


@dataclass
class HttpConfig:
    endpoint: str = "127.0.0.1:4318"
    read_header_timeout: Duration = Duration(10.0)
    read_timeout: Duration = Duration(60.0)
    idle_timeout: Duration = Duration(60.0)
    max_connections: int = 1000
    tls: TlsConfig = field(default_factory=TlsConfig)


@dataclass
class OtlpProtocols:
    grpc: GrpcConfig = field(default_factory=GrpcConfig)
    http: HttpConfig = field(default_factory=HttpConfig)


@dataclass
class OtlpReceiverConfig:
    protocols: OtlpProtocols = field(default_factory=OtlpProtocols)
    max_request_body_size: ByteSize = ByteSize(16 * 1024 * 1024)
    max_pending_requests: int = 64
    workers: int = 1
    retry_after: Duration = Duration(1.0)
    auth: str = "optional"


@dataclass
class ReceiversConfig:
    otlp: OtlpReceiverConfig = field(default_factory=OtlpReceiverConfig)


@dataclass
class SqliteConfig:
    synchronous: str = "full"


@dataclass
class PostgresConfig:
    dsn: str = ""
    schema: str = "public"
    pool_size: int = 4
    connect_timeout: Duration = Duration(10.0)


@dataclass
class RetentionConfig:
    spans: Duration = Duration(0.0)
    sessions: Duration = Duration(0.0)
    interval: Duration = Duration(60.0)
    batch_size: int = 1000


@dataclass
class StorageConfig:
    backend: str = "sqlite"
    data_dir: str = "./session-bridge-data"
    sqlite: SqliteConfig = field(default_factory=SqliteConfig)
    postgres: PostgresConfig = field(default_factory=PostgresConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)


@dataclass
class SessionsConfig:
    inactivity_timeout: Duration = Duration(30 * 60.0)
    project_id: str = "default"


PUBLIC_ENDPOINTS = ("metrics", "openapi")


@dataclass
class ApiConfig:
    default_page_size: int = 50
    # With API keys configured, /metrics and /openapi.json need a key unless listed here.
    public_endpoints: list[str] = field(default_factory=list)


@dataclass
class ApiKeyConfig:
    project_id: str = ""
    public_key: str = ""
    secret_key: str = ""
    secret_key_sha256: str = ""


@dataclass
class AuthConfig:
    api_keys: list[ApiKeyConfig] = field(default_factory=list)


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
class ExportRetryConfig:
    initial_interval: Duration = Duration(1.0)
    max_interval: Duration = Duration(30.0)
    multiplier: float = 2.0
    randomization_factor: float = 0.5
    max_elapsed_time: Duration = Duration(0.0)  # 0: retry until delivered


@dataclass
class ExporterCommon:
    """Settings every exporter has; `type` picks the exporter (see `ExporterConfig`)."""

    type: str = ""
    name: str = ""  # default: the type
    queue_capacity: ByteSize = ByteSize(1024**3)
    max_batch_size: ByteSize = ByteSize(4 * 1024 * 1024)
    flush_interval: Duration = Duration(1.0)
    settle_delay: Duration = Duration(2.0)
    timeout: Duration = Duration(30.0)
    unhealthy_after: Duration = Duration(300.0)
    retry: ExportRetryConfig = field(default_factory=ExportRetryConfig)

    @property
    def label(self) -> str:
        """The exporter's name: in metrics, logs, the export log and the dead-letter store."""
        return self.name or self.type


@dataclass
class FileExporterConfig(ExporterCommon):
    type: str = "file"
    path: str = ""  # default: <data_dir>/export/<name>.jsonl (.binpb for protobuf)
    format: str = "ingestion"
    max_file_size: ByteSize = ByteSize(64 * 1024 * 1024)
    max_files: int = 5
    fsync: bool = True


INGESTION_MAX_BATCH = 3_500_000  # the ingestion API's documented limit (bodies > 4.5 MB: 413)


@dataclass
class IngestionExporterConfig(ExporterCommon):
    type: str = "ingestion"
    base_url: str = ""  # default: $LANGFUSE_BASE_URL, else $LANGFUSE_HOST
    public_key: str = ""  # default: $LANGFUSE_PUBLIC_KEY
    secret_key: str = ""  # default: $LANGFUSE_SECRET_KEY
    max_batch_size: ByteSize = ByteSize(INGESTION_MAX_BATCH)
    max_event_size: ByteSize = ByteSize(1_000_000)


@dataclass
class OtlpExporterConfig(ExporterCommon):
    type: str = "otlp"
    endpoint: str = ""
    protocol: str = "http/protobuf"
    headers: dict[str, str] = field(default_factory=dict)
    compression: str = "gzip"


ExporterConfig = FileExporterConfig | IngestionExporterConfig | OtlpExporterConfig


@dataclass
class BridgeConfig:
    receivers: ReceiversConfig = field(default_factory=ReceiversConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    sessions: SessionsConfig = field(default_factory=SessionsConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    enrich: EnrichConfig = field(default_factory=EnrichConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    log: LogConfig = field(default_factory=LogConfig)
    exporters: list[ExporterConfig] = field(default_factory=lambda: [FileExporterConfig()])


_CHOICES: dict[str, tuple[str, ...]] = {
    "storage.backend": ("sqlite", "postgres"),
    "storage.sqlite.synchronous": ("full", "normal", "extra"),
    "log.format": ("text", "json"),
    "log.level": ("debug", "info", "warning", "error"),
    "privacy.client_ip": ("keep", "truncate", "drop"),
    "receivers.otlp.auth": ("required", "optional", "off"),
    "receivers.otlp.protocols.http.tls.min_version": ("1.2", "1.3"),
    "receivers.otlp.protocols.grpc.tls.min_version": ("1.2", "1.3"),
}
_RANGES: dict[str, tuple[float, float]] = {
    "storage.postgres.pool_size": (2, 100),
    "storage.postgres.connect_timeout": (0.1, 600),
    "storage.retention.spans": (0, 100 * 365 * 86400),
    "storage.retention.sessions": (0, 100 * 365 * 86400),
    "storage.retention.interval": (1, 86400),
    "storage.retention.batch_size": (1, 100_000),
    "receivers.otlp.max_request_body_size": (1024, 1024**3),
    "receivers.otlp.max_pending_requests": (1, 100_000),
    "receivers.otlp.workers": (1, 64),
    "receivers.otlp.retry_after": (0, 3600),
    "receivers.otlp.protocols.http.read_header_timeout": (0.01, 3600),
    "receivers.otlp.protocols.http.read_timeout": (0.01, 86400),
    "receivers.otlp.protocols.http.idle_timeout": (0.01, 86400),
    "receivers.otlp.protocols.http.max_connections": (1, 1_000_000),
    "receivers.otlp.protocols.http.tls.reload_interval": (0, 86400),
    "receivers.otlp.protocols.grpc.max_concurrent_streams": (1, 1_000_000),
    "receivers.otlp.protocols.grpc.max_connections": (1, 1_000_000),
    "receivers.otlp.protocols.grpc.tls.reload_interval": (0, 86400),
    "receivers.otlp.protocols.grpc.keepalive.server_parameters.max_connection_idle": (0, 1e7),
    "receivers.otlp.protocols.grpc.keepalive.server_parameters.max_connection_age": (0, 1e7),
    "receivers.otlp.protocols.grpc.keepalive.server_parameters.max_connection_age_grace": (
        0,
        1e7,
    ),
    "receivers.otlp.protocols.grpc.keepalive.server_parameters.time": (1, 1e7),
    "receivers.otlp.protocols.grpc.keepalive.server_parameters.timeout": (1, 3600),
    "receivers.otlp.protocols.grpc.keepalive.enforcement_policy.min_time": (0, 1e7),
    "sessions.inactivity_timeout": (1, 365 * 86400),
    "api.default_page_size": (1, 1000),
}
_ENDPOINTS = {"receivers.otlp.protocols.grpc.endpoint", "receivers.otlp.protocols.http.endpoint"}

# Project ids appear in URL paths: a conservative alphabet, checked in config and in the APIs.
PROJECT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_PROJECT_ID = re.compile(PROJECT_ID_PATTERN)
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")

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


class _EnvText(str):
    """A value that was wholly one `${env:...}` reference: typed by YAML's rules where the
    option is not a string (`workers: ${env:N}`), kept verbatim where it is."""


def expand_env(
    value: str, environ: typing.Mapping[str, str], path: str, problems: list[str]
) -> str:
    """`${env:VAR}`, `${env:VAR:-default}` and `${VAR}` in one string scalar of the parsed
    document: the value is inserted as text, so a `#`, quote, newline or `: ` in it stays
    part of this one value. A variable that is unset (or empty) takes its default; unset
    with no default is a problem named with the option's path."""
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
    return _EnvText(expanded) if _ENV_PATTERN.fullmatch(value) else expanded


def _expand_document(
    node: Any, environ: typing.Mapping[str, str], path: str, problems: list[str]
) -> Any:
    if isinstance(node, dict):
        return {
            key: _expand_document(item, environ, f"{path}.{key}" if path else str(key), problems)
            for key, item in node.items()
        }
    if isinstance(node, list):
        return [
            _expand_document(item, environ, f"{path}[{index}]", problems)
            for index, item in enumerate(node)
        ]
    if isinstance(node, str) and "$" in node:
        return expand_env(node, environ, path, problems)
    return node


def _yaml_scalar(text: str) -> Any:
    """An expanded `${env:...}` for a non-string option: an int, float or bool as YAML reads
    it, else the text (which the option's check then names)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return str(text)
    return value if isinstance(value, int | float | bool) else str(text)


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
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML: {exc}"]) from exc
    if document is None:
        document = {}
    problems: list[str] = []
    if environ is not None:
        document = _expand_document(document, environ, "", problems)
    config = _build(BridgeConfig, document, "", problems)
    if isinstance(config, BridgeConfig):
        _check_relations(config, problems)
    if problems:
        raise ConfigError(problems)
    assert isinstance(config, BridgeConfig)
    _hash_secrets(config.auth.api_keys)
    return config


def _hash_secrets(keys: list[ApiKeyConfig]) -> None:
    """Keep only the sha256 of each API key's secret: the plaintext is not held in
    memory after loading, nor handed to the map workers."""
    for key in keys:
        if key.secret_key:
            key.secret_key_sha256 = secret_digest(key)
            key.secret_key = ""


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
    if isinstance(raw, _EnvText):
        raw = str(raw) if hint is str else _yaml_scalar(raw)
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
    elif typing.get_origin(hint) is list and dataclasses.is_dataclass(typing.get_args(hint)[0]):
        item_type = typing.get_args(hint)[0]
        if isinstance(raw, list):
            value = [
                _build(item_type, item, f"{path}[{index}].", problems)
                for index, item in enumerate(raw)
            ]
        else:
            problems.append(f"{path}: expected a list, got {_kind(raw)}")
    elif typing.get_origin(hint) is list and _tagged_types(typing.get_args(hint)[0]):
        if isinstance(raw, list):
            value = [_build_tagged(hint, v, f"{path}[{i}]", problems) for i, v in enumerate(raw)]
        else:
            problems.append(f"{path}: expected a list, got {_kind(raw)}")
    elif hint == dict[str, str]:
        if isinstance(raw, dict) and all(isinstance(v, str | int | float) for v in raw.values()):
            value = {str(key): str(item) for key, item in raw.items()}
        else:
            problems.append(f"{path}: expected a mapping of strings, got {raw!r}")
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
    _check_storage(config.storage, problems)
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
    project = config.sessions.project_id
    if not _PROJECT_ID.match(project):
        problems.append(f"sessions.project_id: must match {PROJECT_ID_PATTERN}, got {project!r}")
    _check_api_keys(config.auth.api_keys, problems)
    for index, name in enumerate(config.api.public_endpoints):
        if name not in PUBLIC_ENDPOINTS:
            problems.append(
                f"api.public_endpoints[{index}]: must be one of {', '.join(PUBLIC_ENDPOINTS)},"
                f" got {name!r}"
            )
    _check_exporters(config.exporters, problems)
    if config.receivers.otlp.auth == "required" and not config.auth.api_keys:
        problems.append("receivers.otlp.auth: required needs at least one auth.api_keys entry")
    protocols = config.receivers.otlp.protocols
    _check_tls(protocols.http.tls, "receivers.otlp.protocols.http.tls", problems)
    _check_tls(protocols.grpc.tls, "receivers.otlp.protocols.grpc.tls", problems)
    if protocols.grpc.tls.min_version != "1.2":
        problems.append(
            "receivers.otlp.protocols.grpc.tls.min_version: only 1.2 is supported (the gRPC"
            " library always accepts TLS 1.2 and 1.3; put a proxy in front to require 1.3)"
        )


def _check_tls(tls: TlsConfig, path: str, problems: list[str]) -> None:
    if not tls.cert_file:
        if tls.key_file or tls.client_ca_file:
            problems.append(f"{path}.cert_file: required when key_file or client_ca_file is set")
        return
    if not tls.key_file:
        problems.append(f"{path}.key_file: required when cert_file is set")
    for key in ("cert_file", "key_file", "client_ca_file"):
        name = getattr(tls, key)
        if name and not Path(name).expanduser().is_file():
            problems.append(f"{path}.{key}: no such file: {name}")


def secret_digest(key: ApiKeyConfig) -> str:
    """The sha256 (hex, lower case) of a key's secret, however the config gave it."""
    if key.secret_key_sha256:
        return key.secret_key_sha256.lower()
    return hashlib.sha256(key.secret_key.encode()).hexdigest()


def _check_api_keys(keys: list[ApiKeyConfig], problems: list[str]) -> None:
    public_keys: set[str] = set()
    secrets: set[str] = set()
    for index, key in enumerate(keys):
        path = f"auth.api_keys[{index}]"
        if not _PROJECT_ID.match(key.project_id):
            problems.append(
                f"{path}.project_id: must match {PROJECT_ID_PATTERN}, got {key.project_id!r}"
            )
        if not key.public_key.strip():
            problems.append(f"{path}.public_key: required (e.g. pk-...)")
        elif key.public_key in public_keys:
            problems.append(f"{path}.public_key: {key.public_key!r} is used by another key")
        public_keys.add(key.public_key)
        if bool(key.secret_key) == bool(key.secret_key_sha256):
            problems.append(f"{path}: set exactly one of secret_key and secret_key_sha256")
        elif key.secret_key_sha256 and not _SHA256_HEX.match(key.secret_key_sha256):
            problems.append(f"{path}.secret_key_sha256: expected 64 hex digits (a sha256)")
        elif key.secret_key and len(key.secret_key) < 16:
            problems.append(f"{path}.secret_key: must be at least 16 characters")
        elif secret_digest(key) in secrets:
            problems.append(f"{path}: the same secret is used by another key")
        else:
            secrets.add(secret_digest(key))


_SQL_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _check_storage(storage: StorageConfig, problems: list[str]) -> None:
    postgres = storage.postgres
    if storage.backend == "postgres" and not postgres.dsn.strip():
        problems.append("storage.postgres.dsn: required when storage.backend is postgres")
    if storage.backend == "sqlite" and postgres.dsn.strip():
        problems.append(
            "storage.postgres.dsn: set, but storage.backend is sqlite"
            " (set storage.backend: postgres to use PostgreSQL)"
        )
    if postgres.dsn.strip():
        import psycopg  # here: a SQLite bridge never loads the PostgreSQL driver

        try:
            psycopg.conninfo.conninfo_to_dict(postgres.dsn)
        except psycopg.ProgrammingError as exc:
            problems.append(f"storage.postgres.dsn: not a libpq connection string or URI: {exc}")
    if not _SQL_IDENTIFIER.match(postgres.schema):
        problems.append(
            "storage.postgres.schema: must be a lower-case SQL identifier (a-z, 0-9, _),"
            f" got {postgres.schema!r}"
        )
    retention = storage.retention
    if retention.sessions and not retention.spans:
        problems.append(
            "storage.retention.sessions: set storage.retention.spans too (a session's spans"
            " and traces must not outlive it)"
        )
    elif retention.sessions and retention.sessions < retention.spans:
        problems.append(
            "storage.retention.sessions: must be at least storage.retention.spans"
            f" ({retention.spans:g}s), got {retention.sessions:g}s"
        )


def _tagged_types(hint: Any) -> dict[str, type[Any]]:
    """For a union of dataclasses told apart by their `type` default: type value -> class."""
    members = typing.get_args(hint)
    if not members or not all(dataclasses.is_dataclass(m) for m in members):
        return {}
    return {str(f.default): m for m in members for f in dataclasses.fields(m) if f.name == "type"}


def _build_tagged(hint: Any, raw: Any, path: str, problems: list[str]) -> Any:
    """One item of a list of tagged mappings (e.g. `exporters`), built by its `type`."""
    choices = _tagged_types(typing.get_args(hint)[0])
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in choices:
        problems.append(
            f"{path}.type: must be one of {', '.join(sorted(choices))}, got {kind!r}"
            if isinstance(raw, dict)
            else f"{path}: expected a mapping with a type, got {_kind(raw)}"
        )
        return None
    return _build(choices[kind], raw, f"{path}.", problems)


_EXPORTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EXPORTER_CHOICES: dict[str, tuple[str, ...]] = {
    "format": ("ingestion", "protobuf"),
    "protocol": ("http/protobuf", "grpc"),
    "compression": ("gzip", "none"),
}
_LANGFUSE_ENV = {
    "base_url": ("LANGFUSE_BASE_URL", "LANGFUSE_HOST"),
    "public_key": ("LANGFUSE_PUBLIC_KEY",),
    "secret_key": ("LANGFUSE_SECRET_KEY",),
}


def ingestion_setting(exporter: IngestionExporterConfig, key: str) -> str:
    """An ingestion exporter's base_url/public_key/secret_key: the configured value, else
    the environment variable the Langfuse SDKs read."""
    value: str = getattr(exporter, key)
    for variable in _LANGFUSE_ENV[key]:
        value = value or os.environ.get(variable, "")
    return value


def _check_exporters(exporters: list[ExporterConfig], problems: list[str]) -> None:
    seen: set[str] = set()
    for index, exporter in enumerate(exporters):
        if exporter is None:  # its type was already reported
            continue
        path = f"exporters[{index}]"
        if not _EXPORTER_NAME.match(exporter.label):
            problems.append(f"{path}.name: use letters, digits, _ . - (got {exporter.label!r})")
        elif exporter.label in seen:
            problems.append(f"{path}.name: {exporter.label!r} is used by another exporter")
        seen.add(exporter.label)
        for key, choices in _EXPORTER_CHOICES.items():
            value = getattr(exporter, key, None)
            if value is not None and value not in choices:
                problems.append(f"{path}.{key}: must be one of {', '.join(choices)}, got {value!r}")
        limit = INGESTION_MAX_BATCH if isinstance(exporter, IngestionExporterConfig) else 64 << 20
        if not 1024 <= exporter.max_batch_size <= limit:
            problems.append(f"{path}.max_batch_size: must be between 1024 and {limit} bytes")
        if exporter.queue_capacity < exporter.max_batch_size:
            problems.append(f"{path}.queue_capacity: must be at least max_batch_size")
        retry = exporter.retry
        if retry.multiplier < 1 or not 0 <= retry.randomization_factor < 1:
            problems.append(f"{path}.retry: multiplier >= 1, randomization_factor in [0, 1)")
        if retry.initial_interval > retry.max_interval:
            problems.append(f"{path}.retry.initial_interval: must not exceed max_interval")
        if exporter.timeout <= 0:
            problems.append(f"{path}.timeout: must be more than 0")
        if isinstance(exporter, IngestionExporterConfig):
            for key, variables in _LANGFUSE_ENV.items():
                if not ingestion_setting(exporter, key):
                    problems.append(f"{path}.{key}: required (or set {' or '.join(variables)})")
            if exporter.max_event_size < 16384:
                problems.append(f"{path}.max_event_size: must be at least 16KiB")
        elif isinstance(exporter, OtlpExporterConfig):
            if not exporter.endpoint.strip():
                problems.append(f"{path}.endpoint: required (e.g. http://collector:4318)")
        elif exporter.max_files < 1 or exporter.max_file_size < 1024:
            problems.append(f"{path}: max_files must be >= 1 and max_file_size >= 1KiB")


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


def join_endpoint(host: str, port: int) -> str:
    """(host, port) -> `host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port)."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {endpoint!r}")
    return host.strip("[]"), int(port)


__all__ = [
    "PROJECT_ID_PATTERN",
    "ApiKeyConfig",
    "BridgeConfig",
    "ByteSize",
    "ConfigError",
    "Duration",
    "join_endpoint",
    "load",
    "parse",
    "secret_digest",
    "split_endpoint",
]
