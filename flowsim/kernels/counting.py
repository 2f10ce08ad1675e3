"""Counting distinct 64-bit keys in one pass (replay's most-denied flows), with an open-addressing table."""
import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def count_keys(keys):
    """(first index, count) of every distinct key, in order of first appearance."""
    n = keys.shape[0]
    size = 16
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    slot_key = np.zeros(size, np.uint64)
    slot_first = np.full(size, -1, np.int64)
    slot_count = np.zeros(size, np.int64)
    distinct = 0
    for i in range(n):
        k = keys[i]
        s = ((k * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(17)) & mask
        while slot_first[s] >= 0 and slot_key[s] != k:
            s = (s + np.uint64(1)) & mask
        if slot_first[s] < 0:
            slot_key[s] = k
            slot_first[s] = i
            distinct += 1
        slot_count[s] += 1
    first = np.empty(distinct, np.int64)
    counts = np.empty(distinct, np.int64)
    j = 0
    for s in range(size):
        if slot_first[s] >= 0:
            first[j] = slot_first[s]
            counts[j] = slot_count[s]
            j += 1
    order = np.argsort(first)
    return first[order], counts[order]
