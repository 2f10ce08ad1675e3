"""Security-group evaluation kernels: address ownership, first-match scan, path and endpoint mode.

Tables come from `flowsim.compiler`; this module sees only arrays. Codes:
verdict 0 allow, 1 deny, 2 unmanaged, 3 error (address owned in several VPCs);
rule codes -1 for "side does not apply", 0..3 the default rules
(intra-group allow, inbound deny, outbound allow, outbound deny), 4+k custom row k's rule.

Tables travel as tuples but are unpacked once per work chunk: unpacking a tuple
of arrays inside the per-flow loop costs reference counting on every flow.
"""
import numba as nb
import numpy as np

ALLOW, DENY, UNMANAGED, AMBIGUOUS = 0, 1, 2, 3
INTRA_ALLOW, INBOUND_DENY, OUTBOUND_ALLOW, OUTBOUND_DENY = 0, 1, 2, 3
NO_RULE = -1
DIR_INGRESS, DIR_EGRESS = 1, 2
ENI_NONE, ENI_UNKNOWN = -1, -2
SEVERAL = -3
CHUNK = 4096  # flows per parallel work item


# ---------------------------------------------------------------- address ownership
@nb.njit(cache=True, inline="always")
def _slot(fam, hi, lo, mask):
    """Hash of a (masked) address into an open-addressing table of mask + 1 slots."""
    h = (hi * np.uint64(0x9E3779B97F4A7C15)) ^ (lo * np.uint64(0xC2B2AE3D27D4EB4F)) ^ np.uint64(fam)
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))


@nb.njit(cache=True, inline="always")
def _mask_address(hi, lo, plen):
    """The address with every bit after the first plen of 128 cleared (IPv4 lives in bits 96..127)."""
    if plen >= 128:
        return hi, lo
    if plen >= 64:
        return hi, lo & ~((np.uint64(1) << np.uint64(128 - plen)) - np.uint64(1))
    if plen == 0:
        return np.uint64(0), np.uint64(0)
    return hi & ~((np.uint64(1) << np.uint64(64 - plen)) - np.uint64(1)), np.uint64(0)


OWNER_SLOT = np.dtype([("hi", np.uint64), ("lo", np.uint64), ("vpc", np.int32), ("eni", np.int32),
                       ("plen", np.int16), ("fam", np.uint8)], align=True)
RULE_ROW = np.dtype([("dlo", np.uint16), ("dhi", np.uint16), ("slo", np.uint16), ("shi", np.uint16),
                     ("proto", np.int16), ("pfam", np.uint8), ("lfam", np.uint8), ("group", np.int32), ("code", np.int32),
                     ("pshi", np.uint64), ("pslo", np.uint64), ("pehi", np.uint64), ("pelo", np.uint64),
                     ("lshi", np.uint64), ("lslo", np.uint64), ("lehi", np.uint64), ("lelo", np.uint64),
                     ("accept", np.bool_)], align=True)
N_PCLASS = 5  # rows are listed per protocol class: tcp, udp, icmp, icmpv6, any other


@nb.njit(cache=True, inline="always")
def protocol_class(proto):
    """The row list a packet of this protocol consults (rules for `all` are in every list)."""
    if proto == 6:
        return 0
    if proto == 17:
        return 1
    if proto == 1:
        return 2
    if proto == 58:
        return 3
    return 4


@nb.njit(cache=True)
def fill_owner_table(slots, fam, hi, lo, plen, vpc, eni):
    """Insert owned blocks (already masked) into an empty hash table (its size a power of two)."""
    mask = slots.shape[0] - 1
    for i in range(fam.shape[0]):
        s = _slot(fam[i], hi[i], lo[i] ^ np.uint64(plen[i]), mask)
        while slots[s].fam != 0:
            s = (s + 1) & mask
        slots[s].fam = fam[i]
        slots[s].hi = hi[i]
        slots[s].lo = lo[i]
        slots[s].plen = plen[i]
        slots[s].vpc = vpc[i]
        slots[s].eni = eni[i]


@nb.njit(cache=True, inline="always")
def _owner(vpc, fam, hi, lo, plens, slots, shared):
    """ENI owning an address in one VPC, or in the single VPC that owns it when vpc < 0 (SEVERAL: ambiguous).

    Blocks are probed longest first; `shared` says whether any address is owned in
    more than one VPC (only then must a VPC-less lookup look further than the first hit).
    """
    mask = slots.shape[0] - 1
    row = 0 if fam == 4 else 1
    found = -1
    for j in range(plens.shape[1]):
        plen = plens[row, j]
        if plen < 0:
            break
        mhi, mlo = _mask_address(hi, lo, plen)
        s = _slot(fam, mhi, mlo ^ np.uint64(plen), mask)
        while slots[s].fam != 0:
            slot = slots[s]
            if slot.fam == fam and slot.plen == plen and slot.hi == mhi and slot.lo == mlo:
                if vpc >= 0:
                    if slot.vpc == vpc:
                        return slot.eni
                elif not shared:
                    return slot.eni
                elif found >= 0 and found != slot.eni:
                    return SEVERAL
                else:
                    found = slot.eni
            s = (s + 1) & mask
    return found


# ---------------------------------------------------------------- one ENI, one direction
@nb.njit(cache=True, inline="always")
def _in_range(fam, hi, lo, rf, rshi, rslo, rehi, relo):
    """Whether (fam, hi, lo) lies in the family's range; written without branches (`&`, `|`)."""
    above_start = (hi > rshi) | ((hi == rshi) & (lo >= rslo))
    below_end = (hi < rehi) | ((hi == rehi) & (lo <= relo))
    return (rf == fam) & above_start & below_end


@nb.njit(cache=True, inline="always")
def _has_group(eni_groups, eni, group):
    for j in range(eni_groups.shape[1]):
        g = eni_groups[eni, j]
        if g == group:
            return True
        if g < 0:
            return False
    return False


@nb.njit(cache=True, inline="always")
def _shares_open_group(profile, peer_eni, prof_open_groups, eni_groups):
    """Whether the peer ENI carries one of the profile's interconnected (basic, accept) groups."""
    for j in range(prof_open_groups.shape[1]):
        g = prof_open_groups[profile, j]
        if g < 0:
            return False
        if _has_group(eni_groups, peer_eni, g):
            return True
    return False


# ---------------------------------------------------------------- flows
@nb.njit(cache=True)
def _evaluate_range(first, last, sfam, shi, slo, dfam, dhi, dlo, proto, sport, dport, vpc, eni, direction,
                    plens, slots, shared, eni_profile, eni_groups, eni_vpc, prof_advanced, prof_open_groups, seg,
                    members, rows, verdict, egress_code, ingress_code, src_eni, dst_eni):
    """Flows first..last-1. Each applicable side (egress at the source ENI, ingress at the destination ENI)
    is decided as semantics.md §2 says: defaults layered around a first-match scan of the side's row list.
    The side logic is written out here rather than called: a call per side costs more than the scan."""
    for i in range(first, last):
        e = eni[i]
        egress_code[i] = NO_RULE
        ingress_code[i] = NO_RULE
        src_eni[i] = -1
        dst_eni[i] = -1
        if e == ENI_UNKNOWN:
            verdict[i] = UNMANAGED
            continue
        if e >= 0:  # endpoint mode: one ENI, the recorded direction; the other address is resolved in its VPC
            v = vpc[i] if vpc[i] >= 0 else eni_vpc[e]
            if direction[i] == DIR_INGRESS:
                dst_eni[i] = e
                first_side, last_side, dst = 1, 2, e
                src = _owner(v, sfam[i], shi[i], slo[i], plens, slots, shared)
            else:
                src_eni[i] = e
                first_side, last_side, src = 0, 1, e
                dst = _owner(v, dfam[i], dhi[i], dlo[i], plens, slots, shared)
        else:
            src = _owner(vpc[i], sfam[i], shi[i], slo[i], plens, slots, shared)
            dst = _owner(vpc[i], dfam[i], dhi[i], dlo[i], plens, slots, shared)
            if src == SEVERAL or dst == SEVERAL:
                verdict[i] = AMBIGUOUS
                continue
            src_eni[i] = src
            dst_eni[i] = dst
            if src < 0 and dst < 0:
                verdict[i] = UNMANAGED
                continue
            if src == dst:  # never leaves the ENI
                verdict[i] = ALLOW
                continue
            first_side, last_side = 0, 2
        pr, sp, dp = proto[i], sport[i], dport[i]
        pclass = protocol_class(pr)
        allowed = True
        for side in range(first_side, last_side):
            ingress = side == 1
            me, peer = (dst, src) if ingress else (src, dst)
            if me < 0:
                continue
            if ingress:
                pf, ph, pl, lf, lh, ll = sfam[i], shi[i], slo[i], dfam[i], dhi[i], dlo[i]
            else:
                pf, ph, pl, lf, lh, ll = dfam[i], dhi[i], dlo[i], sfam[i], shi[i], slo[i]
            profile = eni_profile[me]
            advanced = prof_advanced[profile]
            if ingress and not advanced and peer >= 0 and _shares_open_group(profile, peer, prof_open_groups, eni_groups):
                ok, code = True, INTRA_ALLOW
            else:
                if ingress:
                    ok, code = False, INBOUND_DENY
                elif advanced:
                    ok, code = False, OUTBOUND_DENY
                else:
                    ok, code = True, OUTBOUND_ALLOW
                s = ((profile * 2 + (0 if ingress else 1)) * 2 + (1 if pf == 6 else 0)) * N_PCLASS + pclass
                for m in range(seg[s], seg[s + 1]):
                    r = rows[members[m]]
                    # every test of a row at once, without branches: rows fail for unpredictable reasons
                    hit = ((r.proto < 0) | (r.proto == pr)) & (dp >= r.dlo) & (dp <= r.dhi) & (sp >= r.slo) & (sp <= r.shi)
                    hit &= (r.group >= 0) | _in_range(pf, ph, pl, r.pfam, r.pshi, r.pslo, r.pehi, r.pelo)
                    hit &= (r.lfam == 0) | _in_range(lf, lh, ll, r.lfam, r.lshi, r.lslo, r.lehi, r.lelo)
                    if hit and (r.group < 0 or (peer >= 0 and _has_group(eni_groups, peer, r.group))):
                        ok, code = r.accept, r.code
                        break
            if ingress:
                ingress_code[i] = code
            else:
                egress_code[i] = code
            allowed = allowed and ok
        verdict[i] = ALLOW if allowed else DENY


@nb.njit(cache=True, parallel=True)
def evaluate_flows(sfam, shi, slo, dfam, dhi, dlo, proto, sport, dport, vpc, eni, direction,
                   owners, tables, verdict, egress_code, ingress_code, src_eni, dst_eni):
    """Verdicts of many flows; path mode where eni[i] == -1, endpoint mode where eni[i] >= 0.

    Besides verdicts and deciding-rule codes, it reports the ENI checked on each side (-1: none).
    """
    plens, slots, shared = owners
    eni_profile, eni_groups, eni_vpc, prof_advanced, prof_open_groups, seg, members, rows = tables
    n = sfam.shape[0]
    for c in nb.prange((n + CHUNK - 1) // CHUNK):
        _evaluate_range(c * CHUNK, min(n, (c + 1) * CHUNK), sfam, shi, slo, dfam, dhi, dlo, proto, sport, dport,
                        vpc, eni, direction, plens, slots, shared, eni_profile, eni_groups, eni_vpc,
                        prof_advanced, prof_open_groups, seg, members, rows, verdict, egress_code, ingress_code,
                        src_eni, dst_eni)
