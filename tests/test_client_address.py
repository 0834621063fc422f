"""Client address behind trusted proxies: only trusted hops are skipped."""

from __future__ import annotations

import pytest

from session_bridge.enrich.client_address import ClientAddressResolver, grpc_peer_address

RESOLVER = ClientAddressResolver(["10.0.0.0/8", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "xff", "expected"),
    [
        ("203.0.113.5", None, "1.2.3.4", "203.0.113.5"),  # untrusted peer: headers ignored
        ("10.0.0.1", None, "198.51.100.7", "198.51.100.7"),
        ("10.0.0.1", None, "6.6.6.6, 198.51.100.7, 10.9.9.9", "198.51.100.7"),
        ("10.0.0.1", None, "10.1.1.1, 10.2.2.2", "10.1.1.1"),  # all trusted: the farthest one
        ("10.0.0.1", None, "garbage, 198.51.100.7", "198.51.100.7"),
        ("10.0.0.1", None, "198.51.100.7, garbage", "10.0.0.1"),  # unreadable hop: stop
        ("10.0.0.1", 'for="[2001:db8::9]:4711", for=192.0.2.60;proto=http', None, "192.0.2.60"),
        ("10.0.0.1", "for=192.0.2.60, for=10.3.3.3", "7.7.7.7", "192.0.2.60"),  # Forwarded first
        ("::ffff:10.0.0.1", None, "198.51.100.7", "198.51.100.7"),  # v4-mapped peer
        ("not-an-ip", None, None, None),
        (None, None, None, None),
    ],
)
def test_resolve(
    peer: str | None, forwarded: str | None, xff: str | None, expected: str | None
) -> None:
    assert RESOLVER.resolve(peer, forwarded, xff) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert ClientAddressResolver().resolve("10.0.0.1", None, "198.51.100.7") == "10.0.0.1"


def test_grpc_peer_strings() -> None:
    assert grpc_peer_address("ipv4:127.0.0.1:5000") == "127.0.0.1"
    assert grpc_peer_address("ipv6:[::1]:5000") == "::1"
    assert grpc_peer_address("unix:/tmp/s") is None
