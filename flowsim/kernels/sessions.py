"""Stateful replay: a connection table per ENI, applied to stateless verdicts in time order.

A session is keyed by the ENI and the 5-tuple in canonical orientation (the
smaller endpoint first); it remembers which orientation opened it and when its
last packet passed. A packet in the reverse orientation of a live session
passes that ENI without its rules. Only allowed packets open or refresh sessions.
"""
import numba as nb
import numpy as np

READ_AHEAD = 16  # records: the session pass reads the home slots of the next block while it works on this one
SESSION = np.dtype([("ahi", np.uint64), ("alo", np.uint64), ("bhi", np.uint64), ("blo", np.uint64),
                    ("last", np.float64), ("eni", np.int32), ("aport", np.int32), ("bport", np.int32),
                    ("proto", np.int16), ("fam", np.uint8), ("opened_forward", np.bool_), ("used", np.bool_)],
                   align=True)


@nb.njit(cache=True, inline="always")
def _mix(h, v):
    h ^= v + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6)) + (h >> np.uint64(2))
    return h


@nb.njit(cache=True, inline="always")
def _canonical(fam, shi, slo, sport, dhi, dlo, dport):
    """(a_hi, a_lo, a_port, b_hi, b_lo, b_port, forward): the smaller endpoint first; forward if src is a."""
    forward = (shi < dhi) or (shi == dhi and (slo < dlo or (slo == dlo and sport <= dport)))
    if forward:
        return shi, slo, sport, dhi, dlo, dport, True
    return dhi, dlo, dport, shi, slo, sport, False


@nb.njit(cache=True, inline="always")
def _home(mask, eni, fam, proto, ahi, alo, aport, bhi, blo, bport):
    """The slot where a key's probe starts."""
    h = np.uint64(eni)
    h = _mix(h, ahi)
    h = _mix(h, alo)
    h = _mix(h, bhi)
    h = _mix(h, blo)
    h = _mix(h, np.uint64((aport << 16) ^ bport ^ (np.int64(proto) << 32) ^ (np.int64(fam) << 40)))
    return np.int64(h & np.uint64(mask))


@nb.njit(cache=True)
def apply_sessions(order, time, fam, shi, slo, dhi, dlo, proto, sport, dport, src_eni, dst_eni,
                   egress_ok, ingress_ok, verdict, table, used, timeout, stateful, egress_by_state, ingress_by_state):
    """Replay records in `order`; rewrites `verdict` (0 allow, 1 deny) where sessions decide.

    egress_ok/ingress_ok are the stateless decisions of each side; records with a NaN
    time or with no ENI side are left as they are. `used` is the number of slots in use.
    Returns (slots in use, sessions opened).
    """
    opened = 0
    mask = table.shape[0] - 1
    warmed = np.zeros(1, np.int64)  # keeps the read-ahead loads from being optimised away
    for j in range(order.shape[0]):
        if j % READ_AHEAD == 0:
            # read the home slots of the records one block ahead: independent loads, whose memory misses
            # overlap, where the probes below wait for one miss after another
            acc = 0
            for ahead in range(j + READ_AHEAD, min(j + 2 * READ_AHEAD, order.shape[0])):
                k = order[ahead]
                ahi, alo, aport, bhi, blo, bport, forward = _canonical(fam[k], shi[k], slo[k], sport[k], dhi[k], dlo[k],
                                                                       dport[k])
                for side in range(2):
                    e = src_eni[k] if side == 0 else dst_eni[k]
                    if e >= 0:
                        acc += table[_home(mask, e, fam[k], proto[k], ahi, alo, aport, bhi, blo, bport)].eni
            warmed[0] += acc
        i = order[j]
        stateful[i] = False
        egress_by_state[i] = False
        ingress_by_state[i] = False
        now = time[i]
        if np.isnan(now) or verdict[i] > 1 or (src_eni[i] < 0 and dst_eni[i] < 0):
            continue
        ahi, alo, aport, bhi, blo, bport, forward = _canonical(fam[i], shi[i], slo[i], sport[i], dhi[i], dlo[i], dport[i])
        allowed = True
        slot_egress = -1
        slot_ingress = -1
        for side in range(2):
            e = src_eni[i] if side == 0 else dst_eni[i]
            if e < 0:
                continue
            f, p = fam[i], proto[i]
            s = _home(mask, e, f, p, ahi, alo, aport, bhi, blo, bport)
            while table[s].used and not (table[s].eni == e and table[s].alo == alo and table[s].blo == blo
                                         and table[s].ahi == ahi and table[s].bhi == bhi and table[s].aport == aport
                                         and table[s].bport == bport and table[s].proto == p and table[s].fam == f):
                s = (s + 1) & mask
            if side == 0:
                slot_egress = s
            else:
                slot_ingress = s
            t = table[s]
            live = t.used and now - t.last <= timeout
            if live and t.opened_forward != forward:
                if side == 0:
                    egress_by_state[i] = True
                else:
                    ingress_by_state[i] = True
                stateful[i] = True
            elif not (egress_ok[i] if side == 0 else ingress_ok[i]):
                allowed = False
        verdict[i] = 0 if allowed else 1
        if not allowed:
            stateful[i] = False
            continue
        for side in range(2):
            s = slot_egress if side == 0 else slot_ingress
            if s < 0:
                continue
            t = table[s]
            if t.used and now - t.last <= timeout:
                if now > t.last:
                    t.last = now
                continue
            if not t.used:
                used += 1
            opened += 1
            t.used = True
            t.eni = src_eni[i] if side == 0 else dst_eni[i]
            t.fam = fam[i]
            t.proto = proto[i]
            t.ahi, t.alo, t.aport, t.bhi, t.blo, t.bport = ahi, alo, aport, bhi, blo, bport
            t.opened_forward = forward
            t.last = now
    return used, opened


@nb.njit(cache=True)
def rehash_live(table, new_table, now, timeout):
    """Copy the sessions still alive at `now` into an empty table; returns how many."""
    kept = 0
    mask = new_table.shape[0] - 1
    for s in range(table.shape[0]):
        if table[s].used and now - table[s].last <= timeout:
            # live keys are distinct: each goes to the first free slot from its home (no comparisons, no call
            # per session, which would reference-count the tables every time)
            d = _home(mask, table[s].eni, table[s].fam, table[s].proto, table[s].ahi, table[s].alo, table[s].aport,
                      table[s].bhi, table[s].blo, table[s].bport)
            while new_table[d].used:
                d = (d + 1) & mask
            new_table[d] = table[s]
            kept += 1
    return kept


@nb.njit(cache=True)
def count_live(table, now, timeout):
    """How many sessions are still alive at `now`."""
    live = 0
    for s in range(table.shape[0]):
        if table[s].used and now - table[s].last <= timeout:
            live += 1
    return live
