"""Splitting records into the shards of a distributed replay: a hash of each record's canonical 5-tuple
(the same for a packet and its reply), then the records grouped by shard in one counting pass.

numpy took about a dozen whole-array passes for the hash and a comparison sort for the grouping, most of
a map task's time beside reading its file; here each is one pass over the records.
"""
import numba as nb
import numpy as np

MIX = np.uint64(0x9E3779B97F4A7C15)


@nb.njit(cache=True, inline="always")
def _mix(h, value):
    h = (h ^ np.uint64(value)) * MIX
    return h ^ (h >> np.uint64(29))


@nb.njit(cache=True)
def shard_ids(fam, proto, shi, slo, dhi, dlo, sport, dport, shards, out):
    """out[i]: record i's shard, a hash of (family, protocol) and its two endpoints (address, port) taken
    in sorted order, modulo `shards`."""
    for i in range(fam.shape[0]):
        a_hi, a_lo, a_port = shi[i], slo[i], np.uint64(sport[i])
        b_hi, b_lo, b_port = dhi[i], dlo[i], np.uint64(dport[i])
        if not ((a_hi < b_hi) or (a_hi == b_hi and ((a_lo < b_lo) or (a_lo == b_lo and a_port <= b_port)))):
            a_hi, a_lo, a_port, b_hi, b_lo, b_port = b_hi, b_lo, b_port, a_hi, a_lo, a_port
        h = (np.uint64(fam[i]) << np.uint64(8)) | np.uint64(proto[i])
        h = _mix(h, a_hi)
        h = _mix(h, a_lo)
        h = _mix(h, a_port)
        h = _mix(h, b_hi)
        h = _mix(h, b_lo)
        h = _mix(h, b_port)
        out[i] = np.int64(h % np.uint64(shards))


@nb.njit(cache=True)
def group_by_shard(ids, shards, order, bounds):
    """order: the record indices grouped by shard, in record order within each (a stable counting sort);
    bounds[s]:bounds[s + 1] the slice of order holding shard s."""
    bounds[:] = 0
    for i in range(ids.shape[0]):
        bounds[ids[i] + 1] += 1
    for s in range(shards):
        bounds[s + 1] += bounds[s]
    at = bounds[:shards].copy()
    for i in range(ids.shape[0]):
        s = ids[i]
        order[at[s]] = i
        at[s] += 1
