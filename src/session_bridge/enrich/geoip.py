"""Offline IP geolocation from MaxMind DB (.mmdb) files -> `GeoInfo`.

Uses `maxminddb` with MODE_AUTO (the C extension with mmap when available). Any database
in the MaxMind City/Country record layout works: GeoIP2/GeoLite2 City or Country,
GeoIP2 Enterprise, DB-IP "City Lite"/"Country Lite" in mmdb format, MaxMind test DBs.

Field mapping (English names, like the OTel Collector's geoipprocessor):

- country_code: country.iso_code (ISO 3166-1 alpha-2)
- country_name: country.names.en
- region: subdivisions[-1].names.en, i.e. the English name of the *most specific*
  subdivision ("West Berkshire" rather than "England" or the code "WBK"), which is what a
  session UI shows; falls back to that subdivision's iso_code if it has no English name
- city: city.names.en
- postal_code: postal.code
- timezone: location.time_zone (IANA name; only City databases have it)

Several databases: they are asked in the given order and, per field, the first database
that has a value wins (e.g. a City DB, then a Country DB for addresses the City DB lacks).
To avoid mixing places, a later database only contributes region/city/postal/timezone when
it agrees on the country already found (or none was found yet).

Addresses that are not globally routable (private, loopback, link-local, unspecified,
multicast, reserved, shared/CGNAT, documentation ranges: `ipaddress` `is_global` is
False), malformed strings and addresses no database knows give None, never an exception.
IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are looked up as IPv4.

Lookups are cached per instance in a bounded LRU keyed by the input string; the cache
holds immutable tuples and every call returns a fresh `GeoInfo`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import maxminddb

from session_bridge.model import GeoInfo

__all__ = ["GeoIpDatabase", "GeoIpDatabaseError", "GeoIpLookup"]

# (country_code, country_name, region, city, postal_code, timezone)
_Fields = tuple[str | None, str | None, str | None, str | None, str | None, str | None]
_EMPTY: Final[_Fields] = (None, None, None, None, None, None)


class GeoIpDatabaseError(ValueError):
    """A GeoIP database file is missing, unreadable or not a MaxMind DB."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"GeoIP database {str(path)!r}: {reason}")
        self.path = path


class GeoIpDatabase:
    """Description of one loaded database (for start-up logs)."""

    __slots__ = ("build_date", "database_type", "ip_version", "node_count", "path")

    def __init__(
        self, path: Path, database_type: str, build_date: _dt.date, ip_version: int, nodes: int
    ) -> None:
        self.path = path
        self.database_type = database_type
        self.build_date = build_date
        self.ip_version = ip_version
        self.node_count = nodes

    def __repr__(self) -> str:
        return (
            f"GeoIpDatabase({self.database_type}, path={str(self.path)!r}, "
            f"built={self.build_date.isoformat()}, ipv{self.ip_version})"
        )

    def __str__(self) -> str:
        return f"{self.database_type} ({self.path}, built {self.build_date.isoformat()})"


class GeoIpLookup:
    """Look up IP addresses in one or more MaxMind DB files (first answer per field wins).

    Raises `GeoIpDatabaseError` (a `ValueError`) naming the path if a file is missing,
    unreadable or invalid, and `ValueError` if no path is given.
    """

    def __init__(self, database_paths: Sequence[Path], cache_size: int = 8192) -> None:
        if isinstance(database_paths, (str, Path)):
            database_paths = [Path(database_paths)]
        if not database_paths:
            raise ValueError("GeoIpLookup needs at least one database path")
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self._readers: list[maxminddb.Reader] = []
        self._databases: list[GeoIpDatabase] = []
        try:
            for raw_path in database_paths:
                path = Path(raw_path)
                reader = _open(path)
                self._readers.append(reader)
                meta = reader.metadata()
                self._databases.append(
                    GeoIpDatabase(
                        path,
                        str(meta.database_type),
                        _dt.datetime.fromtimestamp(meta.build_epoch, tz=_dt.UTC).date(),
                        int(meta.ip_version),
                        int(meta.node_count),
                    )
                )
        except BaseException:
            self.close()
            raise
        self._cached = functools.lru_cache(maxsize=cache_size)(self._lookup_uncached)

    # -- public API -----------------------------------------------------------------

    def lookup(self, ip: str) -> GeoInfo | None:
        """Geolocate `ip`; None for non-global, malformed or unknown addresses."""
        fields = self._cached(ip)
        if fields is None:
            return None
        return GeoInfo(*fields)

    @property
    def databases(self) -> tuple[GeoIpDatabase, ...]:
        """The loaded databases, in lookup order."""
        return tuple(self._databases)

    def database_types(self) -> tuple[str, ...]:
        """`database_type` of each loaded database, e.g. ("GeoIP2-City", "GeoLite2-Country")."""
        return tuple(db.database_type for db in self._databases)

    def describe(self) -> str:
        """One line for a start-up log."""
        return "GeoIP databases: " + "; ".join(str(db) for db in self._databases)

    def cache_info(self) -> functools._CacheInfo:
        return self._cached.cache_info()

    def close(self) -> None:
        for reader in self._readers:
            reader.close()
        self._readers = []

    def __enter__(self) -> GeoIpLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------

    def _lookup_uncached(self, ip: str) -> _Fields | None:
        text = _public_address_text(ip)
        if text is None:
            return None
        merged: list[str | None] = list(_EMPTY)
        found = False
        for reader in self._readers:
            try:
                record = reader.get(text)
            except (ValueError, maxminddb.InvalidDatabaseError):
                # IPv6 address in an IPv4-only database, or a corrupt section.
                continue
            if not isinstance(record, dict):
                continue
            fields = _extract(record)
            if merged[0] is not None and fields[0] is not None and fields[0] != merged[0]:
                continue  # another country: do not mix places from disagreeing databases
            for i, value in enumerate(fields):
                if merged[i] is None and value is not None:
                    merged[i] = value
                    found = True
            if all(v is not None for v in merged):
                break
        if not found:
            return None
        return (merged[0], merged[1], merged[2], merged[3], merged[4], merged[5])


def _open(path: Path) -> maxminddb.Reader:
    if not path.is_file():
        reason = "is not a file" if path.exists() else "does not exist"
        raise GeoIpDatabaseError(path, reason)
    try:
        return maxminddb.open_database(path, maxminddb.MODE_AUTO)
    except maxminddb.InvalidDatabaseError as exc:
        raise GeoIpDatabaseError(path, f"not a valid MaxMind DB ({exc})") from exc
    except (OSError, ValueError) as exc:
        raise GeoIpDatabaseError(path, f"cannot be read ({exc})") from exc


def _public_address_text(ip: str) -> str | None:
    """The address to look up (the C reader parses strings fastest), or None if not global."""
    text = ip.strip() if isinstance(ip, str) else ""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
            text = str(address)
        elif address.scope_id is not None:
            return None  # zoned addresses are link-local by nature
    if not address.is_global or address.is_multicast:
        return None
    return text


def _english(node: Any) -> str | None:
    if isinstance(node, Mapping):
        names = node.get("names")
        if isinstance(names, Mapping):
            name = names.get("en")
            if isinstance(name, str) and name:
                return name
    return None


def _str(node: Any, key: str) -> str | None:
    if isinstance(node, Mapping):
        value = node.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _extract(record: Mapping[str, Any]) -> _Fields:
    country = record.get("country")
    region: str | None = None
    subdivisions = record.get("subdivisions")
    if isinstance(subdivisions, list) and subdivisions:
        most_specific = subdivisions[-1]
        region = _english(most_specific) or _str(most_specific, "iso_code")
    return (
        _str(country, "iso_code"),
        _english(country),
        region,
        _english(record.get("city")),
        _str(record.get("postal"), "code"),
        _str(record.get("location"), "time_zone"),
    )
