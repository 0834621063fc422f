"""The address of the client that sent an OTLP request, behind trusted proxies.

The peer address is believed as it is unless it belongs to a configured trusted
proxy network; then `Forwarded` (RFC 7239) or else `X-Forwarded-For` is read
right to left, skipping trusted hops, and the first untrusted address is the
client. An address a client wrote itself can never be taken unless every hop
after it is trusted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FORWARDED_FOR = re.compile(r'for="?\[?([^\]";,]+)\]?(?::\d+)?"?', re.IGNORECASE)


@dataclass(frozen=True)
class RequestInfo:
    """What the receiver knows about the OTLP request itself."""

    client_ip: str | None = None


class ClientAddressResolver:
    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        self._trusted: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in trusted_proxies
        )

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._trusted)

    def resolve(
        self, peer: str | None, forwarded: str | None = None, x_forwarded_for: str | None = None
    ) -> str | None:
        """The client's address for a request from `peer` with these headers."""
        peer_address = _parse(peer)
        if peer_address is None:
            return None
        if not self._trusted or not self._is_trusted(peer_address):
            return str(peer_address)
        hops: list[str] = []
        if forwarded:
            hops = _FORWARDED_FOR.findall(forwarded)
        elif x_forwarded_for:
            hops = [h.strip() for h in x_forwarded_for.split(",")]
        client = peer_address
        for hop in reversed(hops):
            address = _parse(hop)
            if address is None:
                break  # unreadable hop: stop at the last address we could trust
            client = address
            if not self._is_trusted(address):
                break
        return str(client)


def _parse(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def grpc_peer_address(peer: str) -> str | None:
    """`ipv4:1.2.3.4:5678` / `ipv6:[::1]:5678` (grpc's `context.peer()`) -> the address."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return None


def header(metadata: Iterable[tuple[str, str | bytes]], name: str) -> str | None:
    for key, value in metadata:
        if key == name:
            return value.decode() if isinstance(value, bytes) else value
    return None
