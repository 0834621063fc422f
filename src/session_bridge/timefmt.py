"""Timestamps: OTLP's Unix nanoseconds <-> ISO-8601 strings (UTC, with offset)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime


def iso_from_ns(unix_ns: int) -> str:
    """`2026-04-03T10:00:00.123456Z` (microsecond precision, always UTC)."""
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    return f"{_iso_second(seconds)}.{nanos // 1000:06d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(seconds: int) -> str:
    # the spans of a batch share a few seconds: formatting each second once is ~4x faster
    return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None).isoformat()


def ns_from_datetime(moment: datetime) -> int:
    """Unix nanoseconds; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def iso_ms_from_ns(unix_ns: int) -> str:
    """`2026-04-03T10:00:00.123Z` (millisecond precision, as Langfuse writes times)."""
    return iso_from_ns(unix_ns)[:-4] + "Z"
