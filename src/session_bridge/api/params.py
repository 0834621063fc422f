"""Parameter types shared by the query APIs."""

from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator

from session_bridge.timefmt import ns_from_datetime

_NS_LIMIT = 2**63 - 1_000_000  # stored times are signed 64-bit nanoseconds (years 1678-2261)


def _storable(moment: datetime) -> datetime:
    if not -_NS_LIMIT < ns_from_datetime(moment) < _NS_LIMIT:
        raise ValueError("out of range: times must lie between the years 1678 and 2261")
    return moment


Timestamp = Annotated[datetime, AfterValidator(_storable)]
"""An ISO-8601 time (no offset: UTC) that nanoseconds since 1970 can hold."""


def since_ns(moment: datetime | None) -> int | None:
    """A lower time bound in nanoseconds (None: unbounded)."""
    return ns_from_datetime(moment) if moment is not None else None


def until_ns(moment: datetime | None) -> int | None:
    """An upper time bound in nanoseconds: times are given to the microsecond, so the
    whole of that microsecond is included (None: unbounded)."""
    return ns_from_datetime(moment) + 999 if moment is not None else None


From = Annotated[
    Timestamp | None, Query(alias="from", description="At or after this time (ISO 8601)")
]
To = Annotated[Timestamp | None, Query(alias="to", description="At or before this time (ISO 8601)")]
