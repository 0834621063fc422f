"""Privacy reaches the spans as stored: with user ids pseudonymised and client IPs dropped
or truncated, the original values are in no file of the data dir and in no exported
event, with and without map workers; the session still shows the pseudonym."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from session_bridge.config import BridgeConfig
from session_bridge.export.file import FileExporterConfig
from tests.conftest import RunningBridge
from tests.export_helpers import eventually, exporting_config, post, quick
from tests.otlp_builders import proto_request, proto_span

KEY = "k" * 32
USER = "alice-secret-7781@example.com"
IP = "203.0.113.77"


def _pseudonym(user: str) -> str:
    return "u_" + hmac.new(KEY.encode(), user.encode(), hashlib.sha256).hexdigest()[:32]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("policy", ["drop", "truncate"])
def test_private_values_are_never_stored_nor_exported(
    start_bridge: Callable[[BridgeConfig], RunningBridge],
    tmp_path: Path,
    workers: int,
    policy: str,
) -> None:
    data = tmp_path / "d"
    config = exporting_config(data, quick(FileExporterConfig()))
    config.receivers.otlp.workers = workers
    config.privacy.pseudonymize_user_id = True
    config.privacy.user_id_key = KEY
    config.privacy.client_ip = policy
    bridge = start_bridge(config)
    trace = os.urandom(16)
    spans = [
        proto_span(trace, os.urandom(8), "turn", {
            "session.id": "private", "user.id": USER, "langfuse.user.id": USER,
            "client.address": IP, "http.client_ip": IP, "kept": "visible",
        }),
        proto_span(os.urandom(16), os.urandom(8), "numeric user", {"enduser.id": 4242}),
    ]  # fmt: skip
    assert post(bridge, proto_request(spans)).status_code == 200
    path = data / "export" / "file.jsonl"
    eventually(lambda: path.exists() and len(path.read_text().splitlines()) == 4, what="events")
    assert bridge.get_session("private")["user.id"] == _pseudonym(USER)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    observations = {e["body"]["name"]: e["body"] for e in events if e["type"] != "trace-create"}
    traces = [e["body"] for e in events if e["type"] == "trace-create"]
    assert _pseudonym(USER) in {t.get("userId") for t in traces}
    attributes = observations["turn"]["metadata"]["attributes"]
    assert attributes["user.id"] == attributes["langfuse.user.id"] == _pseudonym(USER)
    assert attributes["kept"] == "visible"
    if policy == "drop":
        assert "client.address" not in attributes and "http.client_ip" not in attributes
    else:
        assert attributes["client.address"] == attributes["http.client_ip"] == "203.0.113.0"
    numeric = observations["numeric user"]["metadata"]["attributes"]
    assert numeric["enduser.id"] == _pseudonym("4242")
    bridge.stop()
    for file in data.rglob("*"):
        if file.is_file():
            content = file.read_bytes()
            for secret in (USER.encode(), IP.encode()):
                assert secret not in content, (file, secret)
