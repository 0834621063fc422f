from __future__ import annotations

from pathlib import Path

import pytest

from session_bridge.enrich.useragent import UserAgentParser

# MaxMind's synthetic test databases, with their licence and README (what they hold).
GEOIP_DIR = Path(__file__).resolve().parents[1] / "data" / "geoip"


@pytest.fixture(scope="session")
def geoip_dir() -> Path:
    if not (GEOIP_DIR / "GeoIP2-City-Test.mmdb").is_file():
        pytest.fail(f"MaxMind test databases not found in {GEOIP_DIR}")
    return GEOIP_DIR


@pytest.fixture(scope="session")
def ua_parser() -> UserAgentParser:
    # Building the Rust regex set takes ~0.1 s: share one parser across the tests.
    return UserAgentParser(cache_size=256)
