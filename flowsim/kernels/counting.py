"""Counting distinct 64-bit keys in one pass (replay's most-denied flows), with an open-addressing table."""
import numba as nb
import numpy as np

# one record per slot, so that a probe touches one cache line; `first` is the key's first index plus one (0: empty)
SLOT = np.dtype([("key", np.uint64), ("first", np.int64), ("count", np.int64)])


@nb.njit(cache=True, nogil=True)
def count_keys(keys, table):
    """(first index, count) of every distinct key, in table order; `table` is an empty SLOT array of at least
    twice as many slots as keys, its size a power of two."""
    mask = np.uint64(table.shape[0] - 1)
    distinct = 0
    for i in range(keys.shape[0]):
        k = keys[i]
        s = ((k * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(17)) & mask
        while table[s].first != 0 and table[s].key != k:
            s = (s + np.uint64(1)) & mask
        if table[s].first == 0:
            table[s].key = k
            table[s].first = i + 1
            distinct += 1
        table[s].count += 1
    first = np.empty(distinct, np.int64)
    counts = np.empty(distinct, np.int64)
    j = 0
    for s in range(table.shape[0]):
        if table[s].first != 0:
            first[j] = table[s].first - 1
            counts[j] = table[s].count
            j += 1
    return first, counts
