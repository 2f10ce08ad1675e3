"""Compile a validated configuration into flat numpy tables for the evaluation kernels.

* ownership: every private address and prefix in a hash table keyed by family and
  masked address, so the kernel finds an address's ENI in a probe or two per block length;
* profiles: ENIs carrying the same set of groups (and load-balancer backend or not) share one
  compiled rule set; a backend's ingress IPv4 lists start with the health-check allowance as a row;
* rows: every custom rule once (a prefix list expanded into one row per entry, a port
  list into one per port range, both into one per pair; a group peer kept as a group
  index); per profile, direction, address family
  and protocol class, the indices of the pooled rows in evaluation order
  (priority, drop before accept, file order), laid out in blocks for a vector scan;
* list classifiers: a list longer than LONG_LIST rows also gets a packet classifier
  (flowsim.engine.classifier) that names where in the list its scan starts.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..kernels.codes import FIRST_CUSTOM
from ..kernels.evaluate import (
    CLASS_PROTOCOLS,
    FLAG_GROUP,
    FLAG_LOCAL,
    FLAG_SPORT,
    FLAG_WIDE,
    LANES,
    N_PCLASS,
    OWNER_SLOT,
    RULE_ROW,
    SCAN_HIT,
    Classifier,
    Owners,
    Tables,
    fill_owner_table,
    fill_v4_pages,
    protocol_class,
)
from ..model.addresses import network_bounds
from ..model.codes import DefaultRule
from ..model.network import (
    ACCEPT,
    ADVANCED,
    BASIC,
    HEALTH_CHECK_NETWORK,
    INGRESS,
    Config,
    Rule,
)
from .classifier import build as build_classifier

# by code, as kernels.evaluate numbers them (INTRA_ALLOW ... HEALTH_CHECK_ALLOW), with whether each allows
DEFAULT_RULE_NAMES = tuple(rule.rule_name for rule in sorted(DefaultRule))  # by code
N_DEFAULTS = FIRST_CUSTOM
MAX_V4_PAGES = 64
CACHE_LINE = 64  # bytes
LONG_LIST = 128  # rows: a longer list gets a packet classifier in front of its scan (shorter ones scan faster)


@dataclass(frozen=True)
class CompiledTables:
    """Everything the kernels need, plus the names to turn codes back into words."""

    vpc_names: tuple[str, ...]
    eni_ids: tuple[str, ...]
    group_ids: tuple[str, ...]
    rule_names: tuple[str, ...]  # by code: the default rules, then Config.evaluation_order()
    code_allows: np.ndarray  # by code: whether the rule allows the packet
    owners: tuple  # (block lengths per family, hash slots, any address owned in several VPCs, IPv4 /16 directory, pages)
    eni_profile: np.ndarray
    eni_groups: np.ndarray
    eni_group_bits: np.ndarray  # per ENI: bit (group % 64) set for each of its groups
    eni_vpc: np.ndarray
    prof_advanced: np.ndarray
    prof_health_check: np.ndarray  # per profile: load_balancer_backend (its ingress IPv4 lists start with the allowance)
    prof_open_groups: np.ndarray  # per profile: its interconnected groups (basic, internal accept)
    prof_open_bits: np.ndarray  # the same as a mask like eni_group_bits; 0 for advanced profiles
    seg: np.ndarray  # ((profile*2 + egress)*2 + ipv6)*N_PCLASS + class -> the list's blocks seg[s]:seg[s+1]
    scan: tuple[np.ndarray, np.ndarray]  # the row lists: blocks of LANES rows (SCAN_WORDS words each), a SCAN_HIT per slot
    rows: np.ndarray  # RULE_ROW records: the health-check allowance, then the rules' rows in global evaluation order
    list_set: np.ndarray  # per list (indexed like seg): its classifier rule set, -1 for a list scanned from the start
    list_classifier: tuple  # (list slot of each classifier row, then flowsim.engine.classifier.Classifier.arrays)

    @cached_property
    def kernel_owners(self) -> Owners:
        """The ownership tables as the kernels take them."""
        plens, slots, shared, v4_dir, v4_pages = self.owners
        return Owners(plens, _aligned(slots), shared, v4_dir, _aligned(v4_pages))

    @cached_property
    def kernel_tables(self) -> Tables:
        """The interface, profile and row-list tables as the kernels take them."""
        blocks, hits = self.scan
        return Tables(self.eni_profile, self.eni_groups, self.eni_group_bits, self.eni_vpc,
                      self.prof_advanced, self.prof_health_check, self.prof_open_groups, self.prof_open_bits, self.seg,
                      self.list_set, _aligned(blocks), _aligned(hits), _aligned(self.rows))

    @cached_property
    def kernel_classifier(self) -> Classifier | None:
        """The long lists' classifier as the kernels take it; None where no list has one (a configuration
        of short lists then never compiles the classifier's code)."""
        return Classifier(*self.list_classifier) if bool((self.list_set >= 0).any()) else None

    @property
    def n_profiles(self) -> int:
        return len(self.prof_advanced)

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in (*self.owners[:2], *self.owners[3:], *self.scan, self.eni_profile, self.eni_groups,
                                          self.eni_group_bits, self.eni_vpc, self.prof_advanced, self.prof_health_check,
                                          self.prof_open_groups,
                                          self.prof_open_bits, self.seg, self.rows, self.list_set,
                                          *self.list_classifier)))


def _group_bits(lists: list[list[int]]) -> np.ndarray:
    """Per list of groups, a 64-bit mask with bit (group % 64) set for each: disjoint masks, no shared group."""
    out = np.zeros(max(1, len(lists)), dtype=np.uint64)
    for i, items in enumerate(lists):
        for g in items:
            out[i] |= np.uint64(1) << np.uint64(g % 64)
    return out


def _aligned(a: np.ndarray) -> np.ndarray:
    """`a`, or a copy of it that starts on a cache line: a scan block (128 bytes), a block's hit entries (64) or
    an owner slot (32) laid across a line boundary costs one more cache miss per lookup, so, where numpy's
    allocation (or the cache's reading) happens to start mid-line, every lookup of a whole run pays it."""
    if a.ctypes.data % CACHE_LINE == 0:
        return a
    buffer = np.empty(a.nbytes + CACHE_LINE, dtype=np.uint8)
    skip = -buffer.ctypes.data % CACHE_LINE
    out = buffer[skip: skip + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def _padded(lists: list[list[int]]) -> np.ndarray:
    width = max([1] + [len(x) for x in lists])
    out = np.full((max(1, len(lists)), width), -1, dtype=np.int32)
    for i, items in enumerate(lists):
        out[i, : len(items)] = items
    return out


def _ownership(config: Config, vpc_index: dict[str, int], eni_index: dict[str, int]) -> tuple:
    """Hash table of every owned address and prefix, and the block lengths to probe per family."""
    blocks = []
    for eni in config.interfaces.values():
        for net in eni.owned_networks():
            fam, hi, lo, ehi, elo = network_bounds(net)
            plen = net.prefixlen + (96 if fam == 4 else 0)
            blocks.append((fam, hi, lo, plen, vpc_index[eni.vpc], eni_index[eni.id], ehi, elo))
    cols = list(zip(*blocks)) if blocks else [[]] * 6
    slots = np.zeros(1 << max(4, (4 * len(blocks)).bit_length()), dtype=OWNER_SLOT)  # at most a quarter full
    if blocks:  # (an empty table is all free slots already)
        fill_owner_table(slots, np.array(cols[0], np.uint8), np.array(cols[1], np.uint64), np.array(cols[2], np.uint64),
                         np.array(cols[3], np.int16), np.array(cols[4], np.int32), np.array(cols[5], np.int32))
    lengths = [sorted({b[3] for b in blocks if b[0] == fam}, reverse=True) for fam in (4, 6)]
    plens = np.full((2, max(1, max(len(x) for x in lengths))), -1, dtype=np.int16)
    for row, items in enumerate(lengths):
        plens[row, : len(items)] = items
    # does any block overlap a block of another VPC? (then a lookup without a VPC must check for ambiguity)
    spans = sorted((b[0], (b[1] << 64) | b[2], (b[6] << 64) | b[7], b[4]) for b in blocks)
    shared = any(a[0] == b[0] and b[1] <= a[2] and a[3] != b[3] for a, b in zip(spans, spans[1:]))
    v4_dir, v4_pages = _v4_pages(blocks)
    return plens, slots, shared, v4_dir, v4_pages


def _v4_pages(blocks: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """A direct table of IPv4 ownership, one page of 65,536 cells per /16 that holds an owned block.

    Past MAX_V4_PAGES pages (16 MiB) the /16s with blocks are marked -2 and the hash table answers."""
    v4 = [b for b in blocks if b[0] == 4]
    tops: set[int] = set()
    for _, _, lo, plen, *_ in v4:
        first = lo >> 16
        tops.update(range(first, first + max(1, 1 << max(0, 112 - plen))))
    v4_dir = np.full(1 << 16, -1, dtype=np.int32)
    if len(tops) > MAX_V4_PAGES:
        v4_dir[sorted(tops)] = -2
        return v4_dir, np.full((1, 1), -1, dtype=np.int32)
    v4_dir[sorted(tops)] = np.arange(len(tops), dtype=np.int32)
    pages = np.full((max(1, len(tops)), 1 << 16), -1, dtype=np.int32)
    if v4:
        cols = list(zip(*v4))
        fill_v4_pages(v4_dir, pages, np.array(cols[0], np.uint8), np.array(cols[2], np.uint64),
                      np.array(cols[3], np.int16), np.array(cols[5], np.int32))
    return v4_dir, pages


def _rule_rows(config: Config, rule: Rule, code: int, group_index: dict[str, int]) -> list[tuple]:
    """One row per peer entry and destination port range (a prefix list gives one per entry, a port
    list one per range), as RULE_ROW field values; the port ranges of one peer are adjacent."""
    local = network_bounds(rule.local) if rule.local is not None else (0, 0, 0, 0, 0)
    if rule.peer.kind == "group":
        peers = [(group_index[rule.peer.ref], (0, 0, 0, 0, 0))]
    else:
        nets = [rule.peer.cidr] if rule.peer.kind == "cidr" else list(config.prefix_lists[rule.peer.ref].entries)
        peers = [(-1, network_bounds(net)) for net in nets]
    ports = config.destination_ports(rule)
    return [(dlo, dhi, rule.source_ports[0], rule.source_ports[1], rule.protocol, p[0], local[0],
             group, code, p[1], p[2], p[3], p[4], local[1], local[2], local[3], local[4], rule.action == ACCEPT)
            for group, p in peers for dlo, dhi in ports]


def _protocol_classes(protocol: int) -> tuple[int, ...]:
    """Which per-protocol row lists a rule belongs in: the one its packets consult, or all for `all`."""
    return tuple(range(N_PCLASS)) if protocol < 0 else (protocol_class.py_func(protocol),)


def _row_fields(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per row, the ranges the list scan and the list classifiers test (see kernels.evaluate), and its flags.

    Addresses are their first 32 bits (all of an IPv4 address); a group peer or no local range spans them all."""
    top32 = np.uint64(32)
    group, v4, v6 = rows["group"] >= 0, rows["pfam"] == 4, rows["pfam"] == 6
    v6_exact = (v6 & (rows["pslo"] == 0) & (rows["pelo"] == np.uint64(2**64 - 1))
                & (rows["pshi"] & np.uint64(0xFFFFFFFF) == 0) & (rows["pehi"] & np.uint64(0xFFFFFFFF) == 0xFFFFFFFF))
    flags = (np.where(group, FLAG_GROUP, 0) | np.where(rows["lfam"] != 0, FLAG_LOCAL, 0)
             | np.where(v6 & ~v6_exact, FLAG_WIDE, 0) | np.where((rows["slo"] > 0) | (rows["shi"] < 65535), FLAG_SPORT, 0))
    any_proto = rows["proto"] < 0
    lv4, lv6 = rows["lfam"] == 4, rows["lfam"] == 6
    return {
        "plo": np.where(v4, rows["pslo"], np.where(v6, rows["pshi"] >> top32, 0)).astype(np.uint32),
        "phi": np.where(v4, rows["pelo"], np.where(v6, rows["pehi"] >> top32, 0xFFFFFFFF)).astype(np.uint32),
        "dlo": rows["dlo"].astype(np.uint32), "dhi": rows["dhi"].astype(np.uint32),
        "prlo": np.where(any_proto, 0, rows["proto"]).astype(np.uint32),
        "prhi": np.where(any_proto, 255, rows["proto"]).astype(np.uint32),
        "llo": np.where(lv4, rows["lslo"], np.where(lv6, rows["lshi"] >> top32, 0)).astype(np.uint32),
        "lhi": np.where(lv4, rows["lelo"], np.where(lv6, rows["lehi"] >> top32, 0xFFFFFFFF)).astype(np.uint32),
        "slo": rows["slo"].astype(np.uint32), "shi": rows["shi"].astype(np.uint32),
        "flags": flags.astype(np.uint32),
    }


def _scan_blocks(rows: np.ndarray, fields: dict[str, np.ndarray],
                 lists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The row lists in the form the kernel scans: each list padded to whole blocks of LANES rows.

    Returns the block table (one row of SCAN_WORDS words per block, see kernels.evaluate), each
    slot's SCAN_HIT entry, and where each list's blocks start (len(lists) + 1 entries). Each row's
    fields are computed once, then gathered per slot (lists repeat rows many times)."""
    lengths = np.array([len(x) for x in lists], dtype=np.int64)
    seg = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum((lengths + LANES - 1) // LANES, out=seg[1:])
    order = np.full(int(seg[-1]) * LANES, -1, dtype=np.int64)
    for start, idx in zip(seg[:-1] * LANES, lists):
        order[start: start + len(idx)] = idx
    valid = order >= 0
    pick = np.where(valid, order, 0)
    f = fields
    words = np.zeros((4, len(order)), dtype=np.uint32)
    words[0] = f["plo"][pick]
    words[1] = (f["phi"] - f["plo"])[pick]
    words[2] = (f["dlo"] | ((f["dhi"] - f["dlo"]) << 16))[pick]
    words[3] = np.where(valid, (f["prlo"] | ((f["prhi"] - f["prlo"]) << 8) | (f["flags"] << 16) | (1 << 24))[pick], 0)
    blocks = np.ascontiguousarray(words.reshape(4, -1, LANES).transpose(1, 0, 2)).reshape(-1)

    hits = np.zeros(len(rows), dtype=SCAN_HIT)
    hits["verdict"] = rows["code"].astype(np.int32) * 2 + rows["accept"]
    hits["ref"] = np.where(f["flags"] == FLAG_GROUP, rows["group"], np.arange(len(rows)))
    return blocks, np.where(valid, hits[pick], np.zeros(1, dtype=SCAN_HIT)), seg


def _list_classifiers(fields: dict[str, np.ndarray], lists: list[np.ndarray], seg: np.ndarray,
                      long_list: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """A packet classifier over every list longer than `long_list` rows, one rule set per list.

    It classifies on the first 32 bits of peer and local address, source and destination port and
    protocol (kernels.evaluate.LIST_DIMS), which decides every row of an IPv4 list but group peers,
    and names the list's first slot that can match: the kernel finishes the test of a flagged row
    there and, should it fail, scans on from it. Returns each list's set (-1: scanned from its start),
    the list slot of each classifier row, and the classifier's structure arrays."""
    lengths = np.array([len(x) for x in lists], dtype=np.int64)
    long_lists = np.flatnonzero(lengths > long_list)
    list_set = np.full(len(lists), -1, dtype=np.int32)
    list_set[long_lists] = np.arange(len(long_lists), dtype=np.int32)
    idx = np.concatenate([lists[i] for i in long_lists]).astype(np.int64) if len(long_lists) else np.zeros(0, np.int64)
    slot = (np.concatenate([seg[i] * LANES + np.arange(lengths[i]) for i in long_lists]) if len(long_lists)
            else np.zeros(0, np.int64))
    set_id = np.repeat(np.arange(len(long_lists), dtype=np.int32), lengths[long_lists])
    lo = np.stack([fields[f][idx] for f in ("plo", "llo", "slo", "dlo", "prlo")], axis=1)
    hi = np.stack([fields[f][idx] for f in ("phi", "lhi", "shi", "dhi", "prhi")], axis=1)
    classifier = build_classifier(lo, hi, set_id, max(1, len(long_lists)))
    return list_set, slot, classifier.arrays


def _catch_all_rows(rows: np.ndarray) -> np.ndarray:
    """[family slot, protocol class, row]: whether the row matches every packet its list can see."""
    any_port = (rows["dlo"] == 0) & (rows["dhi"] == 65535) & (rows["slo"] == 0) & (rows["shi"] == 65535)
    plain = any_port & (rows["group"] < 0) & (rows["lfam"] == 0) & (rows["pslo"] == 0)
    whole_v4 = plain & (rows["pfam"] == 4) & (rows["pshi"] == 0) & (rows["pehi"] == 0) & (rows["pelo"] == 0xFFFFFFFF)
    whole_v6 = plain & (rows["pfam"] == 6) & (rows["pshi"] == 0) & (rows["pehi"] == 2**64 - 1) & (rows["pelo"] == 2**64 - 1)
    out = np.zeros((2, N_PCLASS, len(rows)), dtype=np.bool_)
    for pclass, proto in enumerate(CLASS_PROTOCOLS):
        fits = (rows["proto"] == -1) | (rows["proto"] == proto)
        out[0, pclass], out[1, pclass] = whole_v4 & fits, whole_v6 & fits
    out[0, N_PCLASS - 1], out[1, N_PCLASS - 1] = whole_v4 & (rows["proto"] == -1), whole_v6 & (rows["proto"] == -1)
    return out


def compile_tables(config: Config, long_list: int = LONG_LIST) -> CompiledTables:
    """Flatten a validated configuration into kernel tables; lists longer than `long_list` rows get a classifier."""
    vpc_names = tuple(config.vpcs)
    vpc_index = {v: i for i, v in enumerate(vpc_names)}
    eni_ids = tuple(config.interfaces)
    eni_index = {e: i for i, e in enumerate(eni_ids)}
    group_ids = tuple(config.groups)
    group_index = {g: i for i, g in enumerate(group_ids)}

    rules = config.evaluation_order()
    rule_names = DEFAULT_RULE_NAMES + tuple(r.name for r in rules)

    # every row once, in global evaluation order, bucketed by (group, direction, address family, protocol class);
    # first the load-balancer health-check allowance, which starts a backend's ingress IPv4 lists
    hc_fam, *hc_bounds = network_bounds(HEALTH_CHECK_NETWORK)
    all_rows: list[tuple] = [(0, 65535, 0, 65535, -1, hc_fam, 0, -1, int(DefaultRule.HEALTH_CHECK_ALLOW), *hc_bounds,
                              0, 0, 0, 0, True)]
    health_row = np.zeros(1, dtype=np.int32)
    buckets: dict[tuple[int, int, int, int], list[int]] = {}
    for code, rule in enumerate(rules, start=N_DEFAULTS):
        d = 0 if rule.direction == INGRESS else 1
        g = group_index[rule.group]
        classes = _protocol_classes(rule.protocol)
        for row in _rule_rows(config, rule, code, group_index):
            group_peer, fam = row[7] >= 0, row[5]
            for fam_slot in ((0, 1) if group_peer else ((1,) if fam == 6 else (0,))):
                for pclass in classes:
                    buckets.setdefault((g, d, fam_slot, pclass), []).append(len(all_rows))
            all_rows.append(row)
    row_table = np.array(all_rows, dtype=RULE_ROW)

    # profiles: one per distinct group set and backend flag; their rows are the member groups' rows merged
    # in global order
    profile_of: dict[tuple[tuple[int, ...], bool], int] = {}
    eni_profile = np.zeros(len(eni_ids), dtype=np.int32)
    for i, eni in enumerate(config.interfaces.values()):
        key = (tuple(sorted(group_index[g] for g in eni.security_groups)), eni.load_balancer_backend)
        eni_profile[i] = profile_of.setdefault(key, len(profile_of))
    profiles = [p for p, _ in profile_of]
    prof_health_check = np.array([backend for _, backend in profile_of] or [False], dtype=np.bool_)
    groups = [config.groups[g] for g in group_ids]
    prof_advanced = np.array([any(groups[g].type == ADVANCED for g in p) for p in profiles] or [False], dtype=np.bool_)
    open_groups = [[g for g in p if groups[g].type == BASIC and groups[g].internal_policy == ACCEPT] for p in profiles]

    arrays = {key: np.asarray(items, dtype=np.int32) for key, items in buckets.items()}
    catch_all = _catch_all_rows(row_table)
    pieces = []
    for p, backend in zip(profiles, prof_health_check):
        for d in (0, 1):
            for fam_slot in (0, 1):
                for pclass in range(N_PCLASS):
                    parts = [arrays[key] for g in p if (key := (g, d, fam_slot, pclass)) in arrays]
                    if backend and d == 0 and fam_slot == 0:  # before every custom rule (rows sort by index)
                        parts.append(health_row)
                    idx = parts[0] if len(parts) == 1 else (np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int32))
                    stops = np.flatnonzero(catch_all[fam_slot, pclass][idx])
                    if len(stops):  # rows after one that matches every packet of the list can never decide
                        idx = idx[: stops[0] + 1]
                    pieces.append(idx)
    fields = _row_fields(row_table)
    blocks, hits, seg = _scan_blocks(row_table, fields, pieces)
    list_set, list_slot, classifier = _list_classifiers(fields, pieces, seg, long_list)
    eni_groups = [[group_index[g] for g in e.security_groups] for e in config.interfaces.values()]
    return CompiledTables(
        vpc_names=vpc_names, eni_ids=eni_ids, group_ids=group_ids, rule_names=rule_names,
        code_allows=np.array([rule.allows for rule in sorted(DefaultRule)] + [r.action == ACCEPT for r in rules],
                             dtype=np.bool_),
        owners=_ownership(config, vpc_index, eni_index), eni_profile=eni_profile,
        eni_groups=_padded(eni_groups), eni_group_bits=_group_bits(eni_groups),
        eni_vpc=np.array([vpc_index[e.vpc] for e in config.interfaces.values()], dtype=np.int32),
        prof_advanced=prof_advanced, prof_health_check=prof_health_check, prof_open_groups=_padded(open_groups),
        prof_open_bits=np.where(prof_advanced, np.uint64(0), _group_bits(open_groups)), seg=seg,
        scan=(blocks, hits), rows=row_table, list_set=list_set, list_classifier=(list_slot, *classifier),
    )
