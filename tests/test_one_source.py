"""Facts declared once and restated nowhere, or restated and checked here."""

from __future__ import annotations

import sqlite3
from dataclasses import fields
from pathlib import Path

import pytest

from session_bridge.api.sessions import Session
from session_bridge.config import parse
from session_bridge.mapping.aliases import ALIASES, Field
from session_bridge.mapping.events import classify
from session_bridge.mapping.payloads import TOOL_CALL_ID_KEYS, TOOL_NAME_KEYS
from session_bridge.model import ClientInfo, EventType, GeoInfo
from session_bridge.rollup.rollup import COST_USD_SQL, Rollup, estimated_cost_usd
from session_bridge.store.sql_reads import MAX_PARAMS, chunks


def test_the_api_shows_the_models_client_and_geo() -> None:
    # the response declares no fields of its own for them: the dataclasses are the schema
    assert Session.model_fields["client"].annotation is ClientInfo
    assert Session.model_fields["geo"].annotation is GeoInfo
    schema = Session.model_json_schema()["$defs"]
    for data in (ClientInfo, GeoInfo):
        assert list(schema[data.__name__]["properties"]) == [f.name for f in fields(data)]


@pytest.mark.parametrize(
    ("requests", "unpriced", "nano_usd"),
    [(0, 0, 0), (3, 3, 0), (3, 1, 1_500_000_000), (2, 0, 7), (1, 2, 5)],
)
def test_the_cost_rule_is_the_same_in_sql(requests: int, unpriced: int, nano_usd: int) -> None:
    rollup = Rollup(request_count=requests, unpriced_count=unpriced, cost_nano_usd=nano_usd)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE sessions (request_count, unpriced_count, cost_nano_usd)")
    db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (requests, unpriced, nano_usd))
    (in_sql,) = db.execute(f"SELECT {COST_USD_SQL} FROM sessions").fetchone()
    assert in_sql == estimated_cost_usd(rollup)


def test_in_lists_are_cut_at_one_bound() -> None:
    items = list(range(2 * MAX_PARAMS + 1))
    assert [len(c) for c in chunks(items)] == [MAX_PARAMS, MAX_PARAMS, 1]
    assert [x for c in chunks(items) for x in c] == items


def test_tool_keys_are_the_alias_table() -> None:
    assert ALIASES[Field.TOOL_NAME] == TOOL_NAME_KEYS
    assert ALIASES[Field.TOOL_CALL_ID] == TOOL_CALL_ID_KEYS
    for fld in (Field.TOOL_NAME, Field.TOOL_CALL_ID):  # any of them marks a tool span
        assert classify({fld: "x"}, name="x", is_root=False, is_error=False) is EventType.TOOL_CALL


def test_one_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = parse("storage:\n  data_dir: ./d\n").storage
    assert storage.data_path == tmp_path / "d"
