"""Brute force for the analysis tests: a coordinate-compressed grid of the header space, decided point by point
through the reference evaluator.

Every field is cut at every boundary any rule, prefix list, ENI address, default rule or public-space range
could draw; each elementary interval behaves alike throughout, so one representative per interval, weighted by
the interval's length, stands for all of it: a region's exact size is the sum of its points' weights.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from itertools import product

from flowsim.engine.reference import ReferenceEvaluator
from flowsim.model.network import (
    ACCEPT,
    ADVANCED,
    DEFAULT_HEALTH_CHECK_ALLOW,
    DEFAULT_INBOUND_DENY,
    DEFAULT_INTRA_GROUP_ALLOW,
    DEFAULT_OUTBOUND_ALLOW,
    DEFAULT_OUTBOUND_DENY,
    HEALTH_CHECK_NETWORK,
    ICMP,
    ICMPV6,
    INGRESS,
    PORTED_PROTOCOLS,
    Config,
    Interface,
)

BITS = {4: 32, 6: 128}


@dataclass(frozen=True)
class GridPoint:
    family: int
    peer: object
    local: object
    protocol: int
    src_port: int
    dst_port: int
    weight: int


def intervals(cuts: set[int], top: int) -> list[tuple[int, int]]:
    """The elementary intervals of 0..top cut before every value in cuts."""
    edges = sorted({0, *(c for c in cuts if 0 < c <= top)})
    return [(lo, (edges[i + 1] - 1) if i + 1 < len(edges) else top) for i, lo in enumerate(edges)]


def address_cuts(config: Config, version: int, rules: list) -> set[int]:
    """Boundaries of every network the rules, the defaults and ENI ownership can test."""
    nets = [HEALTH_CHECK_NETWORK]
    for r in rules:
        nets += [n for n in (r.peer.cidr, r.local) if n is not None]
        if r.peer.kind == "prefix_list":
            nets += list(config.prefix_lists[r.peer.ref].entries)
    for eni in config.interfaces.values():
        nets += eni.owned_networks()
    cuts = set()
    for n in nets:
        if n.version == version:
            cuts |= {int(n.network_address), int(n.broadcast_address) + 1}
    return cuts


def port_cuts(config: Config, source: bool, rules: list) -> set[int]:
    cuts = set()
    for r in rules:
        for lo, hi in ([r.source_ports] if source else config.destination_ports(r)):
            cuts |= {lo, hi + 1}
    return cuts


def protocol_intervals(rules: list, family: int) -> list[tuple[int, int]]:
    cuts = {p for p in (ICMP, ICMPV6, 6, 17, 47) for p in (p, p + 1)}
    cuts |= {x for r in rules if r.protocol >= 0 for x in (r.protocol, r.protocol + 1)}
    excluded = ICMPV6 if family == 4 else ICMP
    return [iv for iv in intervals(cuts, 255) if iv != (excluded, excluded)]


def grid(config: Config, local_nets: list | None, rules: list) -> list[GridPoint]:
    """Every representative point for `rules`, local addresses restricted to local_nets (None: every address)."""
    out = []
    sports, dports = intervals(port_cuts(config, True, rules), 65535), intervals(port_cuts(config, False, rules), 65535)
    for family in (4, 6):
        addr = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
        cuts = address_cuts(config, family, rules)
        cells = intervals(cuts, 2 ** BITS[family] - 1)
        peers = [(addr(lo), hi - lo + 1) for lo, hi in cells]
        if local_nets is None:
            locals_ = peers
        else:
            mine = [n for n in local_nets if n.version == family]
            locals_ = [(addr(lo), hi - lo + 1) for lo, hi in cells if any(addr(lo) in n for n in mine)]
        for (peer, pw), (local, lw) in product(peers, locals_):
            for plo, phi in protocol_intervals(rules, family):
                if plo in PORTED_PROTOCOLS:
                    for (slo, shi), (dlo, dhi) in product(sports, dports):
                        out.append(GridPoint(family, peer, local, plo, slo, dlo,
                                             pw * lw * (shi - slo + 1) * (dhi - dlo + 1)))
                else:
                    out.append(GridPoint(family, peer, local, plo, 0, 0, pw * lw * (phi - plo + 1)))
    return out


class UnitOracle:
    """The reference's view of one unit: which entries match each grid point, and which decides it."""

    def __init__(self, config: Config, ref: ReferenceEvaluator, unit):
        self.config, self.ref, self.unit = config, ref, unit
        self.enis = [config.interfaces[e] for e in unit.enis]
        self.alone = Interface(f"(no ENI: {unit.label})", unit.vpc, unit.groups)  # a group attached to no ENI, alone
        nets = [n for e in self.enis for n in e.owned_networks()] if self.enis else None
        self.points = grid(config, nets, [e.rule for e in unit.entries if e.rule is not None])

    def eni_for(self, local) -> Interface:
        for eni in self.enis:
            if eni.owns(local):
                return eni
        return self.alone

    def matching(self, p: GridPoint) -> tuple[list[str], str]:
        """Names of the unit's entries matching p, in unit order, and the reference's deciding rule."""
        eni = self.eni_for(p.local)
        peer_eni = self.ref.owner(p.peer, self.unit.vpc)
        names = []
        advanced = any(self.config.groups[g].type == ADVANCED for g in self.unit.groups)
        for entry in self.unit.entries:
            if entry.rule is not None:
                hit = self.ref.rule_matches(entry.rule, p.peer, peer_eni, p.local, p.protocol, p.src_port, p.dst_port)
            elif entry.name == DEFAULT_HEALTH_CHECK_ALLOW:
                hit = p.family == 4 and p.peer in HEALTH_CHECK_NETWORK
            elif entry.name == DEFAULT_INTRA_GROUP_ALLOW:
                hit = not advanced and self.ref.shares_interconnected_group(eni, peer_eni)
            else:
                hit = True
            if hit:
                names.append(entry.name)
        decision = self.ref.decide(eni, self.unit.direction, p.peer, peer_eni, p.local, p.protocol,
                                   p.src_port, p.dst_port)
        assert decision.allowed == is_accept(self.unit, decision.rule), (decision, p)
        return names, decision.rule

    def flow_of(self, p: GridPoint) -> tuple:
        """(src, dst) of p in this unit's direction."""
        return (p.peer, p.local) if self.unit.direction == INGRESS else (p.local, p.peer)


#: What each default rule does, per docs/semantics.md §2 (the tests check it against the reference's verdicts).
DEFAULT_ACCEPTS = {DEFAULT_HEALTH_CHECK_ALLOW: True, DEFAULT_INTRA_GROUP_ALLOW: True, DEFAULT_OUTBOUND_ALLOW: True,
                   DEFAULT_INBOUND_DENY: False, DEFAULT_OUTBOUND_DENY: False}


def is_accept(unit, name: str) -> bool:
    """Whether the entry accepts: a custom rule's own action, a default rule's from the semantics."""
    rule = next(e.rule for e in unit.entries if e.name == name)
    return rule.action == ACCEPT if rule is not None else DEFAULT_ACCEPTS[name]


def path_grid(config: Config, extra_nets: list, extra_ports: list) -> list[GridPoint]:
    """Representative flows (peer = source, local = destination) for path mode: both addresses over every cell."""
    rules = [r for g in config.groups.values() for r in g.rules]
    out = []
    scuts, dcuts = port_cuts(config, True, rules), port_cuts(config, False, rules)
    for lo, hi in extra_ports:
        scuts |= {lo, hi + 1}
        dcuts |= {lo, hi + 1}
    sports, dports = intervals(scuts, 65535), intervals(dcuts, 65535)
    for family in (4, 6):
        addr = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
        cuts = address_cuts(config, family, rules)
        cuts |= {x for n in extra_nets if n.version == family
                 for x in (int(n.network_address), int(n.broadcast_address) + 1)}
        cells = [(addr(lo), hi - lo + 1) for lo, hi in intervals(cuts, 2 ** BITS[family] - 1)]
        for (src, sw), (dst, dw) in product(cells, cells):
            for plo, phi in protocol_intervals(rules, family):
                if plo in PORTED_PROTOCOLS:
                    for (slo, shi), (dlo, dhi) in product(sports, dports):
                        out.append(GridPoint(family, src, dst, plo, slo, dlo, sw * dw * (shi - slo + 1) * (dhi - dlo + 1)))
                else:
                    out.append(GridPoint(family, src, dst, plo, 0, 0, sw * dw * (phi - plo + 1)))
    return out
