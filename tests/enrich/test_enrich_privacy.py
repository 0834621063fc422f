from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from session_bridge.config import parse
from session_bridge.enrich.privacy import UserIdPseudonymizer, truncate_ip
from session_bridge.enrich.stage import Enricher
from session_bridge.telemetry import BridgeMetrics

KEY = b"k" * 32


def test_pseudonym_is_keyed_hmac_sha256_prefix() -> None:
    pseudonymize = UserIdPseudonymizer(KEY)
    expected = "u_" + hmac.new(KEY, b"alice@example.com", hashlib.sha256).hexdigest()[:32]
    assert pseudonymize("alice@example.com") == expected
    assert re.fullmatch(r"u_[0-9a-f]{32}", expected)


def test_pseudonym_is_stable_for_the_same_key() -> None:
    assert UserIdPseudonymizer(KEY)("user-42") == UserIdPseudonymizer(KEY)("user-42")
    pseudonymize = UserIdPseudonymizer(KEY)
    assert pseudonymize("user-42") == pseudonymize("user-42")


def test_pseudonym_differs_per_key_and_per_user() -> None:
    assert UserIdPseudonymizer(KEY)("user-42") != UserIdPseudonymizer(b"x" * 32)("user-42")
    pseudonymize = UserIdPseudonymizer(KEY)
    assert pseudonymize("user-42") != pseudonymize("user-43")
    assert pseudonymize("") != pseudonymize(" ")


def test_pseudonym_handles_unicode() -> None:
    assert UserIdPseudonymizer(KEY)("jürgen") != UserIdPseudonymizer(KEY)("jurgen")


def test_short_key_is_rejected() -> None:
    with pytest.raises(ValueError):
        UserIdPseudonymizer(b"short")
    assert "kkkk" not in repr(UserIdPseudonymizer(KEY))


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("81.2.69.142", "81.2.69.0"),
        (" 10.1.2.3 ", "10.1.2.0"),
        ("2001:db8:abcd:12:3456::1", "2001:db8:abcd::"),
        ("2001:480:10::1", "2001:480:10::"),
        ("fe80::1%eth0", "fe80::"),
        ("::ffff:81.2.69.142", "81.2.69.0"),
        ("not an ip", None),
        ("", None),
        ("1.2.3", None),
        ("203.0.113.77/24", None),
    ],
)
def test_truncate_ip_defaults(ip: str, expected: str | None) -> None:
    assert truncate_ip(ip) == expected


def test_truncate_ip_prefixes() -> None:
    assert truncate_ip("203.0.113.77", ipv4_prefix=16) == "203.0.0.0"
    assert truncate_ip("203.0.113.77", ipv4_prefix=32) == "203.0.113.77"
    assert truncate_ip("203.0.113.77", ipv4_prefix=0) == "0.0.0.0"
    assert truncate_ip("2001:db8:abcd:12::1", ipv6_prefix=56) == "2001:db8:abcd::"
    assert truncate_ip("2001:db8:abcd:1234::1", ipv6_prefix=64) == "2001:db8:abcd:1234::"
    with pytest.raises(ValueError):
        truncate_ip("203.0.113.77", ipv4_prefix=33)
    with pytest.raises(ValueError):
        truncate_ip("::1", ipv6_prefix=-1)


@pytest.mark.parametrize(
    ("policy", "said"), [("keep", "kept"), ("truncate", "truncated"), ("drop", "dropped")]
)
def test_the_start_up_line_says_what_happens_to_client_ips(policy: str, said: str) -> None:
    config = parse(f"privacy:\n  client_ip: {policy}\nenrich:\n  user_agent:\n    enabled: false\n")
    lines = Enricher(config, BridgeMetrics()).describe()
    assert f"privacy: user ids kept, client IPs {said}" in lines
