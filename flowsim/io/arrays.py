"""Columns of address and number text parsed into arrays (the kernels' (family, high, low) form)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np

from ..model.addresses import parts_address

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa


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
    from ..kernels.ipparse import parse_ips

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
    from ..kernels.ipparse import parse_ints

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
