"""Privacy applied to the spans as stored, not only to the session fields: with user ids
pseudonymised or client IPs truncated or dropped, the span's own attributes that carry
them (every key of the alias table) are rewritten the same way before the span is
stored, so neither the query APIs nor the exporters ever see the original."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from session_bridge.enrich.privacy import truncate_ip
from session_bridge.mapping.aliases import ALIASES, Field
from session_bridge.mapping.mapper import MappedRequest
from session_bridge.mapping.mapper import text_value as _text
from session_bridge.otlp.values import any_value

_USER_KEYS = frozenset(ALIASES[Field.USER_ID])
_IP_KEYS = frozenset(ALIASES[Field.CLIENT_IP])


class SpanScrubber:
    def __init__(self, pseudonymize: Callable[[str], str] | None, ip_policy: str) -> None:
        self._pseudonymize = pseudonymize
        self._ip_policy = ip_policy
        keys: set[str] = set()
        if pseudonymize is not None:
            keys |= _USER_KEYS
        if ip_policy != "keep":
            keys |= _IP_KEYS
        self._keys = frozenset(keys)

    @property
    def active(self) -> bool:
        return bool(self._keys)

    def scrub(self, mapped: MappedRequest) -> None:
        """Rewrite the private attributes of every span of `mapped` (its parsed spans, its
        records' stored bytes and, when decoded, its attribute dicts)."""
        if not self._keys:
            return
        decoded: list[dict[str, Any] | None] = (
            list(mapped.attributes) if mapped.attributes else [None] * len(mapped.records)
        )
        for record, span, attributes in zip(mapped.records, mapped.spans, decoded, strict=True):
            if attributes is not None and self._keys.isdisjoint(attributes):
                continue
            if self._scrub_span(span, attributes):
                record.otlp_span = span.SerializeToString()

    def _scrub_span(self, span: Span, attributes: dict[str, Any] | None) -> bool:
        dropped: list[int] = []
        changed = False
        for index, kv in enumerate(span.attributes):
            key = kv.key
            if key not in self._keys:
                continue
            value = kv.value.string_value or _text(any_value(kv.value)) or ""
            if key in _USER_KEYS and self._pseudonymize is not None:
                new: str | None = self._pseudonymize(value) if value else value
            elif key in _IP_KEYS and self._ip_policy == "truncate":
                new = truncate_ip(value) if value else value
            elif key in _IP_KEYS:
                new = None  # drop
            else:
                continue
            if new is None:
                dropped.append(index)
                if attributes is not None:
                    attributes.pop(key, None)
            elif new != value or kv.value.WhichOneof("value") != "string_value":
                kv.value.string_value = new
                if attributes is not None and key in attributes:
                    attributes[key] = new
            else:
                continue
            changed = True
        for index in reversed(dropped):
            del span.attributes[index]
        return changed
