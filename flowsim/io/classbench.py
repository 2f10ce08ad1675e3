"""Read ClassBench filter sets and traces into classifier arrays.

Rule lines: ``@src/len<TAB>dst/len<TAB>lo : hi<TAB>lo : hi<TAB>0xPP/0xMM[<TAB>flags/mask]``;
line order is priority order; a protocol mask of 0xFF is exact and 0x00 any; the
flags field is ignored.  Rules become ``(lo, hi)`` uint32 arrays of shape (n, 5) with
dimensions (src, dst, sport, dport, proto).

Trace lines: ``src dst sport dport proto flags rule`` (whitespace separated); the
first five columns become a (n, 5) uint32 key array.  The last column is only an
upper bound on the true first match (``read_trace(..., with_bound=True)``).
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np

from ..errors import InputError, Problem
from ..kernels import classify as K

__all__ = ["read_rules", "read_trace", "DIMS"]

DIMS = ("src", "dst", "sport", "dport", "proto")

_RULE_ERRORS = {
    K.PE_AT: "a rule line must start with '@'",
    K.PE_SRC: "bad source prefix (expected a.b.c.d/len, len 0..32)",
    K.PE_DST: "bad destination prefix (expected a.b.c.d/len, len 0..32)",
    K.PE_SPORT: "bad source port range (expected 'lo : hi', 0 <= lo <= hi <= 65535)",
    K.PE_DPORT: "bad destination port range (expected 'lo : hi', 0 <= lo <= hi <= 65535)",
    K.PE_PROTO: "bad protocol (expected 0xPP/0xFF or 0xPP/0x00)",
    K.PE_FLAGS: "bad flags field (expected 0xVVVV/0xMMMM)",
    K.PE_TRAILING: "unexpected text after the flags field",
    K.PE_SHORT: "the line ends early (expected src, dst, sport, dport and protocol fields)",
}

_TRACE_ERRORS = {
    K.PE_FIELDS: "a trace line needs at least 5 whitespace-separated unsigned integers",
    K.PE_RANGE: "value out of range (addresses < 2**32, ports < 65536, protocol < 256)",
}


def _load(path: str | PathLike) -> tuple[str, np.ndarray]:
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(Problem(f"cannot read: {exc.strerror or exc}", source=name)) from exc
    return name, np.frombuffer(data, np.uint8)


def read_rules(path: str | PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Parse a ClassBench filter file into (lo, hi), each uint32 of shape (n, 5)."""
    name, buf = _load(path)
    lo, hi, _lines, status, bad = K.parse_rules(buf)
    if status != K.PARSE_OK:
        raise InputError(Problem(_RULE_ERRORS.get(status, "malformed rule"), "rule",
                                 source=name, line=int(bad)))
    return np.ascontiguousarray(lo), np.ascontiguousarray(hi)


def read_trace(path: str | PathLike, *, with_bound: bool = False):
    """Parse a ClassBench trace into keys (n, 5) uint32 (and the bound column, -1 if absent)."""
    name, buf = _load(path)
    keys, bound, status, bad = K.parse_trace(buf)
    if status != K.PARSE_OK:
        raise InputError(Problem(_TRACE_ERRORS.get(status, "malformed trace line"), "trace",
                                 source=name, line=int(bad)))
    keys = np.ascontiguousarray(keys)
    return (keys, np.ascontiguousarray(bound)) if with_bound else keys
