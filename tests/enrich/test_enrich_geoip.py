from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from session_bridge.enrich.geoip import GeoIpDatabaseError, GeoIpLookup
from session_bridge.model import GeoInfo

CITY = "GeoIP2-City-Test.mmdb"
LITE_CITY = "GeoLite2-City-Test.mmdb"
COUNTRY = "GeoLite2-Country-Test.mmdb"

# Known records of the MaxMind test databases (tests/data/geoip/README.md).
CITY_CASES = [
    ("81.2.69.142", GeoInfo("GB", "United Kingdom", "England", "London", None, "Europe/London")),
    # most specific subdivision wins: West Berkshire (not England)
    (
        "2.125.160.216",
        GeoInfo("GB", "United Kingdom", "West Berkshire", "Boxford", "OX1", "Europe/London"),
    ),
    (
        "89.160.20.112",
        GeoInfo("SE", "Sweden", "Östergötland County", "Linköping", None, "Europe/Stockholm"),
    ),
    (
        "216.160.83.56",
        GeoInfo("US", "United States", "Washington", "Milton", "98354", "America/Los_Angeles"),
    ),
    ("175.16.199.0", GeoInfo("CN", "China", "Jilin Sheng", "Changchun", None, "Asia/Harbin")),
    (
        "214.78.120.1",
        GeoInfo("US", "United States", "California", "San Diego", "92105", "America/Los_Angeles"),
    ),
    # IPv6
    (
        "2001:480:10::1",
        GeoInfo("US", "United States", "California", "San Diego", "92101", "America/Los_Angeles"),
    ),
    # IPv4-mapped IPv6 is looked up as IPv4
    (
        "::ffff:81.2.69.142",
        GeoInfo("GB", "United Kingdom", "England", "London", None, "Europe/London"),
    ),
]

NO_ANSWER = [
    "8.8.8.8",  # not in the test databases
    "10.0.0.1",
    "192.168.1.10",
    "172.16.0.1",
    "127.0.0.1",
    "::1",
    "169.254.1.1",
    "fe80::1",
    "fe80::1%eth0",
    "0.0.0.0",
    "::",
    "100.64.0.1",  # shared address space (CGNAT)
    "224.0.0.1",
    "",
    "   ",
    "garbage",
    "1.2.3",
    "81.2.69.142:443",
    "256.1.1.1",
]


@pytest.fixture(scope="module")
def city(geoip_dir: Path) -> GeoIpLookup:
    return GeoIpLookup([geoip_dir / CITY, geoip_dir / COUNTRY])


@pytest.mark.parametrize(("ip", "expected"), CITY_CASES)
def test_city_database(city: GeoIpLookup, ip: str, expected: GeoInfo) -> None:
    assert city.lookup(ip) == expected


@pytest.mark.parametrize("ip", NO_ANSWER)
def test_non_public_malformed_or_unknown_addresses(city: GeoIpLookup, ip: str) -> None:
    assert city.lookup(ip) is None


def test_geolite_city_database(geoip_dir: Path) -> None:
    lookup = GeoIpLookup([geoip_dir / LITE_CITY])
    assert lookup.lookup("2.125.160.216") == GeoInfo(
        "GB", "United Kingdom", "West Berkshire", "Boxford", "OX1", "Europe/London"
    )
    assert lookup.lookup("214.78.120.1") is None  # not in GeoLite2-City-Test
    assert lookup.database_types() == ("GeoLite2-City",)


def test_country_database_only(geoip_dir: Path) -> None:
    lookup = GeoIpLookup([geoip_dir / COUNTRY])
    assert lookup.lookup("81.2.69.142") == GeoInfo(country_code="GB", country_name="United Kingdom")
    assert lookup.lookup("2001:480:10::1") == GeoInfo("US", "United States")
    assert lookup.lookup("175.16.199.0") is None


def test_country_database_fills_addresses_the_city_database_lacks(city: GeoIpLookup) -> None:
    # 217.65.48.0/29 and 50.114.0.0/22 are only in the Country test database
    assert city.lookup("217.65.48.1") == GeoInfo(country_code="GI", country_name="Gibraltar")
    assert city.lookup("50.114.0.1") == GeoInfo("US", "United States")


def test_first_database_wins_per_field(geoip_dir: Path) -> None:
    country_first = GeoIpLookup([geoip_dir / COUNTRY, geoip_dir / CITY])
    # the Country DB answers country; region/city/postal/timezone still come from the City DB
    assert country_first.lookup("2.125.160.216") == GeoInfo(
        "GB", "United Kingdom", "West Berkshire", "Boxford", "OX1", "Europe/London"
    )


class _FakeReader:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def get(self, address: object) -> dict[str, Any]:
        return self.record

    def close(self) -> None:
        pass


def test_disagreeing_databases_are_not_mixed(geoip_dir: Path) -> None:
    lookup = GeoIpLookup([geoip_dir / COUNTRY])
    fakes: list[Any] = [  # two databases that disagree on the country
        _FakeReader({"country": {"iso_code": "FR", "names": {"en": "France"}}}),
        _FakeReader(
            {
                "country": {"iso_code": "DE", "names": {"en": "Germany"}},
                "city": {"names": {"en": "Berlin"}},
                "location": {"time_zone": "Europe/Berlin"},
            }
        ),
    ]
    lookup._readers = fakes
    assert lookup.lookup("81.2.69.142") == GeoInfo("FR", "France")


def test_results_are_cached_and_independent(city: GeoIpLookup) -> None:
    first = city.lookup("89.160.20.112")
    assert first is not None
    hits = city.cache_info().hits
    first.city = "changed"
    second = city.lookup("89.160.20.112")
    assert city.cache_info().hits == hits + 1
    assert second is not None and second.city == "Linköping"


def test_database_description(city: GeoIpLookup, geoip_dir: Path) -> None:
    assert city.database_types() == ("GeoIP2-City", "GeoLite2-Country")
    assert [db.path for db in city.databases] == [geoip_dir / CITY, geoip_dir / COUNTRY]
    line = city.describe()
    assert "GeoIP2-City" in line and "GeoLite2-Country" in line and CITY in line


def test_missing_database_names_the_path(geoip_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "GeoLite2-City.mmdb"
    with pytest.raises(GeoIpDatabaseError, match=r"GeoLite2-City\.mmdb.*does not exist"):
        GeoIpLookup([geoip_dir / CITY, missing])
    with pytest.raises(ValueError, match=re.escape(str(missing))):
        GeoIpLookup([missing])


def test_invalid_database_names_the_path(geoip_dir: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.mmdb"
    bogus.write_bytes(b"not a maxmind database" * 10)
    with pytest.raises(GeoIpDatabaseError, match=r"bogus\.mmdb.*not a valid MaxMind DB"):
        GeoIpLookup([bogus])
    with pytest.raises(GeoIpDatabaseError, match="is not a file"):
        GeoIpLookup([tmp_path])


def test_no_database() -> None:
    with pytest.raises(ValueError, match="at least one"):
        GeoIpLookup([])


def test_close(geoip_dir: Path) -> None:
    with GeoIpLookup([geoip_dir / COUNTRY]) as lookup:
        assert lookup.lookup("81.2.69.142") is not None
