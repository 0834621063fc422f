"""Projects and API keys: every query API scoped to the key's project, Basic / Bearer /
Galileo-API-Key as each API expects, 401 without a key, 404 across projects; OTLP
ingestion auth (required / optional / off) filing spans under the sender's project."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from session_bridge.config import ConfigError, parse
from session_bridge.keys import ApiKeyConfig
from tests import agent_scenario as scenario
from tests.conftest import RunningBridge, make_config
from tests.otlp_builders import new_span_id, new_trace_id, proto_request, proto_span

ACME_SECRET = "sk-acme-0123456789abcdef"
GLOBEX_SECRET = "sk-globex-0123456789abcdef"
KEYS = [
    ApiKeyConfig(project_id="acme", public_key="pk-acme", secret_key=ACME_SECRET),
    ApiKeyConfig(
        project_id="globex",
        public_key="pk-globex",
        secret_key_sha256=hashlib.sha256(GLOBEX_SECRET.encode()).hexdigest(),
    ),
]


def basic(public: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()


ACME_BASIC = {"Authorization": basic("pk-acme", ACME_SECRET)}
ACME_BEARER = {"Authorization": f"Bearer {ACME_SECRET}"}
GLOBEX_BASIC = {"Authorization": basic("pk-globex", GLOBEX_SECRET)}
GLOBEX_BEARER = {"Authorization": f"Bearer {GLOBEX_SECRET}"}


def send_with(
    bridge: RunningBridge, transport: str, headers: dict[str, str], session: scenario.Session
) -> None:
    exporter: GrpcExporter | HttpExporter
    if transport == "grpc":
        exporter = GrpcExporter(
            endpoint=bridge.grpc_endpoint,
            insecure=True,
            headers=tuple((k.lower(), v) for k, v in headers.items()),
        )
    else:
        exporter = HttpExporter(endpoint=f"{bridge.http_url}/v1/traces", headers=headers)
    provider = TracerProvider(resource=Resource.create(scenario.RESOURCE))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    scenario.send(provider, [session])
    provider.shutdown()


def session(session_id: str) -> scenario.Session:
    return scenario.Session(
        session_id, 0, [scenario.agent("triage", 0, 10, [scenario.chat(1, 5, (3, 1))])]
    )


@pytest.fixture(scope="module", params=scenario.BACKENDS)
def keyed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with scenario.running_bridge(
        request, tmp_path_factory.mktemp("keyed"), auth={"api_keys": KEYS}
    ) as bridge:
        send_with(bridge, "http", ACME_BASIC, session("acme-1"))
        send_with(bridge, "grpc", GLOBEX_BEARER, session("globex-1"))
        send_with(bridge, "http", {}, session("nobody-1"))  # optional auth: the default project
        yield bridge


def call(
    bridge: RunningBridge,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    return bridge.client.request(method, path, headers=headers or {}, **kwargs)


SEARCH = {"json": {"limit": 10}}


def test_each_key_sees_its_own_project(keyed: RunningBridge) -> None:
    def langfuse_ids(headers: dict[str, str]) -> list[str]:
        return [s["id"] for s in call(keyed, "GET", "/api/public/sessions", headers).json()["data"]]

    assert langfuse_ids(ACME_BASIC) == ["acme-1"]
    assert langfuse_ids(GLOBEX_BASIC) == ["globex-1"]
    v1 = call(keyed, "GET", "/api/v1/sessions", ACME_BEARER).json()
    assert [s["session.id"] for s in v1["items"]] == ["acme-1"]
    acme = call(
        keyed,
        "POST",
        "/v2/projects/acme/sessions/search",
        {"Galileo-API-Key": ACME_SECRET},
        **SEARCH,
    )
    assert [r["id"] for r in acme.json()["records"]] == ["acme-1"]
    globex = call(keyed, "POST", "/v2/projects/globex/sessions/search", GLOBEX_BEARER, **SEARCH)
    assert [r["id"] for r in globex.json()["records"]] == ["globex-1"]
    traces = call(keyed, "GET", "/api/projects/globex/sessions/globex-1/traces", GLOBEX_BEARER)
    assert traces.status_code == 200 and len(traces.json()["events"]) == 2


@pytest.mark.parametrize(
    ("method", "path", "scheme"),
    [
        ("GET", "/api/public/sessions", "Basic"),
        ("GET", "/api/public/sessions/acme-1", "Basic"),
        ("GET", "/api/v1/sessions", "Bearer"),
        ("GET", "/api/v1/sessions/acme-1", "Bearer"),
        ("GET", "/api/projects/acme/sessions/acme-1/traces", "Bearer"),
        ("GET", "/api/projects/acme/sessions/acme-1/metrics", "Bearer"),
        ("GET", "/api/projects/acme/sessions/generations", "Bearer"),
        ("GET", "/api/projects/acme/sessions/export", "Bearer"),
        ("POST", "/v2/projects/acme/sessions/search", "Bearer"),
    ],
)
def test_no_or_wrong_key_is_401(keyed: RunningBridge, method: str, path: str, scheme: str) -> None:
    body = SEARCH if method == "POST" else {}
    for headers in (
        {},
        {"Authorization": f"Bearer {ACME_SECRET}x"},
        {"Authorization": basic("pk-acme", "wrong")},
        {"Authorization": "Basic !!!"},
    ):
        response = call(keyed, method, path, headers, **body)
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith(scheme)


def test_each_api_takes_its_own_scheme(keyed: RunningBridge) -> None:
    assert call(keyed, "GET", "/api/public/sessions", ACME_BEARER).status_code == 401
    assert (
        call(keyed, "GET", "/api/projects/acme/sessions/acme-1/traces", ACME_BASIC).status_code
        == 401
    )
    assert (
        call(
            keyed,
            "GET",
            "/api/projects/acme/sessions/acme-1/traces",
            {"Galileo-API-Key": ACME_SECRET},
        ).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/projects/globex/sessions/globex-1/traces"),
        ("GET", "/api/projects/globex/sessions/globex-1/traces/0123456789abcdef/children"),
        ("GET", "/api/projects/globex/sessions/globex-1/metrics"),
        ("GET", "/api/projects/globex/sessions/globex-1/analysis"),
        ("GET", "/api/projects/globex/sessions/generations"),
        ("GET", "/api/projects/globex/sessions/export"),
        ("POST", "/v2/projects/globex/sessions/search"),
        ("GET", "/api/projects/default/sessions/nobody-1/traces"),
    ],
)
def test_a_key_of_another_project_gets_404(keyed: RunningBridge, method: str, path: str) -> None:
    response = call(keyed, method, path, ACME_BEARER, **(SEARCH if method == "POST" else {}))
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert "globex-1" not in response.text


def test_sessions_of_other_projects_are_404_by_key(keyed: RunningBridge) -> None:
    assert call(keyed, "GET", "/api/public/sessions/globex-1", ACME_BASIC).status_code == 404
    assert call(keyed, "GET", "/api/v1/sessions/globex-1", ACME_BEARER).status_code == 404
    assert call(keyed, "GET", "/api/public/sessions/acme-1", ACME_BASIC).status_code == 200


def test_health_and_page_stay_open(keyed: RunningBridge) -> None:
    for path in ("/healthz", "/readyz", "/ui/"):
        assert call(keyed, "GET", path).status_code == 200
    # what is not a project's goes behind any key unless api.public_endpoints lists it
    for path in ("/openapi.json", "/metrics"):
        assert call(keyed, "GET", path).status_code == 401
        assert call(keyed, "GET", path, ACME_BEARER).status_code == 200


def test_startup_log_says_whether_apis_are_open(
    bridge_factory: Callable[..., RunningBridge], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="session_bridge.server"):
        bridge_factory()
        bridge_factory(config=make_config(tmp_path / "keyed", auth={"api_keys": KEYS}))
    messages = [r.getMessage() for r in caplog.records if r.name == "session_bridge.server"]
    assert any("no API keys configured" in m and "open" in m for m in messages)
    assert any("API keys configured for 2 project(s)" in m for m in messages)


# -- OTLP ingestion auth ---------------------------------------------------------------------


def ingest_bridge(
    bridge_factory: Callable[..., RunningBridge], tmp_path: Path, mode: str
) -> RunningBridge:
    config = make_config(tmp_path / mode, auth={"api_keys": KEYS})
    config.receivers.otlp.auth = mode
    return bridge_factory(config=config)


def one_span(session_id: str) -> bytes:
    span_id, trace_id = bytes.fromhex(new_span_id()), bytes.fromhex(new_trace_id())
    span = proto_span(trace_id, span_id, "turn", {"session.id": session_id})
    return proto_request([span]).SerializeToString()


def post_span(bridge: RunningBridge, session_id: str, headers: dict[str, str]) -> httpx.Response:
    return bridge.client.post(
        "/v1/traces",
        content=one_span(session_id),
        headers={"Content-Type": "application/x-protobuf", **headers},
    )


def grpc_export(
    bridge: RunningBridge, session_id: str, metadata: tuple[tuple[str, str], ...]
) -> grpc.StatusCode:
    with grpc.insecure_channel(bridge.grpc_endpoint) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        try:
            export(one_span(session_id), metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            return code
    return grpc.StatusCode.OK


def owners(bridge: RunningBridge) -> dict[str, list[str]]:
    """project -> its sessions, through each project's own key (or the open default)."""
    found = {}
    for project, headers in (("acme", ACME_BEARER), ("globex", GLOBEX_BEARER)):
        page = call(bridge, "POST", f"/v2/projects/{project}/sessions/search", headers, **SEARCH)
        found[project] = [r["id"] for r in page.json()["records"]]
    return found


def test_ingest_auth_required(bridge_factory: Callable[..., RunningBridge], tmp_path: Path) -> None:
    bridge = ingest_bridge(bridge_factory, tmp_path, "required")
    refused = post_span(bridge, "anon", {})
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/x-protobuf"
    bad = post_span(bridge, "anon", {"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    garbage = bridge.client.post(
        "/v1/traces", content=b"\xff\x00", headers={"Content-Type": "application/x-protobuf"}
    )
    assert garbage.status_code == 401  # credentials are checked before the body is read
    assert grpc_export(bridge, "anon", ()) == grpc.StatusCode.UNAUTHENTICATED
    assert post_span(bridge, "a-http", ACME_BASIC).status_code == 200
    assert (
        grpc_export(bridge, "g-grpc", (("authorization", GLOBEX_BEARER["Authorization"]),))
        == grpc.StatusCode.OK
    )
    assert owners(bridge) == {"acme": ["a-http"], "globex": ["g-grpc"]}


def test_ingest_auth_optional_refuses_unknown_keys(
    bridge_factory: Callable[..., RunningBridge], tmp_path: Path
) -> None:
    bridge = ingest_bridge(bridge_factory, tmp_path, "optional")
    assert post_span(bridge, "anon", {}).status_code == 200
    body = post_span(bridge, "x", {"Authorization": basic("pk-acme", "wrong")})
    assert body.status_code == 401
    json_refusal = bridge.client.post(
        "/v1/traces",
        content=b"{}",
        headers={"Content-Type": "application/json", "Authorization": "Bearer nope"},
    )
    assert (
        json_refusal.status_code == 401 and json.loads(json_refusal.text)["code"] == 16
    )  # UNAUTHENTICATED
    assert (
        grpc_export(bridge, "x", (("authorization", "Bearer nope"),))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    assert post_span(bridge, "a-1", ACME_BEARER).status_code == 200
    assert owners(bridge) == {"acme": ["a-1"], "globex": []}


def test_ingest_auth_off_ignores_keys(
    bridge_factory: Callable[..., RunningBridge], tmp_path: Path
) -> None:
    bridge = ingest_bridge(bridge_factory, tmp_path, "off")
    assert post_span(bridge, "d-1", {"Authorization": "Bearer whatever"}).status_code == 200
    assert post_span(bridge, "d-2", ACME_BEARER).status_code == 200
    assert owners(bridge) == {"acme": [], "globex": []}


def test_open_bridge_files_spans_under_the_configured_project(
    bridge_factory: Callable[..., RunningBridge], tmp_path: Path
) -> None:
    bridge = bridge_factory(config=make_config(tmp_path / "p", sessions={"project_id": "team-a"}))
    assert post_span(bridge, "s-1", {"Authorization": "Bearer anything"}).status_code == 200
    assert [s["id"] for s in call(bridge, "GET", "/api/public/sessions").json()["data"]] == ["s-1"]
    assert call(bridge, "GET", "/api/projects/team-a/sessions/s-1/traces").status_code == 200
    assert call(bridge, "GET", "/api/projects/default/sessions/s-1/traces").status_code == 404


# -- configuration ---------------------------------------------------------------------------


def test_auth_config_is_validated_and_names_bad_keys() -> None:
    with pytest.raises(ConfigError) as raised:
        parse(
            """
auth:
  api_keys:
    - {project_id: "bad id", public_key: pk-1, secret_key: short}
    - {project_id: p1, public_key: pk-1, secret_key_sha256: "not-hex"}
    - {project_id: p2, public_key: pk-2, secret_key: sk-0123456789abcdef, secret_key_sha256: "ab"}
    - {project_id: p3, secret_key: sk-0123456789abcdef}
    - {project_id: p4, public_key: pk-4, secret_key: sk-0123456789abcdef}
"""
        )
    assert raised.value.problems == [
        "auth.api_keys[0].project_id: must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$, got 'bad id'",
        "auth.api_keys[0].secret_key: must be at least 16 characters",
        "auth.api_keys[1].public_key: 'pk-1' is used by another key",
        "auth.api_keys[1].secret_key_sha256: expected 64 hex digits (a sha256)",
        "auth.api_keys[2]: set exactly one of secret_key and secret_key_sha256",
        "auth.api_keys[3].public_key: required (e.g. pk-...)",
        "auth.api_keys[4]: the same secret is used by another key",
    ]
    with pytest.raises(ConfigError) as unknown:
        parse(
            "auth: {api_keys: [{project_id: p, public_key: k, secret: x}]}\nreceivers: {otlp: {auth: maybe}}"
        )
    assert unknown.value.problems[0].startswith("auth.api_keys[0].secret: unknown key")
    assert (
        unknown.value.problems[1]
        == "receivers.otlp.auth: must be one of required, optional, off, got 'maybe'"
    )
    with pytest.raises(ConfigError) as lonely:
        parse("receivers: {otlp: {auth: required}}")
    assert lonely.value.problems == [
        "receivers.otlp.auth: required needs at least one auth.api_keys entry"
    ]
    config = parse(
        f"auth: {{api_keys: [{{project_id: p, public_key: k, secret_key_sha256: '{'A' * 64}'}}]}}"
    )
    assert config.auth.api_keys[0].secret_key_sha256 == "A" * 64
    assert parse("").receivers.otlp.auth == "optional" and parse("").auth.api_keys == []


@contextlib.contextmanager
def two_project_bridge(request: pytest.FixtureRequest, folder: Path) -> Iterator[RunningBridge]:
    """A bridge with `KEYS` and one session in each project: acme-1 and globex-1."""
    with scenario.running_bridge(request, folder, "sqlite", auth={"api_keys": KEYS}) as bridge:
        send_with(
            bridge,
            "http",
            ACME_BASIC,
            scenario.Session("acme-1", 0, [scenario.agent("a", 0, 5, [])]),
        )
        send_with(
            bridge,
            "http",
            GLOBEX_BEARER,
            scenario.Session("globex-1", 0, [scenario.agent("g", 0, 5, [])]),
        )
        yield bridge
