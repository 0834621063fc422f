"""The OTLP receiver's configuration (`receivers.otlp`), in the Collector's shape."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from session_bridge.configkit import (
    NOT_BOOL,
    ByteSize,
    Duration,
    DurationValue,
    Section,
    SizeValue,
    between,
    one_of,
)


def join_endpoint(host: str, port: int) -> str:
    """(host, port) -> `host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` -> (host, port)."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {endpoint!r}")
    return host.strip("[]"), int(port)


def _endpoint(value: str) -> str:
    split_endpoint(value)  # its ValueError names the problem
    return value


Endpoint = Annotated[str, AfterValidator(_endpoint)]
TlsVersion = Annotated[str, one_of("1.2", "1.3")]
_WILDCARDS = {"0.0.0.0", "::", ""}
MAX_WORKERS = 64  # map worker processes


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers set), as the
    default number of map workers."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, count))


def _auto_workers(value: object) -> object:
    if value == "auto":
        return usable_cores()
    if isinstance(value, str) and not value.strip().isdigit():
        raise ValueError(f"expected a number of processes or auto, got {value!r}")
    return value


class TlsConfig(Section):
    """A listener's TLS (the Collector's `tls:` block): off unless cert_file is set."""

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""  # set: clients must present a certificate it signed (mTLS)
    min_version: TlsVersion = "1.2"
    # 0: the files are read once, at start
    reload_interval: Annotated[DurationValue, between(0, 86400)] = Duration(0.0)

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    def check(self, path: str) -> list[str]:
        if not self.cert_file:
            if self.key_file or self.client_ca_file:
                return [f"{path}.cert_file: required when key_file or client_ca_file is set"]
            return []
        problems = [] if self.key_file else [f"{path}.key_file: required when cert_file is set"]
        for key in ("cert_file", "key_file", "client_ca_file"):
            name = getattr(self, key)
            if name and not Path(name).expanduser().is_file():
                problems.append(f"{path}.{key}: no such file: {name}")
        return problems


_Forever = Annotated[DurationValue, between(0, 1e7)]


class KeepaliveServerParameters(Section):
    max_connection_idle: _Forever = Duration(300.0)  # 0: never
    max_connection_age: _Forever = Duration(0.0)  # 0: never
    max_connection_age_grace: _Forever = Duration(0.0)  # 0: forever
    time: Annotated[DurationValue, between(1, 1e7)] = Duration(7200.0)
    timeout: Annotated[DurationValue, between(1, 3600)] = Duration(20.0)


class KeepaliveEnforcementPolicy(Section):
    min_time: _Forever = Duration(300.0)
    permit_without_stream: bool = False


class GrpcKeepaliveConfig(Section):
    server_parameters: KeepaliveServerParameters = Field(default_factory=KeepaliveServerParameters)
    enforcement_policy: KeepaliveEnforcementPolicy = Field(
        default_factory=KeepaliveEnforcementPolicy
    )


_Connections = Annotated[int, NOT_BOOL, between(1, 1_000_000)]


class GrpcConfig(Section):
    endpoint: Endpoint = "127.0.0.1:4317"
    enabled: bool = True
    max_concurrent_streams: _Connections = 100
    max_connections: _Connections = 1000
    keepalive: GrpcKeepaliveConfig = Field(default_factory=GrpcKeepaliveConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)

    def check(self, path: str) -> list[str]:
        if self.tls.min_version != "1.2":
            return [
                f"{path}.tls.min_version: only 1.2 is supported (the gRPC library always"
                " accepts TLS 1.2 and 1.3; put a proxy in front to require 1.3)"
            ]
        return []


class HttpConfig(Section):
    endpoint: Endpoint = "127.0.0.1:4318"
    read_header_timeout: Annotated[DurationValue, between(0.01, 3600)] = Duration(10.0)
    read_timeout: Annotated[DurationValue, between(0.01, 86400)] = Duration(60.0)
    idle_timeout: Annotated[DurationValue, between(0.01, 86400)] = Duration(60.0)
    max_connections: _Connections = 1000
    tls: TlsConfig = Field(default_factory=TlsConfig)


class OtlpProtocols(Section):
    grpc: GrpcConfig = Field(default_factory=GrpcConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)

    def check(self, path: str) -> list[str]:
        if not self.grpc.enabled:
            return []
        grpc_host, grpc_port = split_endpoint(self.grpc.endpoint)
        http_host, http_port = split_endpoint(self.http.endpoint)
        hosts = {grpc_host, http_host}
        if grpc_port and grpc_port == http_port and (len(hosts) == 1 or hosts & _WILDCARDS):
            return [
                f"{path}.grpc.endpoint: {self.grpc.endpoint} is also the HTTP endpoint"
                f" ({self.http.endpoint}); give each protocol its own port"
            ]
        return []


class OtlpReceiverConfig(Section):
    protocols: OtlpProtocols = Field(default_factory=OtlpProtocols)
    max_request_body_size: Annotated[SizeValue, between(1024, 1024**3)] = ByteSize(16 * 1024**2)
    max_pending_requests: Annotated[int, NOT_BOOL, between(1, 100_000)] = 64
    # `auto` (the default): one per usable core
    workers: Annotated[int, NOT_BOOL, BeforeValidator(_auto_workers), between(1, MAX_WORKERS)] = (
        Field(default_factory=usable_cores)
    )
    retry_after: Annotated[DurationValue, between(0, 3600)] = Duration(1.0)
    auth: Annotated[str, one_of("required", "optional", "off")] = "optional"


class ReceiversConfig(Section):
    """One OTLP receiver (gRPC and HTTP), as in the Collector's `receivers: {otlp: ...}`."""

    otlp: OtlpReceiverConfig = Field(default_factory=OtlpReceiverConfig)
