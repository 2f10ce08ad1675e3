"""Addresses as numbers: the (family, high 64 bits, low 64 bits) form every table and kernel uses.

IPv4 keeps its 32 bits in the low word with a zero high word; the family tells
the two apart, so an IPv4 CIDR never matches an IPv6 address.
"""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Iterable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

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


def _string_buffers(arr: "pa.Array") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bytes, offsets and validity of a pyarrow string array (any string type)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.large_string())
    arr = arr.cast(pa.large_string())
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=n + 1, offset=arr.offset * 8)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    return data, offsets, valid


def parse_ip_array(arr: "pa.Array") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a column of address text; family 0 marks text that is not an address."""
    from .kernels.ipparse import parse_ips

    data, offsets, valid = _string_buffers(arr)
    return parse_ips(data, offsets, valid)


def parse_int_array(arr: "pa.Array", lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column of decimal text (or integers) into int64 with an ok mask."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_integer(arr.type):
        if arr.null_count == 0:  # the common case, without a copy to fill nulls
            vals = arr.to_numpy()
            ok = (vals >= lo) & (vals <= hi)
            return (vals.astype(np.int64) if ok.all() else np.where(ok, vals, 0).astype(np.int64)), ok
        vals = arr.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        ok = arr.is_valid().to_numpy(zero_copy_only=False) & (vals >= lo) & (vals <= hi)
        return np.where(ok, vals, 0), ok
    if pa.types.is_floating(arr.type):
        vals = arr.fill_null(-1.0).to_numpy(zero_copy_only=False)
        ok = arr.is_valid().to_numpy(zero_copy_only=False) & (vals == np.floor(vals)) & (vals >= lo) & (vals <= hi)
        return np.where(ok, vals, 0).astype(np.int64), ok
    from .kernels.ipparse import parse_ints

    data, offsets, valid = _string_buffers(arr)
    return parse_ints(data, offsets, valid, lo, hi)


def parse_ip_list(texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a Python sequence of address strings (convenience for small inputs and tests)."""
    import pyarrow as pa

    return parse_ip_array(pa.array(list(texts), type=pa.large_string()))


def format_ips(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """Address text for each (family, high, low); empty text where the family is 0."""
    out: list[str] = []
    for f, h, l in zip(fam.tolist(), hi.tolist(), lo.tolist()):
        out.append(str(parts_address(f, h, l)) if f else "")
    return out
