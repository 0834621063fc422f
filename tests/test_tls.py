"""TLS on both listeners, with certificates made here: the official OTLP exporters send
over TLS and mutual TLS; plaintext and certificate-less clients are refused."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from session_bridge.cli import _announce
from session_bridge.config import BridgeConfig, ConfigError, parse
from session_bridge.receivers.config import TlsConfig
from session_bridge.server import Endpoints
from tests.certs import Authority, Pair
from tests.conftest import RunningBridge, make_config

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
GIVE_UP_S = 15.0


class Pki:
    def __init__(self, folder: Path) -> None:
        self.ca = Authority(folder / "ca")
        self.server = self.ca.issue("server", server=True, folder=folder)
        self.client = self.ca.issue("client", server=False, folder=folder)

    def tls(self, *, mutual: bool, **extra: object) -> TlsConfig:
        config = TlsConfig(
            cert_file=str(self.server.cert),
            key_file=str(self.server.key),
            client_ca_file=str(self.ca.cert) if mutual else "",
        )
        for key, value in extra.items():
            setattr(config, key, value)
        return config

    def client_context(self, *, with_cert: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca.cert)
        if with_cert:
            context.load_cert_chain(self.client.cert, self.client.key)
        return context

    def grpc_credentials(self, *, with_cert: bool) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            self.ca.cert.read_bytes(),
            self.client.key.read_bytes() if with_cert else None,
            self.client.cert.read_bytes() if with_cert else None,
        )


@pytest.fixture
def pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pki:
    # requests lets these variables override a session's CA file (the HTTP exporter's
    # certificate_file): a machine that sets them would make every export fail here
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    return Pki(tmp_path / "pki")


def _config(
    tmp_path: Path, http: TlsConfig | None = None, grpc_: TlsConfig | None = None
) -> BridgeConfig:
    config = make_config(tmp_path / "data")
    if http is not None:
        config.receivers.otlp.protocols.http.tls = http
    if grpc_ is not None:
        config.receivers.otlp.protocols.grpc.tls = grpc_
    return config


def _spans(session: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tls-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("tls").start_as_current_span("chat") as span:
        span.set_attribute("session.id", session)
        span.set_attribute("gen_ai.operation.name", "chat")
    provider.shutdown()
    return list(memory.get_finished_spans())


def _export(exporter: SpanExporter, session: str) -> SpanExportResult:
    try:
        return exporter.export(_spans(session))
    finally:
        exporter.shutdown()


def _session(bridge: RunningBridge, pki: Pki, session: str) -> dict[str, object]:
    with httpx.Client(
        base_url=bridge.http_url, verify=pki.client_context(with_cert=True)
    ) as client:
        response = client.get(f"/api/v1/sessions/{session}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mtls"])
def test_otlp_http_exporter_over_tls(
    tmp_path: Path, pki: Pki, start_bridge: Callable[[BridgeConfig], RunningBridge], mutual: bool
) -> None:
    bridge = start_bridge(_config(tmp_path, http=pki.tls(mutual=mutual)))
    assert bridge.http_url.startswith("https://")
    exporter = HttpSpanExporter(
        endpoint=f"{bridge.http_url}/v1/traces",
        certificate_file=str(pki.ca.cert),
        client_key_file=str(pki.client.key) if mutual else None,
        client_certificate_file=str(pki.client.cert) if mutual else None,
        timeout=10,
    )
    assert _export(exporter, "s-https") == SpanExportResult.SUCCESS
    assert _session(bridge, pki, "s-https")["span_count"] == 1


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mtls"])
def test_otlp_grpc_exporter_over_tls(
    tmp_path: Path, pki: Pki, start_bridge: Callable[[BridgeConfig], RunningBridge], mutual: bool
) -> None:
    config = _config(tmp_path, http=pki.tls(mutual=False), grpc_=pki.tls(mutual=mutual))
    bridge = start_bridge(config)
    assert bridge.endpoints.grpc_tls == ("mutual TLS" if mutual else "TLS")
    exporter = GrpcSpanExporter(
        endpoint=bridge.grpc_endpoint,
        insecure=False,
        credentials=pki.grpc_credentials(with_cert=mutual),
        timeout=10,
    )
    assert _export(exporter, "s-grpcs") == SpanExportResult.SUCCESS
    assert _session(bridge, pki, "s-grpcs")["span_count"] == 1


def test_mutual_tls_http_refuses_plaintext_and_clients_without_a_certificate(
    tmp_path: Path, pki: Pki, start_bridge: Callable[[BridgeConfig], RunningBridge]
) -> None:
    bridge = start_bridge(_config(tmp_path, http=pki.tls(mutual=True)))
    plain_url = bridge.http_url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain_url}/healthz", timeout=GIVE_UP_S)
    with pytest.raises(httpx.TransportError):
        httpx.get(
            f"{bridge.http_url}/healthz",
            verify=pki.client_context(with_cert=False),
            timeout=GIVE_UP_S,
        )
    other = Authority(tmp_path / "other", "another CA").issue("stranger", server=False)
    stranger = pki.client_context(with_cert=False)
    stranger.load_cert_chain(other.cert, other.key)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{bridge.http_url}/healthz", verify=stranger, timeout=GIVE_UP_S)
    answer = httpx.get(
        f"{bridge.http_url}/healthz", verify=pki.client_context(with_cert=True), timeout=GIVE_UP_S
    )
    assert answer.status_code == 200


def _grpc_code(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode | None:
    async def call() -> grpc.StatusCode | None:
        channel = (
            grpc.aio.secure_channel(target, credentials)
            if credentials is not None
            else grpc.aio.insecure_channel(target)
        )
        async with channel:
            try:
                await channel.unary_unary(EXPORT)(b"", timeout=GIVE_UP_S)
            except grpc.aio.AioRpcError as exc:
                return exc.code()
        return None

    return asyncio.run(call())


def test_mutual_tls_grpc_refuses_plaintext_and_clients_without_a_certificate(
    tmp_path: Path, pki: Pki, start_bridge: Callable[[BridgeConfig], RunningBridge]
) -> None:
    bridge = start_bridge(_config(tmp_path, grpc_=pki.tls(mutual=True)))
    target = bridge.grpc_endpoint
    assert _grpc_code(target, None) == grpc.StatusCode.UNAVAILABLE
    assert _grpc_code(target, pki.grpc_credentials(with_cert=False)) == grpc.StatusCode.UNAVAILABLE
    assert _grpc_code(target, pki.grpc_credentials(with_cert=True)) is None


def test_min_version_1_3_refuses_tls_1_2(
    tmp_path: Path, pki: Pki, start_bridge: Callable[[BridgeConfig], RunningBridge]
) -> None:
    bridge = start_bridge(_config(tmp_path, http=pki.tls(mutual=False, min_version="1.3")))
    old = pki.client_context(with_cert=False)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{bridge.http_url}/healthz", verify=old, timeout=GIVE_UP_S)
    current = pki.client_context(with_cert=False)
    assert (
        httpx.get(f"{bridge.http_url}/healthz", verify=current, timeout=GIVE_UP_S).status_code
        == 200
    )


def _http_certificate(url: str, pki: Pki) -> bytes:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=GIVE_UP_S) as raw,
        pki.client_context(with_cert=False).wrap_socket(raw, server_hostname=host) as tls,
    ):
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def test_a_replaced_certificate_is_used_after_reload_interval(
    tmp_path: Path, pki: Pki, start_bridge: Callable[[BridgeConfig], RunningBridge]
) -> None:
    http = pki.tls(mutual=False, reload_interval=0.1)
    grpc_tls = pki.tls(mutual=False, reload_interval=0.1)
    bridge = start_bridge(_config(tmp_path, http=http, grpc_=grpc_tls))
    assert _http_certificate(bridge.http_url, pki) == pki.server.der
    # a new CA's certificate in the same files: a client trusting only that CA connects
    # once the bridge has read them again
    renewed = Pki(tmp_path / "renewed")
    replacement = renewed.ca.issue("server", server=True, folder=pki.server.cert.parent)
    assert replacement == Pair(pki.server.cert, pki.server.key)
    deadline = time.monotonic() + GIVE_UP_S
    while _http_certificate_or_none(bridge.http_url, renewed) is None:
        assert time.monotonic() < deadline, "the HTTP listener kept the old certificate"
    while _grpc_code(bridge.grpc_endpoint, renewed.grpc_credentials(with_cert=False)) is not None:
        assert time.monotonic() < deadline, "the gRPC listener kept the old certificate"


def _http_certificate_or_none(url: str, pki: Pki) -> bytes | None:
    try:
        return _http_certificate(url, pki)
    except ssl.SSLCertVerificationError:
        return None


def test_tls_config_is_checked() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(
            """
receivers:
  otlp:
    protocols:
      http:
        tls: {cert_file: /nonexistent/cert.pem, min_version: "1.1"}
      grpc:
        tls: {client_ca_file: /nonexistent/ca.pem, min_version: "1.3"}
"""
        )
    problems = "\n".join(caught.value.problems)
    assert "receivers.otlp.protocols.http.tls.key_file: required" in problems
    assert "receivers.otlp.protocols.http.tls.cert_file: no such file" in problems
    assert "receivers.otlp.protocols.http.tls.min_version: must be one of 1.2, 1.3" in problems
    assert "receivers.otlp.protocols.grpc.tls.cert_file: required" in problems
    assert "receivers.otlp.protocols.grpc.tls.min_version: only 1.2" in problems


def test_the_start_banner_names_https_and_grpc_tls(capsys: pytest.CaptureFixture[str]) -> None:
    endpoints = Endpoints(
        grpc="127.0.0.1:4317", http="https://127.0.0.1:4318", grpc_tls="mutual TLS"
    )
    _announce(endpoints, "sqlite", [], Path("."), 1)
    banner = capsys.readouterr().out
    assert "OTLP/gRPC     127.0.0.1:4317 (mutual TLS)" in banner
    assert "OTLP/HTTP     https://127.0.0.1:4318/v1/traces" in banner
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:4318" in banner
