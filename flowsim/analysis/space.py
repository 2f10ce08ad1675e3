"""The 5-field header space as binary decision diagrams (CUDD through `dd.cudd`, dynamic reordering off).

One manager holds both address families: a family variable (0 = IPv4, 1 = IPv6), then the protocol,
source address, destination address, source port and destination port, most significant bit first.
Both addresses are 128-bit blocks; an IPv4 address occupies the first 32 bits of its block and no region
of the IPv4 half ever tests the other 96 (they are don't-cares, divided out when counting), so BDDs of
IPv4 flows are as small as with 32-bit variables and every count is an exact count of flows.
The universe also holds that ports are 0 for protocols without ports, that IPv4 flows never carry
icmpv6 and IPv6 flows never carry icmp.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator

from ..model.addresses import IPNetwork
from ..model.network import ICMP, ICMPV6, TCP, UDP

ADDRESS_BITS = 128
FIELDS = (("proto", 8), ("src", ADDRESS_BITS), ("dst", ADDRESS_BITS), ("sport", 16), ("dport", 16))
V4_BITS = 32
V4_UNUSED_BITS = 2 * (ADDRESS_BITS - V4_BITS)  # don't-care address bits of an IPv4 flow
MEMORY_BYTES = 512 * 2**20  # CUDD's initial tables and cache


@dataclass(frozen=True)
class Point:
    """One flow of the header space."""

    family: int  # 4 or 6
    protocol: int
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    src_port: int
    dst_port: int


@dataclass(frozen=True)
class Box:
    """A product of intervals: source and destination CIDRs, a protocol range and two port ranges."""

    src: IPNetwork
    dst: IPNetwork
    protocols: tuple[int, int]
    src_ports: tuple[int, int]
    dst_ports: tuple[int, int]

    @property
    def size(self) -> int:
        p, s, d = self.protocols, self.src_ports, self.dst_ports
        return (self.src.num_addresses * self.dst.num_addresses * (p[1] - p[0] + 1) * (s[1] - s[0] + 1)
                * (d[1] - d[0] + 1))


class Space:
    """A BDD manager over the header space, with the encodings of CIDRs, ranges and points."""

    def __init__(self) -> None:
        from dd import cudd  # imported here: `flowsim --help` must not load CUDD

        self.bdd = cudd.BDD(memory_estimate=MEMORY_BYTES)
        self.bdd.configure(reordering=False)
        self.names = ["fam"] + [f"{f}{i}" for f, n in FIELDS for i in range(n)]
        self.bdd.declare(*self.names)
        self._networks: dict[tuple[str, IPNetwork], object] = {}
        self._kids: dict[int, tuple] = {}
        self._blocks: dict[tuple, tuple[list, bool]] = {}  # _field_blocks, per field and node
        self._below: dict[int, int] = {}  # count's assignments from a node's level on
        self._held: list = []  # the nodes _kids and _blocks describe, kept alive
        self.nvars = len(self.names)
        self.true, self.false = self.bdd.true, self.bdd.false
        fam = self.bdd.var("fam")
        self.fam = fam
        v4 = ~fam & ~self.value("proto", ICMPV6)
        v6 = fam & ~self.value("proto", ICMP)
        ported = self.value("proto", TCP) | self.value("proto", UDP)
        no_ports = self.value("sport", 0) & self.value("dport", 0)
        self.universe = (v4 | v6) & (ported | no_ports)
        self.v4, self.v6 = ~fam & self.universe, fam & self.universe
        self._tcp = self.value("proto", TCP)

    # -- building
    def conj(self, parts: Iterable) -> object:
        out = self.true
        for p in parts:
            out &= p
        return out

    def disj(self, parts: Iterable) -> object:
        out = self.false
        for p in parts:
            out |= p
        return out

    def _bits_equal(self, field: str, start: int, stop: int, value: int) -> object:
        """Bits start..stop-1 of `field` equal the low bits of value (bit start most significant)."""
        width = stop - start
        return self.bdd.cube({f"{field}{start + i}": bool((value >> (width - 1 - i)) & 1) for i in range(width)})

    def value(self, field: str, v: int) -> object:
        """`field` == v."""
        return self._bits_equal(field, 0, dict(FIELDS)[field], v)

    def prefix(self, field: str, value: int, length: int, width: int) -> object:
        """The first `length` bits of `field` (a `width`-bit value placed at its start) equal those of value."""
        return self.bdd.cube({f"{field}{i}": bool((value >> (width - 1 - i)) & 1) for i in range(length)})

    def network(self, field: str, net: IPNetwork) -> object:
        """`field` (src or dst) in the CIDR, with the family fixed."""
        key = (field, net)
        got = self._networks.get(key)
        if got is None:
            got = self._networks[key] = _network(self, field, net)
        return got

    def networks(self, field: str, nets: Iterable[IPNetwork]) -> object:
        return self.disj(self.network(field, n) for n in nets)

    def port_range(self, field: str, lo: int, hi: int) -> object:
        """`field` (sport, dport or proto) in lo..hi, as at most 2×width prefix cubes."""
        return _range(self, field, lo, hi)

    def protocol(self, proto: int) -> object:
        """Protocol `proto` (-1: every protocol)."""
        return self.true if proto < 0 else self.value("proto", proto)

    # -- asking
    def count(self, u) -> int:
        """The exact number of flows in u (u must lie inside the universe)."""
        memo = self._below  # nodes in it had their children read, so they are held

        def below(v) -> int:  # assignments of the variables from v's level on
            if v == self.true:
                return 1
            if v == self.false:
                return 0
            key = int(v)
            got = memo.get(key)
            if got is None:
                level, low, high = self.children(v)
                got = (below(low) << (self.level(low) - level - 1)) + (below(high) << (self.level(high) - level - 1))
                memo[key] = got
            return got

        if u == self.false:
            return 0
        v4, v6 = self.children(u)[1:] if self.level(u) == 0 else (u, u)

        def half(v) -> int:  # assignments of every variable but the family
            return below(v) << (self.level(v) - 1)

        return half(v6) + (half(v4) >> V4_UNUSED_BITS)

    def approx_count(self, u) -> float:
        """CUDD's floating-point count (fast; for ordering regions by size, never for reporting one)."""
        return self.bdd.count(u, nvars=self.nvars)

    def children(self, u) -> tuple[int, object, object]:
        """(level, low, high) of a non-constant u, with u's complement edge applied. Remembered per node (u is
        held in `_held`, so its id is not reused while the entry lives): counting and listing boxes revisit
        the same nodes from many regions."""
        key = int(u)
        got = self._kids.get(key)
        if got is None:
            level, low, high = self.bdd.succ(u)
            got = self._kids[key] = (level, ~low, ~high) if u.negated else (level, low, high)
            self._held.append(u)
        return got

    def level(self, u) -> int:
        """u's top variable level; the variable count for a constant."""
        return self.nvars if u == self.true or u == self.false else u.level

    def pick(self, u) -> Point | None:
        """One flow of u, a tcp one where u has some (readable examples), or None when u is empty."""
        if u == self.false:
            return None
        tcp = u & self._tcp
        return self._first(tcp if tcp != self.false else u)

    def _first(self, u) -> Point:
        """The flow of u reached by taking the low branch wherever it is not empty."""
        assignment = {}
        while u != self.true:
            level, low, high = self.children(u)
            take_high = low == self.false
            assignment[self.names[level]] = take_high
            u = high if take_high else low
        return self.decode(assignment)

    def decode(self, assignment: dict[str, bool]) -> Point:
        def num(field: str, start: int, width: int) -> int:
            return sum(1 << (width - 1 - i) for i in range(width) if assignment.get(f"{field}{start + i}", False))

        family = 6 if assignment.get("fam", False) else 4
        addr = ipaddress.IPv6Address if family == 6 else ipaddress.IPv4Address
        bits = ADDRESS_BITS if family == 6 else V4_BITS
        return Point(family, num("proto", 0, 8), addr(num("src", 0, bits)), addr(num("dst", 0, bits)),
                     num("sport", 0, 16), num("dport", 0, 16))

    def encode(self, p: Point) -> dict[str, bool]:
        """The assignment of a point (every variable an IPv4 flow's regions can test)."""
        out = {"fam": p.family == 6}
        values = {"proto": (p.protocol, 8), "sport": (p.src_port, 16), "dport": (p.dst_port, 16)}
        for name in ("src", "dst"):
            a = int(getattr(p, name))
            values[name] = (a, V4_BITS) if p.family == 4 else (a, ADDRESS_BITS)
        for f, (v, width) in values.items():
            for i in range(width):
                out[f"{f}{i}"] = bool((v >> (width - 1 - i)) & 1)
        return out

    def point_region(self, p: Point) -> object:
        return self.bdd.cube(self.encode(p))

    def contains(self, u, p: Point) -> bool:
        """Whether the point lies in u (a walk down one path)."""
        assignment = self.encode(p)
        while u != self.true and u != self.false:
            level, low, high = self.children(u)
            u = high if assignment[self.names[level]] else low
        return u == self.true

    def boxes(self, u, limit: int = 1000) -> Iterator[Box]:
        """u as disjoint boxes (CIDRs × protocol × port ranges), at most `limit` of them."""
        yield from _boxes(self, u, limit)


def _network(space: Space, field: str, net: IPNetwork):
    fam = space.bdd.var("fam")
    if net.version == 4:
        value = int(net.network_address) << (ADDRESS_BITS - V4_BITS)
        return ~fam & space.prefix(field, value, net.prefixlen, ADDRESS_BITS) & space.universe
    return fam & space.prefix(field, int(net.network_address), net.prefixlen, ADDRESS_BITS) & space.universe


def _range(space: Space, field: str, lo: int, hi: int):
    width = dict(FIELDS)[field]
    out = space.false
    for value, length in _range_prefixes(lo, hi, width):
        out |= space.prefix(field, value, length, width)
    return out


@lru_cache(maxsize=4096)
def _range_prefixes(lo: int, hi: int, width: int) -> tuple[tuple[int, int], ...]:
    """lo..hi as (value, prefix length) blocks, largest first where they fit."""
    out = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << width
        while size > hi - lo + 1:
            size >>= 1
        out.append((lo, width - size.bit_length() + 1))
        lo += size
    return tuple(out)


_ORDER = [("fam", 1)] + list(FIELDS)
_STARTS = [sum(w for _, w in _ORDER[:k]) for k in range(len(_ORDER))]


def _boxes(space: Space, u, limit: int) -> Iterator[Box]:
    """u as disjoint boxes, depth first over the fields, low branch first. Each field's prefix blocks below a
    node are listed once per node (`_field_blocks`): the regions of one diff share most of their subgraphs."""
    if u == space.false:
        return
    emitted = 0

    def walk(k: int, node, fixed: tuple) -> Iterator[Box]:
        nonlocal emitted
        if k == len(_ORDER):
            emitted += 1
            yield _box(fixed)
            return
        v4_address = _ORDER[k][0] in ("src", "dst") and not fixed[0][0]
        for value, bit, below in _field_blocks(space, k, node, v4_address, limit - emitted):
            yield from walk(k + 1, below, fixed + ((value, bit, _ORDER[k][1]),))
            if emitted >= limit:
                return

    yield from walk(0, u, ())


def _field_blocks(space: Space, k: int, node, v4_address: bool, limit: int) -> list[tuple[int, int, object]]:
    """(value, length, node below the field) for the prefix blocks of field k under node, low branch first, at
    least the first `limit` of them. A skipped variable followed by a tested one is split, so that every block's
    fixed bits form a prefix (a CIDR or a port block). Every node below is not empty, so each block holds a box."""
    key = (k, int(node), v4_address)
    got = space._blocks.get(key)
    if got is not None and (got[1] or len(got[0]) >= limit):
        return got[0]
    true, false, nvars, children = space.true, space.false, space.nvars, space.children
    start, width = _STARTS[k], _ORDER[k][1]
    end = start + (V4_BITS if v4_address else width)
    out: list[tuple[int, int, object]] = []
    stack = [(node, 0, 0)]
    while stack and len(out) < limit:
        below, bit, value = stack.pop()
        while True:
            top = nvars if below == true else below.level
            if top >= end or bit == end - start:  # nothing more of this field is tested
                break
            if top == start + bit:
                _, low, high = children(below)
                if low == false:
                    below, value = high, (value << 1) | 1
                else:
                    if high != false:
                        stack.append((high, bit + 1, (value << 1) | 1))
                    below, value = low, value << 1
            else:
                stack.append((below, bit + 1, (value << 1) | 1))
                value <<= 1
            bit += 1
        while v4_address and below != true and below.level < start + width:
            below = children(below)[1]  # the universe's zero bits of an IPv4 address
        out.append((value, bit, below))
    if got is None:
        space._held.append(node)  # the key's node id stays valid while the entry lives
    space._blocks[key] = (out, not stack)
    return out


def _box(fixed: tuple) -> Box:
    (fam, _, _), proto, src, dst, sport, dport = fixed

    def block(v: int, length: int, width: int) -> tuple[int, int]:
        lo = v << (width - length)
        return lo, lo + (1 << (width - length)) - 1

    return Box(_block_network(fam, *src[:2]), _block_network(fam, *dst[:2]), block(*proto), block(*sport),
               block(*dport))


@lru_cache(maxsize=65536)
def _block_network(v6: int, v: int, length: int) -> IPNetwork:
    """The CIDR whose first `length` bits are v (boxes of one diff share few distinct networks)."""
    if v6:
        return ipaddress.IPv6Network((v << (ADDRESS_BITS - length), length))
    return ipaddress.IPv4Network((v << (V4_BITS - length), length))
