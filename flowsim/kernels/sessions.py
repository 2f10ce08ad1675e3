"""Stateful replay: a connection table per ENI, applied to stateless verdicts in time order.

A session belongs to an ENI and a 5-tuple in either orientation (semantics.md §5).
An entry of the table is keyed by the 5-tuple and two ENIs, one per endpoint; it
stores the 5-tuple as the packet that opened it saw it, when its last packet
passed, and its home: the slot where its probe starts, from a hash that gives both
orientations the same value.

The session of ENI e alone is the entry (e, e). When the ENIs of a record's two
sides are a function of its flow (captures and flow tables that name no ENI or
VPC: an address has one owner), both sessions are always opened and refreshed
together, and the `merged` entry (source ENI, destination ENI) holds the two:
one probe per record instead of two. A packet in the reverse orientation of a
live session passes that ENI without rules. Only allowed packets open or refresh
sessions.
"""
import numba as nb
import numpy as np

from .evaluate import NO_RULE
from .intrinsics import prefetch
from .probing import next_slot, remove_where

PREFETCH_AHEAD = 8  # records: the session pass asks for the slots of a record this far ahead
_RING = 16  # home slots kept for the records between the one being decided and the one asked for
SESSION = np.dtype([("shi", np.uint64), ("slo", np.uint64), ("dhi", np.uint64), ("dlo", np.uint64),
                    ("last", np.float64), ("seni", np.int32), ("deni", np.int32), ("sport", np.int32),
                    ("dport", np.int32), ("proto", np.int16), ("fam", np.uint8), ("used", np.bool_),
                    ("home", np.int32)],
                   align=True)


@nb.njit(cache=True, inline="always")
def _mix(h, v):
    h ^= v + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6)) + (h >> np.uint64(2))
    return h


@nb.njit(cache=True, inline="always")
def _home(size, fam, proto, seni, shi, slo, sport, deni, dhi, dlo, dport):
    """The slot where a key's probe starts; the same for both orientations. Any table size works
    (the top 32 bits of the hash, scaled), so that tables grow by less than doubling."""
    x = _mix(_mix(np.uint64(sport) ^ (np.uint64(seni + 1) << np.uint64(16)), shi), slo)
    y = _mix(_mix(np.uint64(dport) ^ (np.uint64(deni + 1) << np.uint64(16)), dhi), dlo)
    h = (x + y) ^ (x * y) ^ (np.uint64(proto) << np.uint64(32)) ^ (np.uint64(fam) << np.uint64(48))
    h = (h ^ (h >> np.uint64(31))) * np.uint64(0x9E3779B97F4A7C15)
    return np.int64(((h >> np.uint64(32)) * np.uint64(size)) >> np.uint64(32))


@nb.njit(cache=True, inline="always")
def _keys(se, de, merged):
    """The entries a record touches, as ENI pairs: (a0, b0, a1, b1), the second pair (-1, -1) if none."""
    if se >= 0 and de >= 0 and se != de and not merged:
        return se, se, de, de
    a = se if se >= 0 else de
    b = de if de >= 0 else se
    return a, b, -1, -1


@nb.njit(cache=True, inline="always")
def _match(t, f, p, a, shi, slo, sport, b, dhi, dlo, dport):
    """Whether entry t holds the key: 0 no, 1 as the packet sees it, 2 reversed (the packet is its reply).
    It takes the entry, not the table: numba reference-counts an array handed to a function, atomic
    operations that stall the probes' overlapping memory misses."""
    if t.proto != p or t.fam != f:
        return 0
    if (t.slo == slo and t.dlo == dlo and t.shi == shi and t.dhi == dhi and t.sport == sport
            and t.dport == dport and t.seni == a and t.deni == b):
        return 1
    if (t.slo == dlo and t.dlo == slo and t.shi == dhi and t.dhi == shi and t.sport == dport
            and t.dport == sport and t.seni == b and t.deni == a):
        return 2
    return 0


@nb.njit(cache=True)
def apply_sessions(order, time, fam, shi, slo, dhi, dlo, proto, sport, dport, src_eni, dst_eni,
                   egress_code, ingress_code, code_allows, verdict, table, used, timeout, merged,
                   egress_by_state, ingress_by_state):
    """Replay records in `order`; rewrites `verdict` (0 allow, 1 deny) where sessions decide.

    egress_code/ingress_code are the stateless decisions of each side (a rule code, allowing
    where code_allows says so, or NO_RULE: allowed); a side a live session lets through has
    its code set to NO_RULE. Records with a NaN time, a verdict past deny or no ENI side are
    left as they are. egress_by_state and ingress_by_state come zero-filled and are set on the
    sides a live session let through. `used` is the number of slots in use. Returns (slots in
    use, sessions opened, one per ENI).
    """
    opened = 0
    size = table.shape[0]
    n = order.shape[0]
    homes = np.empty((_RING, 2), np.int64)
    base = table.ctypes.data
    found = np.empty(2, np.int64)
    for j in range(-PREFETCH_AHEAD, n):
        ahead = j + PREFETCH_AHEAD
        if ahead < n:
            # each probe is a memory miss; asking for the slots of a record some records ahead overlaps them
            k = order[ahead]
            a0, b0, a1, b1 = _keys(src_eni[k], dst_eni[k], merged)
            h = _home(size, fam[k], proto[k], a0, shi[k], slo[k], sport[k], b0, dhi[k], dlo[k], dport[k])
            prefetch(base + h * table.itemsize)
            homes[ahead % _RING, 0] = h
            if a1 >= 0:
                h = _home(size, fam[k], proto[k], a1, shi[k], slo[k], sport[k], b1, dhi[k], dlo[k], dport[k])
                prefetch(base + h * table.itemsize)
                homes[ahead % _RING, 1] = h
        if j < 0:
            continue
        i = order[j]
        now = time[i]
        se, de = src_eni[i], dst_eni[i]
        if np.isnan(now) or verdict[i] > 1 or (se < 0 and de < 0):
            continue
        f, p = fam[i], proto[i]
        a0, b0, a1, b1 = _keys(se, de, merged)
        entries = 2 if a1 >= 0 else 1
        for e in range(entries):
            a, b = (a0, b0) if e == 0 else (a1, b1)
            # the key's entry, or the free slot that ends its probe
            s = homes[j % _RING, e]
            m = 0
            while table[s].used:
                m = _match(table[s], f, p, a, shi[i], slo[i], sport[i], b, dhi[i], dlo[i], dport[i])
                if m != 0:
                    break
                s = next_slot(s, size)
            found[e] = s
            if m == 2 and now - table[s].last <= timeout:
                # the entry is the session of ENI a (b) on the source (destination) side
                if se >= 0 and (entries == 1 or e == 0):
                    egress_by_state[i] = True
                if de >= 0 and (entries == 1 or e == 1):
                    ingress_by_state[i] = True
        ec, ic = egress_code[i], ingress_code[i]
        if ((se < 0 or egress_by_state[i] or ec < 0 or code_allows[ec])
                and (de < 0 or ingress_by_state[i] or ic < 0 or code_allows[ic])):
            verdict[i] = 0
            if egress_by_state[i]:
                egress_code[i] = NO_RULE
            if ingress_by_state[i]:
                ingress_code[i] = NO_RULE
        else:
            verdict[i] = 1
            egress_by_state[i] = False
            ingress_by_state[i] = False
            continue
        for e in range(entries):
            a, b = (a0, b0) if e == 0 else (a1, b1)
            s = found[e]
            if e == 1 and s == found[0]:  # both probes ended at one free slot, which the first entry took
                while table[s].used:  # go on to the next free slot: the key is not in the table
                    s = next_slot(s, size)
            t = table[s]
            if t.used and now - t.last <= timeout:
                if now > t.last:
                    t.last = now
                continue
            if not t.used:
                used += 1
            opened += 1 if a == b else 2
            t.used = True
            t.fam, t.proto = f, p
            t.seni, t.shi, t.slo, t.sport = a, shi[i], slo[i], sport[i]
            t.deni, t.dhi, t.dlo, t.dport = b, dhi[i], dlo[i], dport[i]
            t.last, t.home = now, homes[j % _RING, e]
    return used, opened


@nb.njit(cache=True, inline="always")
def _entry_home(t, size):
    """The home of session entry t in a table of `size` slots."""
    return _home(size, t.fam, t.proto, t.seni, t.shi, t.slo, t.sport, t.deni, t.dhi, t.dlo, t.dport)


@nb.njit(cache=True, inline="always")
def _stored_home(t, size):
    """The home of session entry t in its own table, as stored there: removal moves many entries, and
    hashing each key again measured about half of clearing the table."""
    return t.home


@nb.njit(cache=True)
def rehash_live(table, new_table, now, timeout):
    """Copy the sessions still alive at `now` into an empty table; returns how many."""
    kept = 0
    size = new_table.shape[0]
    for s in range(table.shape[0]):
        if table[s].used and now - table[s].last <= timeout:
            # live keys are distinct: each goes to the first free slot from its home
            home = _entry_home(table[s], size)
            d = home
            while new_table[d].used:
                d = next_slot(d, size)
            new_table[d] = table[s]
            new_table[d].home = home
            kept += 1
    return kept


@nb.njit(cache=True)
def _expired(t, horizon):
    now, timeout = horizon
    return now - t.last > timeout


@nb.njit(cache=True)
def expire_sessions(table, now, timeout):
    """Remove, in place, the sessions expired at `now`; returns how many remain."""
    return remove_where(table, _stored_home, _expired, (now, timeout))
