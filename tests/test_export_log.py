"""The export log on both stores: how far a read may go before its spans settle (every
span up to there belongs to a trace whose session is known)."""

from __future__ import annotations

import os
from collections.abc import Callable

from session_bridge.mapping.mapper import map_request
from session_bridge.store.base import Store, WriteBatch
from session_bridge.store.config import StorageConfig
from session_bridge.store.factory import open_export_log
from tests.otlp_builders import proto_request, proto_span


def _write(store: Store, trace_id: bytes, session: str | None, spans: int = 1) -> None:
    """One write (one position on PostgreSQL) of `spans` spans of a trace."""
    attributes = {"session.id": session} if session else {}
    request = proto_request(
        [proto_span(trace_id, os.urandom(8), f"s{i}", attributes) for i in range(spans)]
    )
    mapped = map_request(request)
    store.write(WriteBatch("default", mapped.records, mapped.resources))


def test_a_read_may_go_up_to_the_first_span_whose_trace_has_no_session(
    store_factory: Callable[[], Store], storage: StorageConfig
) -> None:
    store = store_factory()
    log = open_export_log(storage)
    try:
        start = log.head()
        named, unnamed, later = os.urandom(16), os.urandom(16), os.urandom(16)
        _write(store, named, "s1", spans=2)
        after_named = log.head()
        _write(store, unnamed, None)  # a child: its root names the session later
        _write(store, later, "s2")
        head = log.head()
        assert log.named_through(start, head) == after_named
        assert log.named_through(after_named, head) == after_named  # held at the unnamed one
        assert log.named_through(start, after_named) == after_named
        _write(store, unnamed, "s3")  # the root names its trace's session
        head = log.head()
        assert log.named_through(after_named, head) == head
        assert log.named_through(head, head) == head
    finally:
        log.close()
