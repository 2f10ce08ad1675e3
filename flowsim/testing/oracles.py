"""Slow, obvious answers that the fast paths are tested against."""
from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, parallel=True)
def _linear_scan(lo, hi, row_set, keys, key_set, out):
    """out[p] = smallest row r with row_set[r] == key_set[p] and lo[r] <= keys[p] <= hi[r]."""
    n = keys.shape[0]
    n_rows = lo.shape[0]
    dims = lo.shape[1]
    for p in nb.prange(n):
        s = key_set[p]
        res = -1
        for r in range(n_rows):
            if row_set[r] != s:
                continue
            ok = True
            for d in range(dims):
                k = keys[p, d]
                if k < lo[r, d] or k > hi[r, d]:
                    ok = False
                    break
            if ok:
                res = r
                break
        out[p] = res
    return out


def linear_scan(lo: np.ndarray, hi: np.ndarray, keys: np.ndarray, set_id: np.ndarray | None = None,
                key_set: np.ndarray | None = None) -> np.ndarray:
    """Brute-force first match (the test oracle): smallest matching row of the packet's set."""
    lo = np.ascontiguousarray(lo, dtype=np.uint32)
    hi = np.ascontiguousarray(hi, dtype=np.uint32)
    keys = np.ascontiguousarray(keys, dtype=np.uint32)
    n = lo.shape[0]
    row_set = np.zeros(n, np.int32) if set_id is None else np.ascontiguousarray(set_id, dtype=np.int32)
    ks = np.zeros(keys.shape[0], np.int32) if key_set is None else \
        np.ascontiguousarray(key_set, dtype=np.int32)
    out = np.empty(keys.shape[0], np.int32)
    if keys.shape[0]:
        _linear_scan(lo, hi, row_set, keys, ks, out)
    return out
