"""/metrics and /openapi.json with API keys configured: protected unless made public."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_bridge.config import ConfigError, parse
from session_bridge.keys import ApiKeyConfig
from tests.conftest import RunningBridge, make_config

SECRET = "sk-metrics-0123456789abcdef"
KEY = ApiKeyConfig(project_id="acme", public_key="pk-acme", secret_key=SECRET)


def _bridge(tmp_path: Path, public: list[str]) -> RunningBridge:
    config = make_config(tmp_path / "d")
    config.auth.api_keys = [KEY]
    config.api.public_endpoints = public
    return RunningBridge(config)


def test_protected_by_default_when_keys_exist(tmp_path: Path) -> None:
    bridge = _bridge(tmp_path, [])
    try:
        for path in ("/metrics", "/openapi.json"):
            refused = bridge.client.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
            bearer = {"Authorization": f"Bearer {SECRET}"}
            assert bridge.client.get(path, headers=bearer).status_code == 200, path
            assert bridge.client.get(path, auth=("pk-acme", SECRET)).status_code == 200, path
            wrong = {"Authorization": "Bearer sk-wrong-0123456789abcdef"}
            assert bridge.client.get(path, headers=wrong).status_code == 401, path
        assert (
            "/api/v1/sessions"
            in bridge.client.get(
                "/openapi.json", headers={"Authorization": f"Bearer {SECRET}"}
            ).json()["paths"]
        )
        assert bridge.client.get("/healthz").status_code == 200  # probes need no key
    finally:
        bridge.stop()


def test_public_when_configured(tmp_path: Path) -> None:
    bridge = _bridge(tmp_path, ["metrics", "openapi"])
    try:
        assert bridge.client.get("/metrics").status_code == 200
        assert bridge.client.get("/openapi.json").status_code == 200
        assert bridge.client.get("/api/v1/sessions").status_code == 401  # the data is not
    finally:
        bridge.stop()


def test_open_without_keys(tmp_path: Path) -> None:
    bridge = RunningBridge(make_config(tmp_path / "d"))
    try:
        assert bridge.client.get("/metrics").status_code == 200
        assert bridge.client.get("/openapi.json").status_code == 200
    finally:
        bridge.stop()


def test_unknown_public_endpoint_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse("api:\n  public_endpoints: [metrics, sessions]\n")
    assert caught.value.problems == [
        "api.public_endpoints[1]: must be one of metrics, openapi, got 'sessions'"
    ]
