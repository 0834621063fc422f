"""Timestamps formatted from Unix nanoseconds match datetime's own ISO format."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from session_bridge.timefmt import iso_from_ns, iso_ms_from_ns

_LAST_NS = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) * 10**9 + 10**9 - 1


def _by_datetime(unix_ns: int) -> str:
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1000)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@given(st.integers(min_value=0, max_value=_LAST_NS))
def test_iso_from_ns_is_datetimes_iso_format(unix_ns: int) -> None:
    assert iso_from_ns(unix_ns) == _by_datetime(unix_ns)


def test_known_values() -> None:
    assert iso_from_ns(0) == "1970-01-01T00:00:00.000000Z"
    assert iso_from_ns(1_775_210_400_123_456_789) == "2026-04-03T10:00:00.123456Z"
    assert iso_ms_from_ns(1_775_210_400_123_456_789) == "2026-04-03T10:00:00.123Z"
