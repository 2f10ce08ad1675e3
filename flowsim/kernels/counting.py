"""Counting for replay summaries: a chunk's verdicts and rule hits in one pass, and the most denied
flows in an open-addressing table kept across chunks, pruned in place to the most counted ones when
it fills."""
import numba as nb
import numpy as np

from .evaluate import ALLOW, DENY, UNMANAGED
from .intrinsics import prefetch
from .probing import remove_where

PREFETCH_AHEAD = 8  # rows: the slot of a row this far ahead is asked for while this one is counted
_RING = 16

# one flow per 48-byte slot, so that a probe touches one cache line
FLOW_COUNT = np.dtype([("shi", np.uint64), ("slo", np.uint64), ("dhi", np.uint64), ("dlo", np.uint64),
                       ("count", np.int64), ("dport", np.int32), ("proto", np.int16), ("fam", np.uint8),
                       ("used", np.bool_)], align=True)


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
def _slot(mask, fam, shi, slo, dhi, dlo, proto, dport):
    h = np.uint64(fam) | (np.uint64(proto) << np.uint64(8)) | (np.uint64(dport) << np.uint64(24))
    for v in (shi, slo, dhi, dlo):
        h = (h ^ v) * np.uint64(0x100000001B3)
        h ^= h >> np.uint64(29)
    h *= np.uint64(0x9E3779B97F4A7C15)
    return np.int64((h >> np.uint64(20)) & np.uint64(mask))


@nb.njit(cache=True)
def add_flows(rows, weights, fam, shi, slo, dhi, dlo, proto, dport, table, used):
    """Count the flows (fam, src, dst, protocol, destination port) of `rows` into `table`, by `weights`
    (an empty array counts each row once); returns the slots in use. The caller keeps the table, whose
    size is a power of two, under half full."""
    mask = table.shape[0] - 1
    n = rows.shape[0]
    slots = np.empty(_RING, np.int64)
    base = table.ctypes.data
    for j in range(-PREFETCH_AHEAD, n):
        ahead = j + PREFETCH_AHEAD
        if ahead < n:
            k = rows[ahead]
            slots[ahead % _RING] = _slot(mask, fam[k], shi[k], slo[k], dhi[k], dlo[k], proto[k], dport[k])
            prefetch(base + slots[ahead % _RING] * table.itemsize)
        if j < 0:
            continue
        i = rows[j]
        s = slots[j % _RING]
        while table[s].used and not (table[s].slo == slo[i] and table[s].dlo == dlo[i] and table[s].shi == shi[i]
                                     and table[s].dhi == dhi[i] and table[s].dport == dport[i]
                                     and table[s].proto == proto[i] and table[s].fam == fam[i]):
            s = (s + 1) & mask
        t = table[s]
        if not t.used:
            t.used = True
            t.fam, t.shi, t.slo, t.dhi, t.dlo, t.proto, t.dport = fam[i], shi[i], slo[i], dhi[i], dlo[i], proto[i], dport[i]
            t.count = 0  # a slot freed by pruning keeps its old count
            used += 1
        t.count += weights[j] if weights.shape[0] else 1
    return used


@nb.njit(cache=True)
def _entry_slot(t, size):
    return _slot(size - 1, t.fam, t.shi, t.slo, t.dhi, t.dlo, t.proto, t.dport)


@nb.njit(cache=True)
def _below(t, cut):
    """Whether entry t falls below the cut (threshold count, equal counts still to keep); keeping an
    entry of the threshold count uses one of those."""
    threshold, ties = cut
    count = t.count
    if count > threshold:
        return False
    if count == threshold and ties[0] > 0:
        ties[0] -= 1
        return False
    return True


@nb.njit(cache=True)
def keep_most_counted(table, keep):
    """Remove, in place, all but the `keep` most counted flows (among equal counts, those met first);
    returns the slots in use."""
    counts = np.empty(table.shape[0], np.int64)
    m = 0
    for s in range(table.shape[0]):
        if table[s].used:
            counts[m] = table[s].count
            m += 1
    if m <= keep:
        return m
    threshold = np.partition(counts[:m], m - keep)[m - keep] if keep > 0 else counts[:m].max() + 1
    ties = np.full(1, keep - (counts[:m] > threshold).sum())
    return remove_where(table, _entry_slot, _below, (threshold, ties))
