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


@nb.njit(cache=True)
def _decide(eni, ingress, pfam, phi, plo, peer_eni, lfam, lhi, llo, proto, sport, dport,
            eni_profile, eni_groups, prof_advanced, prof_open_groups, seg, members, rows):
    """(allowed, rule code) of one ENI in one direction (semantics.md §2): defaults around a first-match scan."""
    profile = eni_profile[eni]
    advanced = prof_advanced[profile]
    if ingress and not advanced and peer_eni >= 0:
        for j in range(prof_open_groups.shape[1]):
            g = prof_open_groups[profile, j]
            if g < 0:
                break
            if _has_group(eni_groups, peer_eni, g):
                return True, INTRA_ALLOW
    s = ((profile * 2 + (0 if ingress else 1)) * 2 + (1 if pfam == 6 else 0)) * N_PCLASS + protocol_class(proto)
    for m in range(seg[s], seg[s + 1]):
        r = rows[members[m]]
        # every test of a row at once, without branches: rows fail for unpredictable reasons
        ok = ((r.proto < 0) | (r.proto == proto)) & (dport >= r.dlo) & (dport <= r.dhi) & (sport >= r.slo) & (sport <= r.shi)
        ok &= (r.group >= 0) | _in_range(pfam, phi, plo, r.pfam, r.pshi, r.pslo, r.pehi, r.pelo)
        ok &= (r.lfam == 0) | _in_range(lfam, lhi, llo, r.lfam, r.lshi, r.lslo, r.lehi, r.lelo)
        if ok:
            if r.group >= 0 and (peer_eni < 0 or not _has_group(eni_groups, peer_eni, r.group)):
                continue
            return r.accept, r.code
    if ingress:
        return False, INBOUND_DENY
    if advanced:
        return False, OUTBOUND_DENY
    return True, OUTBOUND_ALLOW


# ---------------------------------------------------------------- flows
@nb.njit(cache=True)
def _evaluate_range(first, last, sfam, shi, slo, dfam, dhi, dlo, proto, sport, dport, vpc, eni, direction,
                    plens, slots, shared, eni_profile, eni_groups, eni_vpc, prof_advanced, prof_open_groups, seg, members, rows,
                    verdict, egress_code, ingress_code, src_eni, dst_eni):
    for i in range(first, last):
        e = eni[i]
        egress_code[i] = NO_RULE
        ingress_code[i] = NO_RULE
        src_eni[i] = -1
        dst_eni[i] = -1
        if e == ENI_UNKNOWN:
            verdict[i] = UNMANAGED
            continue
        if e >= 0:  # endpoint mode: one ENI, the recorded direction; the other side is still resolved
            v = vpc[i] if vpc[i] >= 0 else eni_vpc[e]
            ingress = direction[i] == DIR_INGRESS
            if ingress:
                pf, ph, pl, lf, lh, ll = sfam[i], shi[i], slo[i], dfam[i], dhi[i], dlo[i]
            else:
                pf, ph, pl, lf, lh, ll = dfam[i], dhi[i], dlo[i], sfam[i], shi[i], slo[i]
            peer = _owner(v, pf, ph, pl, plens, slots, shared)
            ok, code = _decide(e, ingress, pf, ph, pl, peer, lf, lh, ll, proto[i], sport[i], dport[i],
                               eni_profile, eni_groups, prof_advanced, prof_open_groups, seg, members, rows)
            if ingress:
                ingress_code[i] = code
                dst_eni[i] = e
            else:
                egress_code[i] = code
                src_eni[i] = e
            verdict[i] = ALLOW if ok else DENY
            continue
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
        ok = True
        if src >= 0:
            ok, code = _decide(src, False, dfam[i], dhi[i], dlo[i], dst, sfam[i], shi[i], slo[i], proto[i], sport[i],
                               dport[i], eni_profile, eni_groups, prof_advanced, prof_open_groups, seg, members, rows)
            egress_code[i] = code
        if dst >= 0:
            a, code = _decide(dst, True, sfam[i], shi[i], slo[i], src, dfam[i], dhi[i], dlo[i], proto[i], sport[i],
                              dport[i], eni_profile, eni_groups, prof_advanced, prof_open_groups, seg, members, rows)
            ingress_code[i] = code
            ok = ok and a
        verdict[i] = ALLOW if ok else DENY


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
