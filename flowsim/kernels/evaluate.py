"""Security-group evaluation kernels: address ownership, first-match scan, path and endpoint mode.

Tables come from `flowsim.engine.compiler`; this module sees only arrays. Codes:
verdict 0 allow, 1 deny, 2 unmanaged, 3 error (address owned in several VPCs);
rule codes -1 for "side does not apply", 0..4 the default rules
(intra-group allow, inbound deny, outbound allow, outbound deny, health-check allow), 5+k custom rule k.

Tables travel as named tuples (`Flows`, `Owners`, `Tables`, `Results`) and each stage unpacks
what it reads once per work chunk: taking an array out of a tuple inside the per-flow loop costs
reference counting on every flow.
"""
from typing import NamedTuple

import numba as nb
import numpy as np

from .classify import lookup_one
from .codes import (
    ALLOW,
    AMBIGUOUS,
    DENY,
    DIR_INGRESS,
    HEALTH_CHECK_ALLOW,
    INBOUND_DENY,
    INTRA_ALLOW,
    NO_RULE,
    OUTBOUND_ALLOW,
    OUTBOUND_DENY,
    UNMANAGED,
)
from .intrinsics import BLOCK_LANES, block_hits, prefetch, trailing_zeros

# load-balancer health checks come from 100.64.0.0/10: an IPv4 source whose first 10 bits are these
HEALTH_CHECK_PREFIX, HEALTH_CHECK_SHIFT = 0x64400000 >> 22, 22
ENI_NONE, ENI_UNKNOWN = -1, -2
SEVERAL = -3
CHUNK = 4096  # flows per parallel work item
SCAN_AHEAD = 8  # sides: the scan asks for the first block and hit entries of the side this far ahead


# ---------------------------------------------------------------- address ownership
@nb.njit(cache=True, inline="always")
def _slot(fam, hi, lo, mask):
    """Hash of a (masked) address into an open-addressing table of mask + 1 slots."""
    h = (hi * np.uint64(0x9E3779B97F4A7C15)) ^ (lo * np.uint64(0xC2B2AE3D27D4EB4F)) ^ np.uint64(fam)
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))


@nb.njit(cache=True, inline="always")
def _mask_address(hi, lo, plen):
    """The address with every bit after the first plen of 128 cleared (IPv4 lives in bits 96..127).

    Masks are made by shifting all-ones right by 0..63 bits: a shift by 64 is undefined (x86 shifts
    by 0), which once kept every low bit of a /64."""
    ones = np.uint64(0xFFFFFFFFFFFFFFFF)
    if plen >= 128:
        return hi, lo
    if plen >= 64:
        return hi, lo & ~(ones >> np.uint64(plen - 64))
    return hi & ~(ones >> np.uint64(plen)), np.uint64(0)


OWNER_SLOT = np.dtype([("hi", np.uint64), ("lo", np.uint64), ("vpc", np.int32), ("eni", np.int32),
                       ("plen", np.int16), ("fam", np.uint8)], align=True)
RULE_ROW = np.dtype([("dlo", np.uint16), ("dhi", np.uint16), ("slo", np.uint16), ("shi", np.uint16),
                     ("proto", np.int16), ("pfam", np.uint8), ("lfam", np.uint8), ("group", np.int32), ("code", np.int32),
                     ("pshi", np.uint64), ("pslo", np.uint64), ("pehi", np.uint64), ("pelo", np.uint64),
                     ("lshi", np.uint64), ("lslo", np.uint64), ("lehi", np.uint64), ("lelo", np.uint64),
                     ("accept", np.bool_)], align=True)
# Row lists are scanned LANES rows at a time with vector compares. A list is padded to whole blocks;
# a block is SCAN_WORDS uint32 words, four per row, field by field: the peer's first 32 bits (the IPv4
# address; an IPv6 address's top 32 bits, exact for blocks of /32 or wider; everything for a group peer)
# as start and span (x - start <= span tests a range in one unsigned compare); destination ports as
# start | span << 16; protocol start | span << 8 (span 255: any), the row's flags << 16 and 1 << 24 for
# a real row (padding slots are 0). Rows that need more than these tests are flagged: a group peer, a
# local range, source ports, a narrower IPv6 block. Beside each slot, read once at a hit, SCAN_HIT holds
# its verdict (rule code times two, plus one for accept) and `ref`: the group of a row flagged only for
# its group peer, else the index of the full RULE_ROW that finishes the test.
LANES = BLOCK_LANES
SCAN_WORDS = 4 * LANES
SCAN_HIT = np.dtype([("verdict", np.int32), ("ref", np.int32)])
FLAG_GROUP, FLAG_LOCAL, FLAG_WIDE, FLAG_SPORT = 1, 2, 4, 8
# A long list also has a packet classifier (kernels.classify), one rule set per list, over the first 32
# bits of peer and local address, source and destination port and protocol: it names the list's first
# slot that can match, where the scan starts.
LIST_DIMS = (0, 1, 2, 3, 4)
CLASS_PROTOCOLS = (6, 17, 1, 58)  # rows are listed per protocol class: tcp, udp, icmp, icmpv6, then any other
N_PCLASS = len(CLASS_PROTOCOLS) + 1


PROTOCOL_CLASS = np.full(256, N_PCLASS - 1, dtype=np.uint8)
PROTOCOL_CLASS[list(CLASS_PROTOCOLS)] = np.arange(len(CLASS_PROTOCOLS))


@nb.njit(cache=True, inline="always")
def protocol_class(proto):
    """The row list a packet of this protocol consults (rules for `all` are in every list)."""
    return np.int64(PROTOCOL_CLASS[proto & 0xFF])


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


@nb.njit(cache=True)
def fill_v4_pages(v4_dir, v4_pages, fam, lo, plen, eni):
    """Write each IPv4 block's ENI into the direct table (its /16 pages already assigned in v4_dir).

    A cell owned by two ENIs (two VPCs reusing the address) becomes -2: those lookups use the hash table."""
    for i in range(fam.shape[0]):
        if fam[i] != 4:
            continue
        first = np.int64(lo[i])
        last = first + (np.int64(1) << np.int64(128 - plen[i])) - 1
        for a in range(first, last + 1):
            page = v4_dir[a >> 16]
            if page < 0:
                continue
            cell = v4_pages[page, a & 0xFFFF]
            v4_pages[page, a & 0xFFFF] = eni[i] if cell == -1 or cell == eni[i] else -2


# ---------------------------------------------------------------- flows
# The stages below touch the tables only by indexing them in their own loops: handing an array to
# a helper once per flow costs numba reference counting (atomic operations) on every call, which
# measured several times the lookups themselves. Helpers take scalars only.
@nb.njit(cache=True, inline="always")
def _in_range(fam, hi, lo, rf, rshi, rslo, rehi, relo):
    """Whether (fam, hi, lo) lies in the family's range; written without branches (`&`, `|`)."""
    above_start = (hi > rshi) | ((hi == rshi) & (lo >= rslo))
    below_end = (hi < rehi) | ((hi == rehi) & (lo <= relo))
    return (rf == fam) & above_start & below_end


@nb.njit(cache=True, inline="always")
def _top32(fam, hi, lo):
    """An address's first 32 bits: all of an IPv4 address."""
    return np.uint32(lo & np.uint64(0xFFFFFFFF)) if fam == 4 else np.uint32(hi >> np.uint64(32))


class Flows(NamedTuple):
    """The flows, one entry per flow in each column (addresses as family, high and low 64 bits)."""

    sfam: np.ndarray
    shi: np.ndarray
    slo: np.ndarray
    dfam: np.ndarray
    dhi: np.ndarray
    dlo: np.ndarray
    proto: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    vpc: np.ndarray  # VPC index, -1 when not named
    eni: np.ndarray  # endpoint mode: the recorded ENI; ENI_NONE in path mode, ENI_UNKNOWN for a row not evaluated
    direction: np.ndarray  # DIR_INGRESS / DIR_EGRESS in endpoint mode


class Owners(NamedTuple):
    """Which ENI owns an address: blocks by length, a hash table of (block, VPC) slots, a /16 directory for IPv4."""

    plens: np.ndarray  # per family (row 0 IPv4, 1 IPv6): the owned block lengths, longest first, -1 padded
    slots: np.ndarray  # OWNER_SLOT records, open addressing
    shared: bool  # some address is owned in more than one VPC
    v4_dir: np.ndarray  # per /16: -1 nothing owned, -2 ask the hash table, else a page of v4_pages
    v4_pages: np.ndarray  # per page and low 16 bits: the owning ENI, -1 none, -2 owned in several VPCs


class Tables(NamedTuple):
    """Interfaces, their group profiles and the profiles' row lists, with the long lists' classifiers."""

    eni_profile: np.ndarray
    eni_groups: np.ndarray  # per ENI: its groups, -1 padded
    eni_group_bits: np.ndarray  # per ENI: bit (group % 64) set for each of its groups
    eni_vpc: np.ndarray
    prof_advanced: np.ndarray
    prof_health_check: np.ndarray  # per profile: its ENIs are load-balancer backends (its lists start with the allowance)
    prof_open_groups: np.ndarray  # per profile: its interconnected groups (basic, internal accept), -1 padded
    prof_open_bits: np.ndarray
    seg: np.ndarray  # per (profile, direction, family, protocol class): its row list's blocks seg[s]:seg[s+1]
    list_set: np.ndarray  # per list: its classifier rule set, -1 for a list scanned from the start
    scan_blocks: np.ndarray
    scan_hits: np.ndarray
    rows: np.ndarray  # RULE_ROW records


class Classifier(NamedTuple):
    """The long lists' classifier (kernels.classify): where a side's scan starts. Kernels take None instead
    where no list has one, and are then compiled without it."""

    list_slot: np.ndarray  # the list slot of each classifier row; then the classifier's arrays
    set_ptr: np.ndarray
    part_min: np.ndarray
    part_tab: np.ndarray
    ctables: np.ndarray
    nodes: np.ndarray
    leaves: np.ndarray


class Results(NamedTuple):
    """Per flow: the verdict, each side's deciding-rule code (NO_RULE: no such side) and the ENI each side checked."""

    verdict: np.ndarray
    egress_code: np.ndarray
    ingress_code: np.ndarray
    src_eni: np.ndarray
    dst_eni: np.ndarray


@nb.njit(cache=True)
def _resolve_owners(first, last, flows, owners, eni_vpc, owner):
    """owner[2j] / owner[2j+1]: the ENI owning flow first+j's source / destination address.

    In one VPC (the flow's, or in endpoint mode the recorded ENI's), or else in the single VPC
    that owns it (SEVERAL: ambiguous); -1 for nobody. In endpoint mode the recorded ENI is its own side.
    Blocks are probed longest first; `shared` says whether any address is owned in more than one
    VPC (only then must a VPC-less lookup look further than the first hit). IPv4 first consults
    `v4_dir`, one entry per /16: -1 when nothing there is owned, else a page of `v4_pages` holding
    the ENI of every address (-1 none, -2 owned in several VPCs), or -2 when the configuration has
    too many pages to hold and the hash table answers.
    """
    sfam, shi, slo, dfam, dhi, dlo, _, _, _, vpc, eni, direction = flows
    plens, slots, shared, v4_dir, v4_pages = owners
    mask = slots.shape[0] - 1
    for w in range(2 * (last - first)):
        i = first + (w >> 1)
        side = w & 1
        e = eni[i]
        v = vpc[i]
        if e == ENI_UNKNOWN:
            owner[w] = -1
            continue
        if e >= 0:
            if (direction[i] == DIR_INGRESS) == (side == 1):
                owner[w] = e
                continue
            if v < 0:
                v = eni_vpc[e]
        fam = sfam[i] if side == 0 else dfam[i]
        hi = shi[i] if side == 0 else dhi[i]
        lo = slo[i] if side == 0 else dlo[i]
        found = -1
        resolved = False
        if fam == 4:
            page = v4_dir[np.int64(lo >> np.uint64(16))]
            if page == -1:
                resolved = True
            elif page >= 0:
                cell = v4_pages[page, np.int64(lo & np.uint64(0xFFFF))]
                if cell >= -1:
                    resolved = True
                    if cell >= 0 and (v < 0 or eni_vpc[cell] == v):
                        found = cell
        if not resolved:
            row = 0 if fam == 4 else 1
            for j in range(plens.shape[1]):
                plen = plens[row, j]
                if plen < 0 or resolved:
                    break
                mhi, mlo = _mask_address(hi, lo, plen)
                s = _slot(fam, mhi, mlo ^ np.uint64(plen), mask)
                while slots[s].fam != 0:
                    if slots[s].fam == fam and slots[s].plen == plen and slots[s].hi == mhi and slots[s].lo == mlo:
                        here = slots[s].eni
                        if v >= 0:
                            if slots[s].vpc == v:
                                found, resolved = here, True
                                break
                        elif not shared:
                            found, resolved = here, True
                            break
                        elif found >= 0 and found != here:
                            found, resolved = SEVERAL, True
                            break
                        else:
                            found = here
                    s = (s + 1) & mask
        owner[w] = found


@nb.njit(cache=True)
def _sides(first, last, flows, tables, owner, out, lst_lo, lst_hi, lst_set, side_ok, side_code):
    """Which sides of flows first..last-1 apply, each side's default decision, and the row list it must scan.

    Side w = 2j (egress at the source) or 2j + 1 (ingress at the destination) of flow first + j; a side
    that does not apply keeps an empty list and NO_RULE, and a flow decided here (unmanaged, ambiguous,
    never leaving its ENI) gets its verdict now."""
    sfam, _, slo, _, _, _, proto, _, _, _, eni, direction = flows
    verdict, _, _, src_eni, dst_eni = out
    eni_profile, eni_groups, eni_group_bits = tables.eni_profile, tables.eni_groups, tables.eni_group_bits
    prof_health_check, prof_advanced = tables.prof_health_check, tables.prof_advanced
    prof_open_groups, prof_open_bits = tables.prof_open_groups, tables.prof_open_bits
    seg, list_set = tables.seg, tables.list_set
    n = last - first
    for j in range(n):
        i = first + j
        e = eni[i]
        src_eni[i] = -1
        dst_eni[i] = -1
        verdict[i] = ALLOW
        if e == ENI_UNKNOWN:
            verdict[i] = UNMANAGED
            continue
        src, dst = owner[2 * j], owner[2 * j + 1]
        if e >= 0:
            if direction[i] == DIR_INGRESS:
                dst_eni[i] = e
                first_side, last_side = 1, 2
            else:
                src_eni[i] = e
                first_side, last_side = 0, 1
        else:
            if src == SEVERAL or dst == SEVERAL:
                verdict[i] = AMBIGUOUS
                continue
            src_eni[i] = src
            dst_eni[i] = dst
            if src < 0 and dst < 0:
                verdict[i] = UNMANAGED
                continue
            if src == dst:  # never leaves the ENI
                continue
            first_side, last_side = 0, 2
        pclass = protocol_class(proto[i])
        v6 = 1 if sfam[i] == 6 else 0
        for side in range(first_side, last_side):
            ingress = side == 1
            me, peer = (dst, src) if ingress else (src, dst)
            if me < 0:
                continue
            w = 2 * j + side
            profile = eni_profile[me]
            advanced = prof_advanced[profile]
            # does the peer carry one of the profile's interconnected (basic, accept) groups? Each group
            # sets bit (group % 64) of its members' and profiles' masks: disjoint masks rule it out at once
            if ingress and peer >= 0 and (prof_open_bits[profile] & eni_group_bits[peer]) != 0:
                shares = False
                for a in range(prof_open_groups.shape[1]):
                    g = prof_open_groups[profile, a]
                    if g < 0 or shares:
                        break
                    for b in range(eni_groups.shape[1]):
                        pg = eni_groups[peer, b]
                        if pg < 0:
                            break
                        if pg == g:
                            shares = True
                            break
                if shares:  # a load-balancer health check is reported as such, not as intra-group
                    health = (prof_health_check[profile] and sfam[i] == 4
                              and (slo[i] >> np.uint64(HEALTH_CHECK_SHIFT)) == HEALTH_CHECK_PREFIX)
                    side_ok[w], side_code[w] = True, HEALTH_CHECK_ALLOW if health else INTRA_ALLOW
                    continue
            if ingress:
                side_ok[w], side_code[w] = False, INBOUND_DENY
            elif advanced:
                side_ok[w], side_code[w] = False, OUTBOUND_DENY
            else:
                side_ok[w], side_code[w] = True, OUTBOUND_ALLOW
            s = ((profile * 2 + (0 if ingress else 1)) * 2 + v6) * N_PCLASS + pclass
            lst_lo[w] = seg[s]
            lst_hi[w] = seg[s + 1]
            lst_set[w] = list_set[s]


@nb.njit(cache=True)
def _list_starts(first, flows, classifier, lst_lo, lst_hi, lst_set, first_lane):
    """Where each side's scan starts: a long list's classifier, given the side's packet fields (LIST_DIMS
    order), names the first slot that can match (lanes before it in its block are masked out); none, and
    the side's default stands."""
    sfam, shi, slo, dfam, dhi, dlo, proto, sport, dport, _, _, _ = flows
    list_slot, set_ptr, part_min, part_tab, ctables, nodes, leaves = classifier
    keys = np.empty((1, len(LIST_DIMS)), np.uint32)
    for w in range(lst_set.shape[0]):
        if lst_set[w] < 0 or lst_lo[w] >= lst_hi[w]:
            continue
        i = first + (w >> 1)
        src_top, dst_top = _top32(sfam[i], shi[i], slo[i]), _top32(dfam[i], dhi[i], dlo[i])
        keys[0, 0], keys[0, 1] = (src_top, dst_top) if (w & 1) == 1 else (dst_top, src_top)
        keys[0, 2], keys[0, 3], keys[0, 4] = sport[i], dport[i], proto[i]
        r = lookup_one(set_ptr, part_min, part_tab, ctables, nodes, leaves, keys, 0, LIST_DIMS, lst_set[w])
        if r < 0:
            lst_lo[w] = lst_hi[w]
        else:
            lst_lo[w], first_lane[w] = list_slot[r] // LANES, list_slot[r] % LANES


@nb.njit(cache=True)
def _scan(first, flows, tables, owner, lst_lo, lst_hi, first_lane, side_ok, side_code):
    """First-match scans of the sides' row lists: the first row that matches decides its side."""
    sfam, shi, slo, dfam, dhi, dlo, proto, sport, dport, _, _, _ = flows
    eni_groups = tables.eni_groups
    scan_blocks, scan_hits, rows = tables.scan_blocks, tables.scan_hits, tables.rows
    n_sides = lst_lo.shape[0]
    blocks_at = scan_blocks.ctypes.data
    hits_at = scan_hits.ctypes.data
    for w in range(n_sides):
        ahead = w + SCAN_AHEAD
        if ahead < n_sides and lst_lo[ahead] < lst_hi[ahead]:
            at = blocks_at + lst_lo[ahead] * (SCAN_WORDS * 4)
            prefetch(at)
            prefetch(at + 64)
            prefetch(hits_at + lst_lo[ahead] * (LANES * 8))
        if lst_lo[w] >= lst_hi[w]:
            continue
        i = first + (w >> 1)
        ingress = (w & 1) == 1
        peer = owner[w - 1] if ingress else owner[w + 1]
        if ingress:
            pf, ph, pl, lf, lh, ll = sfam[i], shi[i], slo[i], dfam[i], dhi[i], dlo[i]
        else:
            pf, ph, pl, lf, lh, ll = dfam[i], dhi[i], dlo[i], sfam[i], shi[i], slo[i]
        pr, sp, dp = np.uint32(proto[i]), np.int32(sport[i]), np.uint32(dport[i])
        pa = _top32(pf, ph, pl)
        decided = False
        skip = ~((np.uint32(1) << first_lane[w]) - np.uint32(1))
        for b in range(lst_lo[w], lst_hi[w]):
            base = np.uint64(b) * np.uint64(SCAN_WORDS)
            hits = block_hits(scan_blocks, base, pa, dp, pr) & skip
            skip = np.uint32(0xFFFFFFFF)
            while hits != 0:
                lane = trailing_zeros(hits)
                hits &= hits - np.uint32(1)
                k = np.int64(b) * LANES + np.int64(lane)
                flags = (scan_blocks[base + np.uint64(3 * LANES + lane)] >> np.uint32(16)) & np.uint32(0xFF)
                group = -1
                if flags == FLAG_GROUP:
                    group = scan_hits[k].ref
                elif flags != 0:
                    r = scan_hits[k].ref
                    if sp < rows[r].slo or sp > rows[r].shi:
                        continue
                    if rows[r].lfam != 0 and not _in_range(lf, lh, ll, rows[r].lfam, rows[r].lshi, rows[r].lslo,
                                                          rows[r].lehi, rows[r].lelo):
                        continue
                    if rows[r].group >= 0:
                        group = rows[r].group
                    elif not _in_range(pf, ph, pl, rows[r].pfam, rows[r].pshi, rows[r].pslo, rows[r].pehi, rows[r].pelo):
                        continue
                if group >= 0:  # the peer must carry the group
                    member = False
                    if peer >= 0:
                        for c in range(eni_groups.shape[1]):
                            pg = eni_groups[peer, c]
                            if pg < 0:
                                break
                            if pg == group:
                                member = True
                                break
                    if not member:
                        continue
                code = scan_hits[k].verdict
                side_ok[w], side_code[w] = (code & 1) == 1, code >> 1
                decided = True
                break
            if decided:
                break


@nb.njit(cache=True)
def _combine(first, last, out, side_ok, side_code):
    """Each flow's deciding rules, and deny where an applicable side does not allow."""
    verdict, egress_code, ingress_code, _, _ = out
    n = last - first
    for j in range(n):
        i = first + j
        egress_code[i] = side_code[2 * j]
        ingress_code[i] = side_code[2 * j + 1]
        if verdict[i] == ALLOW and not (side_ok[2 * j] and side_ok[2 * j + 1]):
            verdict[i] = DENY


@nb.njit(cache=True)
def _evaluate_range(first, last, flows, owners, tables, classifier, out):
    """Flows first..last-1. Each applicable side (egress at the source ENI, ingress at the destination ENI)
    is decided as docs/semantics.md §2 says: defaults layered around a first-match scan of the side's row list.

    The work is staged over the whole range — resolve addresses, then pick each side's default and row
    list, then find where long lists' scans start, then scan — because each stage's lookups are
    independent of each other and, in a loop of their own, the processor overlaps their cache misses."""
    n = last - first
    owner = np.empty(2 * n, np.int32)
    _resolve_owners(first, last, flows, owners, tables.eni_vpc, owner)
    lst_lo = np.zeros(2 * n, np.int64)
    lst_hi = np.zeros(2 * n, np.int64)
    lst_set = np.full(2 * n, -1, np.int32)
    side_ok = np.ones(2 * n, np.bool_)
    side_code = np.full(2 * n, NO_RULE, np.int32)
    _sides(first, last, flows, tables, owner, out, lst_lo, lst_hi, lst_set, side_ok, side_code)
    first_lane = np.zeros(2 * n, np.uint32)
    if classifier is not None:  # decided when compiling: without a classifier, no code for it
        _list_starts(first, flows, classifier, lst_lo, lst_hi, lst_set, first_lane)
    _scan(first, flows, tables, owner, lst_lo, lst_hi, first_lane, side_ok, side_code)
    _combine(first, last, out, side_ok, side_code)


def evaluate_flows_serial(flows: Flows, owners: Owners, tables: Tables, classifier: Classifier | None,
                          out: Results) -> None:
    """`evaluate_flows` on one thread, for small batches (a single `flowsim check` skips starting threads).

    Plain Python that calls the per-chunk kernel directly, with the argument types `evaluate_flows`
    calls it with: a first run compiles `_evaluate_range` once for both, and no wrapper kernel of its own."""
    _evaluate_range(np.int64(0), np.int64(flows.sfam.shape[0]), flows, owners, tables, classifier, out)


def evaluation_cache_index() -> str | None:
    """The file in which numba indexes its cached compilations of the per-chunk kernel, which every
    evaluation compiles (None: caching unavailable); first use looks for it."""
    return getattr(getattr(getattr(_evaluate_range, "_cache", None), "_cache_file", None), "_index_path", None)


@nb.njit(cache=True, parallel=True, nogil=True)
def evaluate_flows(flows, owners, tables, classifier, out):
    """Verdicts of many flows into `out`; path mode where flows.eni[i] == ENI_NONE, endpoint mode where it is an ENI.

    Besides verdicts and deciding-rule codes, it reports the ENI checked on each side (-1: none).
    """
    n = flows.sfam.shape[0]
    for c in nb.prange((n + CHUNK - 1) // CHUNK):
        _evaluate_range(c * CHUNK, min(n, (c + 1) * CHUNK), flows, owners, tables, classifier, out)
