"""Sessions sent through the OTel SDK come back with client, geo and cost filled."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from genai_prices import Usage, calc_price

from session_bridge.enrich.config import ModelPriceConfig
from tests.conftest import TEST_DATA, RunningBridge, make_config, sdk_provider
from tests.otlp_builders import json_request, json_span, new_span_id, new_trace_id

GEOIP = TEST_DATA / "geoip"
T0 = 1_790_000_000_000_000_000  # 2026-09-21
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


def _bridge(
    bridge_factory: Callable[..., RunningBridge], tmp_path: Path, **sections: dict[str, Any]
) -> RunningBridge:
    config = make_config(tmp_path / "data")
    config.enrich.geoip.databases = [str(GEOIP / "GeoIP2-City-Test.mmdb")]
    for section, values in sections.items():
        target = getattr(config, section)
        for key, value in values.items():
            setattr(target, key, value)
    return bridge_factory(config=config)


def _send(bridge: RunningBridge, spans: list[dict[str, Any]], transport: str = "grpc") -> None:
    provider = sdk_provider(bridge, transport, {"service.name": "enrich-test"})
    tracer = provider.get_tracer("t")
    for i, attributes in enumerate(spans):
        span = tracer.start_span(attributes.pop("name", "chat"), attributes=attributes,
                                 start_time=T0 + i * 10**9)  # fmt: skip
        span.end(end_time=T0 + i * 10**9 + 5 * 10**8)
    assert provider.force_flush(10_000)
    provider.shutdown()


def _library_cost(model: str, provider: str, inp: int, out: int, cached: int = 0) -> float:
    usage = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cached or None)
    moment = dt.datetime.fromtimestamp(T0 / 1e9, tz=dt.UTC)
    return float(
        calc_price(usage, model, provider_id=provider, genai_request_timestamp=moment).total_price
    )


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_client_geo_and_cost(bridge_factory: Any, tmp_path: Path, transport: str) -> None:
    bridge = _bridge(bridge_factory, tmp_path)
    _send(
        bridge,
        [
            {"name": "invoke_agent", "gen_ai.operation.name": "invoke_agent", "session.id": "e2e",
             "client.address": "81.2.69.142", "user_agent.original": IPHONE},
            {"gen_ai.operation.name": "chat", "session.id": "e2e", "gen_ai.provider.name": "openai",
             "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 1000,
             "gen_ai.usage.output_tokens": 200, "gen_ai.usage.cache_read.input_tokens": 800},
            {"gen_ai.operation.name": "chat", "session.id": "e2e", "gen_ai.system": "anthropic",
             "gen_ai.request.model": "claude-sonnet-4-5-20250929", "gen_ai.usage.input_tokens": 3000,
             "gen_ai.usage.output_tokens": 500},
        ],
        transport,
    )  # fmt: skip
    session = bridge.get_session("e2e")
    assert session["client"] == {
        "ip": "81.2.69.142",
        "user_agent": IPHONE,
        "device_type": "mobile",
        "os": "iOS",
        "browser": "Mobile Safari",
        "browser_version": "17.4",
    }
    assert session["geo"] == {
        "country_code": "GB",
        "country_name": "United Kingdom",
        "region": "England",
        "city": "London",
        "postal_code": None,
        "timezone": "Europe/London",
    }
    expected = _library_cost("gpt-4o-2024-08-06", "openai", 1000, 200, 800) + _library_cost(
        "claude-sonnet-4-5-20250929", "anthropic", 3000, 500
    )
    usage = session["genai_usage"]
    assert usage["estimated_cost_usd"] == pytest.approx(expected, rel=1e-9)
    assert usage["unpriced_request_count"] == 0
    # cached tokens make a call cheaper than the same call without them
    assert _library_cost("gpt-4o", "openai", 1000, 200, 800) < _library_cost(
        "gpt-4o", "openai", 1000, 200
    )


def test_geo_attributes_win_and_unknown_models_stay_unpriced(
    bridge_factory: Any, tmp_path: Path
) -> None:
    bridge = _bridge(bridge_factory, tmp_path)
    _send(
        bridge,
        [
            {"session.id": "attr-geo", "client.address": "81.2.69.142", "geo.country.iso_code": "GB",
             "geo.locality.name": "Manchester", "gen_ai.operation.name": "chat",
             "gen_ai.request.model": "my-private-model", "gen_ai.usage.input_tokens": 10},
            {"session.id": "attr-geo", "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
             "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.cost": 0.5},
        ],
    )  # fmt: skip
    session = bridge.get_session("attr-geo")
    assert session["geo"]["city"] == "Manchester"  # the attribute wins
    assert session["geo"]["timezone"] == "Europe/London"  # the lookup fills the rest
    usage = session["genai_usage"]
    assert usage["unpriced_request_count"] == 1
    assert usage["estimated_cost_usd"] == pytest.approx(0.5)  # reported cost wins, unknown not 0
    metrics = bridge.client.get("/metrics").text
    assert "session_bridge_enrich_unpriced_llm_calls_total 1.0" in metrics


def test_private_address_has_no_geo(bridge_factory: Any, tmp_path: Path) -> None:
    bridge = _bridge(bridge_factory, tmp_path)
    _send(bridge, [{"session.id": "private", "client.address": "10.1.2.3"}])
    assert bridge.get_session("private")["geo"]["country_code"] is None


def test_price_override_from_config(bridge_factory: Any, tmp_path: Path) -> None:
    bridge = _bridge(
        bridge_factory,
        tmp_path,
        pricing={
            "models": {"acme-ft-1": ModelPriceConfig(input_per_mtok=2.0, output_per_mtok=8.0)}
        },
    )
    _send(bridge, [{"session.id": "ft", "gen_ai.operation.name": "chat", "gen_ai.request.model": "acme-ft-1",
                    "gen_ai.usage.input_tokens": 1_000_000, "gen_ai.usage.output_tokens": 500_000}])  # fmt: skip
    assert bridge.get_session("ft")["genai_usage"]["estimated_cost_usd"] == pytest.approx(6.0)


def test_privacy_options(bridge_factory: Any, tmp_path: Path) -> None:
    key = "k" * 32
    bridge = _bridge(
        bridge_factory,
        tmp_path,
        privacy={"pseudonymize_user_id": True, "user_id_key": key, "client_ip": "truncate"},
    )
    _send(
        bridge,
        [{"session.id": "priv", "user.id": "alice@example.com", "client.address": "81.2.69.142"}],
    )
    session = bridge.get_session("priv")
    digest = hmac.new(key.encode(), b"alice@example.com", hashlib.sha256).hexdigest()
    assert session["user.id"] == "u_" + digest[:32]
    assert session["client"]["ip"] == "81.2.69.0"
    assert session["geo"]["city"] == "London"  # looked up before the address was truncated
    # filtering by the pseudonym works; the raw id is never stored
    assert [
        s["session.id"] for s in bridge.list_sessions(**{"user.id": session["user.id"]})["items"]
    ] == ["priv"]


def test_request_address_through_trusted_proxy(bridge_factory: Any, tmp_path: Path) -> None:
    config = make_config(tmp_path / "proxy")
    config.enrich.geoip.databases = [str(GEOIP / "GeoIP2-City-Test.mmdb")]
    config.enrich.client_address.from_request = True
    config.enrich.client_address.trusted_proxies = ["127.0.0.0/8"]
    bridge = bridge_factory(config=config)
    body = json_request(
        [json_span(new_trace_id(), new_span_id(), "rum", {"session.id": "browser"})]
    )
    headers = {
        "Content-Type": "application/json",
        "X-Forwarded-For": "1.1.1.1, 89.160.20.112, 127.0.0.9",
    }
    response = httpx.post(f"{bridge.http_url}/v1/traces", json=body, headers=headers)
    assert response.status_code == 200
    session = bridge.get_session("browser")
    # right to left: 127.0.0.9 is a trusted proxy, 89.160.20.112 is the client; 1.1.1.1 was
    # written by the client itself and is never believed
    assert session["client"]["ip"] == "89.160.20.112"
    assert session["geo"]["city"] == "Linköping"
