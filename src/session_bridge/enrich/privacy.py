"""Privacy helpers: keyed user-id pseudonyms and IP truncation.

`UserIdPseudonymizer` maps a user id to `"u_" + hex(HMAC-SHA256(key, utf8(user_id)))[:32]`:

- keyed (HMAC, not a bare hash), so ids cannot be recovered by hashing candidate ids
  without the key; the same key gives the same pseudonym across restarts and replicas,
  a different key gives unrelated pseudonyms (rotate the key to unlink old data);
- 32 hex characters = 128 bits, far beyond any realistic collision risk, and short enough
  for UI columns and URLs; the "u_" prefix makes pseudonyms recognisable and keeps them
  from being mistaken for (or colliding with) raw ids that are hex strings.

`truncate_ip` keeps only the network part of an address (default /24 for IPv4, /48 for
IPv6, as commonly used for IP anonymisation) and returns it as a string.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from typing import Final

__all__ = ["MIN_KEY_BYTES", "PSEUDONYM_PREFIX", "UserIdPseudonymizer", "truncate_ip"]

PSEUDONYM_PREFIX: Final = "u_"
MIN_KEY_BYTES: Final = 16
_HEX_CHARS: Final = 32


class UserIdPseudonymizer:
    """Keyed, stable pseudonyms for user ids (see the module docstring)."""

    __slots__ = ("_template",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)):
            raise TypeError("key must be bytes")
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"key must be at least {MIN_KEY_BYTES} bytes (32 recommended)")
        self._template = hmac.new(bytes(key), digestmod=hashlib.sha256)

    def __call__(self, user_id: str) -> str:
        mac = self._template.copy()
        mac.update(user_id.encode("utf-8", "surrogatepass"))
        return PSEUDONYM_PREFIX + mac.hexdigest()[:_HEX_CHARS]

    def __repr__(self) -> str:  # never show the key
        return "UserIdPseudonymizer(key=<hidden>)"


def truncate_ip(ip: str, ipv4_prefix: int = 24, ipv6_prefix: int = 48) -> str | None:
    """Network address of `ip` under the given prefix length, e.g. 203.0.113.7 -> 203.0.113.0.

    IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are treated as IPv4; an IPv6 zone id is
    dropped. Returns None if `ip` is not an IP address. Raises ValueError for a prefix
    length outside 0..32 / 0..128.
    """
    if not 0 <= ipv4_prefix <= 32:
        raise ValueError(f"ipv4_prefix must be in 0..32, got {ipv4_prefix}")
    if not 0 <= ipv6_prefix <= 128:
        raise ValueError(f"ipv6_prefix must be in 0..128, got {ipv6_prefix}")
    # Fast paths: inet_pton/inet_ntop (C) for plain IPv4 and IPv6 strings; the ipaddress
    # module (10x slower) handles whitespace, zone ids and the rare formatting edge cases.
    try:
        packed = socket.inet_pton(socket.AF_INET, ip)
    except (OSError, TypeError, ValueError):
        pass
    else:
        return _truncate_v4(packed, ipv4_prefix)
    try:
        packed = socket.inet_pton(socket.AF_INET6, ip)
    except (OSError, TypeError, ValueError):
        pass
    else:
        if packed[:12] == _V4_MAPPED_PREFIX:
            return _truncate_v4(packed[12:], ipv4_prefix)
        masked = (int.from_bytes(packed, "big") & _V6_MASKS[ipv6_prefix]).to_bytes(16, "big")
        if masked[:10] != _TEN_ZERO_BYTES:  # inet_ntop writes ::/80 addresses as ::a.b.c.d
            return socket.inet_ntop(socket.AF_INET6, masked)
        return str(ipaddress.IPv6Address(masked))
    try:
        address = ipaddress.ip_address(ip.strip())
    except (ValueError, AttributeError):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        return _truncate_v4(address.packed, ipv4_prefix)
    return str(ipaddress.IPv6Address(int(address) & _V6_MASKS[ipv6_prefix]))


_V4_MAPPED_PREFIX: Final = b"\x00" * 10 + b"\xff\xff"
_TEN_ZERO_BYTES: Final = b"\x00" * 10
_V6_MASKS: Final = tuple(((1 << 128) - 1) ^ ((1 << (128 - n)) - 1) for n in range(129))


def _truncate_v4(packed: bytes, prefix: int) -> str:
    mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return socket.inet_ntoa((int.from_bytes(packed, "big") & mask).to_bytes(4, "big"))
