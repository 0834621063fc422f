"""Parameter types shared by the query APIs."""

from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import AfterValidator

from session_bridge.api.errors import bad_parameter
from session_bridge.api.raw_path import PathSegment
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

SessionIdPath = Annotated[
    str,
    PathSegment,
    Path(alias="sessionId", min_length=1, max_length=1024, description="Session id"),
]
"""A session id in the path (percent-encode `/` and `%` in it: `a%2Fb`)."""


def _query_names(dependant: Dependant) -> set[str]:
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def nul_free(name: str, value: str) -> str:
    """`value`, refused when it holds a NUL character: no text column of PostgreSQL can,
    so it can match nothing stored (and the database would refuse the query)."""
    if "\x00" in value:
        raise bad_parameter(name, "contains a NUL character")
    return value


def checked_parameters(request: Request) -> None:
    """A route dependency: a query parameter the operation does not take is a 400 naming
    it (ignoring it would answer another question than the one asked, e.g. every session
    for a misspelt filter; repeating an accepted one is fine), and so is a path or query
    value holding a NUL character."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        nul_free(name, value)
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    accepted = _query_names(route.dependant)
    unknown = sorted(set(request.query_params) - accepted)
    if unknown:
        takes = f"accepted: {', '.join(sorted(accepted))}" if accepted else "it takes none"
        raise HTTPException(
            400,
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}"
            f" {', '.join(map(repr, unknown))}; {takes}",
        )


CHECKED_PARAMETERS = Depends(checked_parameters)
"""Put in every query API router's `dependencies`."""
