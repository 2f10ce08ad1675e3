"""Addresses as numbers: the (family, high 64 bits, low 64 bits) form every table and kernel uses.

IPv4 keeps its 32 bits in the low word with a zero high word; the family tells
the two apart, so an IPv4 CIDR never matches an IPv6 address.
"""
from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_M64 = (1 << 64) - 1


def split_int(value: int) -> tuple[int, int]:
    """A 128-bit integer as (high, low) 64-bit words."""
    return (value >> 64) & _M64, value & _M64


def address_parts(addr: IPAddress) -> tuple[int, int, int]:
    """(family, high, low) of one address."""
    hi, lo = split_int(int(addr))
    return addr.version, hi, lo


def network_bounds(net: IPNetwork) -> tuple[int, int, int, int, int]:
    """(family, first-high, first-low, last-high, last-low) of a CIDR block."""
    fhi, flo = split_int(int(net.network_address))
    lhi, llo = split_int(int(net.broadcast_address))
    return net.version, fhi, flo, lhi, llo


def parts_address(fam: int, hi: int, lo: int) -> IPAddress:
    """The address object for (family, high, low)."""
    if fam == 4:
        return ipaddress.IPv4Address(int(lo))
    return ipaddress.IPv6Address((int(hi) << 64) | int(lo))
