"""Stateful replay: a connection table per ENI, applied to stateless verdicts in time order.

A session belongs to an ENI and a 5-tuple in either orientation (docs/semantics.md §5).
An entry is keyed by the 5-tuple and two ENIs, one per endpoint; it stores the
5-tuple as the packet that opened it saw it, and when its last packet passed.

The session of ENI e alone is the entry (e, e). When the ENIs of a record's two
sides are a function of its flow (captures and flow tables that name no ENI or
VPC: an address has one owner), both sessions are always opened and refreshed
together, and the `merged` entry (source ENI, destination ENI) holds the two:
one probe per record instead of two. A packet in the reverse orientation of a
live session passes that ENI without rules. Only allowed packets open or refresh
sessions.

An entry also keeps how its opening packet was evaluated (`mode`: 0 path mode,
else the endpoint-mode direction), so that a configuration change can evaluate
that packet again (docs/semantics.md §5, rule changes during a trace).

The table is a directory over an arena of entries (kernels.probing); an entry
keeps its tag, the same for both orientations, for rebuilding the directory after
expired entries are cleared, which happens when the arena is full.
"""
from typing import NamedTuple

import numba as nb
import numpy as np

from .evaluate import NO_RULE
from .intrinsics import prefetch
from .probing import ask_for_entry, home, next_slot, point_at, word, word_index, word_tag

HASH_AHEAD = 16  # records: the session pass hashes a record this far ahead and asks for its directory line
ENTRY_AHEAD = 8  # records: ... and reads the directory of a record this far ahead, asking for the entry it names
_RING = 32  # tags kept for the records between the one being decided and the one hashed
SESSION = np.dtype([("shi", np.uint64), ("slo", np.uint64), ("dhi", np.uint64), ("dlo", np.uint64),
                    ("last", np.float64), ("seni", np.int32), ("deni", np.int32), ("sport", np.int32),
                    ("dport", np.int32), ("proto", np.int16), ("fam", np.uint8), ("mode", np.uint8), ("tag", np.uint32)],
                   align=True)


@nb.njit(cache=True, inline="always")
def _mix(h, v):
    h ^= v + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6)) + (h >> np.uint64(2))
    return h


@nb.njit(cache=True, inline="always")
def _tag(fam, proto, seni, shi, slo, sport, deni, dhi, dlo, dport):
    """The top 32 bits of the key's hash, the same for both orientations."""
    x = _mix(_mix(np.uint64(sport) ^ (np.uint64(seni + 1) << np.uint64(16)), shi), slo)
    y = _mix(_mix(np.uint64(dport) ^ (np.uint64(deni + 1) << np.uint64(16)), dhi), dlo)
    h = (x + y) ^ (x * y) ^ (np.uint64(proto) << np.uint64(32)) ^ (np.uint64(fam) << np.uint64(48))
    h = (h ^ (h >> np.uint64(31))) * np.uint64(0x9E3779B97F4A7C15)
    return h >> np.uint64(32)


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


class Records(NamedTuple):
    """A chunk's records as the session pass reads them (the source's family stands for both addresses)."""

    time: np.ndarray  # seconds; NaN: the record has no time and is left as it is
    fam: np.ndarray
    shi: np.ndarray
    slo: np.ndarray
    dhi: np.ndarray
    dlo: np.ndarray
    proto: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    src_eni: np.ndarray  # the ENI of each side, -1 none
    dst_eni: np.ndarray
    mode: np.ndarray  # how each record was evaluated: 0 path mode, else its endpoint-mode direction


class Decisions(NamedTuple):
    """What the session pass rewrites: the stateless decisions, and which sides a session let through."""

    egress_code: np.ndarray  # each side's deciding-rule code (NO_RULE: allowed, or no such side)
    ingress_code: np.ndarray
    verdict: np.ndarray  # 0 allow, 1 deny; past deny: not a flow to replay
    egress_by_state: np.ndarray  # zero-filled; set where a live session let the side through
    ingress_by_state: np.ndarray


@nb.njit(cache=True)
def apply_sessions(order, records, decisions, code_allows, directory, arena, count, timeout, merged):
    """Replay records in `order`; rewrites the verdict (0 allow, 1 deny) where sessions decide.

    The side codes are the stateless decisions (a rule code, allowing where code_allows says so, or
    NO_RULE: allowed); a side a live session lets through has its code set to NO_RULE and its
    `*_by_state` flag set. A record's `mode` is kept in the entries it opens. Records with a NaN time,
    a verdict past deny or no ENI side are left as they are, and so are those between two addresses of
    one ENI. `count` entries of the arena are in use; the caller leaves room for every entry the
    records may open, and keeps the directory at most half full. Returns (entries in use, sessions
    opened, one per ENI).

    The per-record loop stays one function: helpers that take the tables as arrays would be
    reference-counted per call, atomic operations that stall the probes' overlapping misses.
    """
    time, fam, shi, slo, dhi, dlo, proto, sport, dport, src_eni, dst_eni, mode = records
    egress_code, ingress_code, verdict, egress_by_state, ingress_by_state = decisions
    opened = 0
    size = directory.shape[0]
    n = order.shape[0]
    tags = np.empty((_RING, 2), np.uint64)
    pairs = np.empty(_RING, np.int64)
    directory_at, arena_at = directory.ctypes.data, arena.ctypes.data
    slot = np.empty(2, np.int64)
    index = np.empty(2, np.int64)
    for j in range(-HASH_AHEAD, n):
        # each record costs a directory read and, where its tag is there, an entry read: both are asked
        # for records ahead, in two stages, so that their cache misses overlap
        ahead = j + HASH_AHEAD
        if ahead < n:
            k = order[ahead]
            a0, b0, a1, b1 = _keys(src_eni[k], dst_eni[k], merged)
            pairs[ahead % _RING] = 2 if a1 >= 0 else 1
            for e in range(pairs[ahead % _RING]):
                a, b = (a0, b0) if e == 0 else (a1, b1)
                t = _tag(fam[k], proto[k], a, shi[k], slo[k], sport[k], b, dhi[k], dlo[k], dport[k])
                tags[ahead % _RING, e] = t
                prefetch(directory_at + home(t, size) * 8)
        near = j + ENTRY_AHEAD
        if 0 <= near < n:
            for e in range(pairs[near % _RING]):
                ask_for_entry(directory, tags[near % _RING, e], arena_at, arena.itemsize)
        if j < 0:
            continue
        i = order[j]
        now = time[i]
        se, de = src_eni[i], dst_eni[i]
        if np.isnan(now) or verdict[i] > 1 or se == de:  # no ENI side, or one ENI whose traffic never leaves it
            continue
        f, p = fam[i], proto[i]
        a0, b0, a1, b1 = _keys(se, de, merged)
        entries = pairs[j % _RING]
        for e in range(entries):
            a, b = (a0, b0) if e == 0 else (a1, b1)
            # the key's entry, or the free directory slot that ends its probe
            t = tags[j % _RING, e]
            s = home(t, size)
            x = -1
            m = 0
            while directory[s] != 0:
                if word_tag(directory[s]) == t:
                    x = word_index(directory[s])
                    m = _match(arena[x], f, p, a, shi[i], slo[i], sport[i], b, dhi[i], dlo[i], dport[i])
                    if m != 0:
                        break
                    x = -1
                s = next_slot(s, size)
            slot[e], index[e] = s, x
            if m == 2 and now - arena[x].last <= timeout:
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
            x = index[e]
            if x >= 0:
                if now - arena[x].last <= timeout:
                    if now > arena[x].last:
                        arena[x].last = now
                    continue
            else:
                s = slot[e]
                while directory[s] != 0:  # the first entry took the free slot both probes ended at
                    s = next_slot(s, size)
                x = count
                count += 1
                directory[s] = word(tags[j % _RING, e], x)
            opened += 1 if a == b else 2
            t = arena[x]
            t.fam, t.proto, t.mode, t.tag = f, p, mode[i], tags[j % _RING, e]
            t.seni, t.shi, t.slo, t.sport = a, shi[i], slo[i], sport[i]
            t.deni, t.dhi, t.dlo, t.dport = b, dhi[i], dlo[i], dport[i]
            t.last = now
    return count, opened


@nb.njit(cache=True)
def keep_live(arena, count, now, timeout, new_arena, new_directory):
    """Copy the entries of arena[:count] still alive at `now` to the front of `new_arena`, in order,
    and point the zero-filled `new_directory` at them; returns how many. `new_arena` may be `arena`
    itself: an entry only moves towards the front."""
    kept = 0
    size = new_directory.shape[0]
    directory_at = new_directory.ctypes.data
    for x in range(count):
        if x + HASH_AHEAD < count:
            prefetch(directory_at + home(np.uint64(arena[x + HASH_AHEAD].tag), size) * 8)
        if now - arena[x].last <= timeout:
            if kept != x or new_arena.ctypes.data != arena.ctypes.data:
                new_arena[kept] = arena[x]
            point_at(new_directory, np.uint64(arena[x].tag), kept)
            kept += 1
    return kept
