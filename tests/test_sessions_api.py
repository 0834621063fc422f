"""`/api/v1/sessions`: filters, keyset pagination both ways, errors; persistence."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningBridge, make_config
from tests.otlp_builders import json_request, json_span, new_span_id, new_trace_id

S = 1_000_000_000


def _send(bridge: RunningBridge, session: str, user: str, start_ns: int, end_ns: int) -> None:
    attributes = {"session.id": session, "user.id": user}
    span = json_span(new_trace_id(), new_span_id(), "turn", attributes, start=start_ns, end=end_ns)
    response = bridge.client.post(
        "/v1/traces",
        content=json.dumps(json_request([span])).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def populated(bridge: RunningBridge) -> RunningBridge:
    now = time.time_ns()
    for i in range(12):  # 12 old sessions, a minute apart, alternating users
        start = now - 10 * 3600 * S + i * 60 * S
        _send(bridge, f"old-{i:02d}", f"user-{i % 2}", start, start + 5 * S)
    _send(bridge, "live", "user-0", now - 60 * S, now - 1 * S)
    return bridge


def _ids(page: dict[str, Any]) -> list[str]:
    return [s["session.id"] for s in page["items"]]


def test_pages_forward_and_back(populated: RunningBridge) -> None:
    expected = ["live"] + [f"old-{i:02d}" for i in reversed(range(12))]
    first = populated.list_sessions(page_size=5)
    assert _ids(first) == expected[:5]
    assert first["has_more"] is True and first["prev_cursor"] is None
    second = populated.list_sessions(page_size=5, cursor=first["next_cursor"])
    assert _ids(second) == expected[5:10]
    third = populated.list_sessions(page_size=5, cursor=second["next_cursor"])
    assert _ids(third) == expected[10:]
    assert third["has_more"] is False and third["next_cursor"] is None
    back = populated.list_sessions(page_size=5, cursor=third["prev_cursor"])
    assert _ids(back) == expected[5:10]
    back_again = populated.list_sessions(page_size=5, cursor=back["prev_cursor"])
    assert _ids(back_again) == expected[:5]
    assert back_again["prev_cursor"] is None


def test_filters(populated: RunningBridge) -> None:
    assert _ids(populated.list_sessions(is_active="true")) == ["live"]
    assert "live" not in _ids(populated.list_sessions(is_active="false", page_size=100))
    users = populated.list_sessions(**{"user.id": "user-1", "page_size": 100})
    assert _ids(users) == [f"old-{i:02d}" for i in (11, 9, 7, 5, 3, 1)]
    live = populated.get_session("live")
    assert live["state"] == "active"
    assert populated.get_session("old-00")["state"] == "ended"
    recent = populated.list_sessions(start_time=live["start_time"])
    assert _ids(recent) == ["live"]
    old = populated.get_session("old-03")
    before = populated.list_sessions(end_time=old["end_time"], page_size=100)
    assert _ids(before) == ["old-03", "old-02", "old-01", "old-00"]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1001}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"is_active": "maybe"}, "is_active"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"user.id": ""}, "user.id"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    bridge: RunningBridge, params: dict[str, Any], name: str
) -> None:
    response = bridge.client.get("/api/v1/sessions", params=params)
    assert response.status_code == 400
    assert f"'{name}'" in response.json()["message"]


def test_unknown_session_is_404(bridge: RunningBridge) -> None:
    response = bridge.client.get("/api/v1/sessions/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["message"]


def test_health(bridge: RunningBridge) -> None:
    assert bridge.client.get("/healthz").json() == {"status": "ok"}
    assert bridge.client.get("/readyz").json() == {"status": "ready"}
    assert "session_bridge_receiver_accepted_spans" in bridge.client.get("/metrics").text


def test_sessions_survive_a_restart(
    bridge_factory: Callable[..., RunningBridge], tmp_path: Path
) -> None:
    data = tmp_path / "persist"
    first = bridge_factory(config=make_config(data))
    now = time.time_ns()
    for i in range(3):
        _send(first, f"keep-{i}", "u", now - (i + 1) * S, now - i * S)
    before = first.all_sessions()
    first.stop()
    second = bridge_factory(config=make_config(data))
    after = second.all_sessions()
    assert after == before
    _send(second, "keep-0", "u", now, now + S)  # and they keep growing after the restart
    assert second.get_session("keep-0")["trace_count"] == 2
