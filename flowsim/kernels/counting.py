"""Counting for replay summaries: a chunk's verdicts and rule hits in one pass, and the most denied
flows in a hash table kept across chunks (a directory over an arena, kernels.probing), pruned to the
most counted ones when it fills."""
import numba as nb
import numpy as np

from .evaluate import ALLOW, DENY, UNMANAGED
from .intrinsics import prefetch
from .probing import ask_for_entry, home, next_slot, point_at, word, word_index, word_tag

HASH_AHEAD = 16  # rows: a row this far ahead is hashed and its directory line asked for
ENTRY_AHEAD = 8  # rows: ... and the entry its tag names, this far ahead
_RING = 32

FLOW_COUNT = np.dtype([("shi", np.uint64), ("slo", np.uint64), ("dhi", np.uint64), ("dlo", np.uint64),
                       ("count", np.int64), ("dport", np.int32), ("proto", np.int16), ("fam", np.uint8)], align=True)


TALLIES = ("evaluated", "allowed", "denied", "unmanaged", "stateful", "stateless")  # what tally counts, in order


@nb.njit(cache=True)
def tally(valid, timed, verdict, stateful, egress_code, ingress_code, counts, hits, denied_rows):
    """Add a chunk's valid records to `counts` (TALLIES, in order) and each side's deciding code to
    hits[code + 1] (no rule, code -1, at 0); the rows denied go to `denied_rows`. Returns how many."""
    denied = 0
    for i in range(valid.shape[0]):
        if not valid[i]:
            continue
        counts[0] += 1
        v = verdict[i]
        if v == ALLOW:
            counts[1] += 1
        elif v == DENY:
            counts[2] += 1
            denied_rows[denied] = i
            denied += 1
        elif v == UNMANAGED:
            counts[3] += 1
        if stateful[i]:
            counts[4] += 1
        if not timed[i]:
            counts[5] += 1
        hits[egress_code[i] + 1] += 1
        hits[ingress_code[i] + 1] += 1
    return denied


@nb.njit(cache=True, inline="always")
def _tag(fam, shi, slo, dhi, dlo, proto, dport):
    """The top 32 bits of the flow's hash."""
    h = np.uint64(fam) | (np.uint64(proto) << np.uint64(8)) | (np.uint64(dport) << np.uint64(24))
    for v in (shi, slo, dhi, dlo):
        h = (h ^ v) * np.uint64(0x100000001B3)
        h ^= h >> np.uint64(29)
    h *= np.uint64(0x9E3779B97F4A7C15)
    return h >> np.uint64(32)


@nb.njit(cache=True)
def add_flows(rows, weights, fam, shi, slo, dhi, dlo, proto, dport, directory, arena, used):
    """Count the flows (fam, src, dst, protocol, destination port) of `rows` into the table, by `weights`
    (an empty array counts each row once); returns the entries in use. The caller leaves room in the
    arena for every row and keeps the directory at least twice the arena's size."""
    size = directory.shape[0]
    n = rows.shape[0]
    tags = np.empty(_RING, np.uint64)
    directory_at, arena_at = directory.ctypes.data, arena.ctypes.data
    for j in range(-HASH_AHEAD, n):
        ahead = j + HASH_AHEAD
        if ahead < n:
            k = rows[ahead]
            t = _tag(fam[k], shi[k], slo[k], dhi[k], dlo[k], proto[k], dport[k])
            tags[ahead % _RING] = t
            prefetch(directory_at + home(t, size) * 8)
        near = j + ENTRY_AHEAD
        if 0 <= near < n:
            ask_for_entry(directory, tags[near % _RING], arena_at, arena.itemsize)
        if j < 0:
            continue
        i = rows[j]
        t = tags[j % _RING]
        s = home(t, size)
        x = -1
        while directory[s] != 0:
            if word_tag(directory[s]) == t:
                x = word_index(directory[s])
                e = arena[x]
                if (e.slo == slo[i] and e.dlo == dlo[i] and e.shi == shi[i] and e.dhi == dhi[i] and e.dport == dport[i]
                        and e.proto == proto[i] and e.fam == fam[i]):
                    break
                x = -1
            s = next_slot(s, size)
        if x < 0:
            x = used
            used += 1
            directory[s] = word(t, x)
            e = arena[x]
            e.fam, e.shi, e.slo, e.dhi, e.dlo, e.proto, e.dport = fam[i], shi[i], slo[i], dhi[i], dlo[i], proto[i], dport[i]
            e.count = 0
        arena[x].count += weights[j] if weights.shape[0] else 1
    return used


@nb.njit(cache=True)
def keep_most_counted(directory, arena, used, keep):
    """Keep the `keep` most counted of the arena's first `used` flows (among equal counts, those counted
    first), moved to its front in order, the cleared directory pointing at them; returns how many."""
    if used <= keep:
        return used
    counts = np.empty(used, np.int64)
    for x in range(used):
        counts[x] = arena[x].count
    threshold = np.partition(counts, used - keep)[used - keep] if keep > 0 else counts.max() + 1
    ties = keep - (counts > threshold).sum()  # flows of the threshold count still to keep
    directory[:] = 0
    kept = 0
    for x in range(used):
        if counts[x] < threshold or (counts[x] == threshold and ties == 0):
            continue
        if counts[x] == threshold:
            ties -= 1
        if kept != x:
            arena[kept] = arena[x]
        e = arena[kept]
        point_at(directory, _tag(e.fam, e.shi, e.slo, e.dhi, e.dlo, e.proto, e.dport), kept)
        kept += 1
    return kept
