"""Units of analysis (docs/analysis.md (how it works)): a group set and a direction, with its ordered entries as exact regions.

A unit's entries are its custom rules in evaluation order (`Config.rule_order_key`: priority, drop before
accept, file order; legacy 110 last) between the invisible default rules of docs/semantics.md §2. Every region
is over flows (source, destination), so a unit's regions combine with other units' in path mode: ingress
puts the peer in the source and the unit's own addresses in the destination, egress the other way.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

from ..model.network import (
    ACCEPT,
    ADVANCED,
    BASIC,
    DEFAULT_HEALTH_CHECK_ALLOW,
    DEFAULT_INBOUND_DENY,
    DEFAULT_INTRA_GROUP_ALLOW,
    DEFAULT_OUTBOUND_ALLOW,
    DEFAULT_OUTBOUND_DENY,
    DROP,
    EGRESS,
    HEALTH_CHECK_NETWORK,
    INGRESS,
    PORTED_PROTOCOLS,
    Config,
    Interface,
    Rule,
)
from .space import Space

#: A unit whose open region grows past this many BDD nodes, or whose sweep runs longer, is left incomplete.
NODE_BUDGET = 2_000_000
BUDGET_EVERY = 16  # entries between two node-budget checks
TIME_BUDGET_S = 30.0


@dataclass
class Entry:
    """One entry of a unit's ordered list: a custom rule or a default rule."""

    name: str  # GROUP/RULE or a default rule's name
    action: str  # accept | drop
    rule: Rule | None  # None for default rules
    match: object  # the points of the unit it matches
    decides: object = None  # the points that reach it and that it matches (its decision region)

    @property
    def is_default(self) -> bool:
        return self.rule is None


@dataclass
class Unit:
    """A group set in one direction, the ENIs carrying it, and its entries' regions."""

    vpc: str
    groups: tuple[str, ...]
    direction: str
    enis: tuple[str, ...]  # empty: a group attached to no ENI, analysed alone with local = every address
    load_balancer_backend: bool
    region: object  # the unit's points: local address among the ENIs' addresses
    entries: list[Entry] = field(default_factory=list)
    incomplete: str = ""  # why the sweep stopped ("" when it is exact and complete)
    seconds: float = 0.0

    @property
    def label(self) -> str:
        where = ", ".join(self.enis) if self.enis else "no ENI"
        return f"{'+'.join(self.groups)} {self.direction} ({where})"

    def allowed(self, space: Space) -> object:
        """The points this unit allows."""
        return space.disj(e.decides for e in self.entries if e.action == ACCEPT)

    @property
    def peer_field(self) -> str:
        return "src" if self.direction == INGRESS else "dst"

    @property
    def local_field(self) -> str:
        return "dst" if self.direction == INGRESS else "src"


class Regions:
    """Address regions of the configuration's objects, built once and shared by every unit."""

    def __init__(self, config: Config, space: Space):
        self.config, self.space = config, space
        self._owned: dict[tuple[str, str], object] = {}
        self._members: dict[tuple[str, str], object] = {}
        self._ports: dict[tuple, object] = {}
        self.ordered = config.evaluation_order()

    def owned(self, eni: Interface, fieldname: str) -> object:
        key = (eni.id, fieldname)
        if key not in self._owned:
            self._owned[key] = self.space.networks(fieldname, eni.owned_networks())
        return self._owned[key]

    def members(self, group: str, fieldname: str) -> object:
        """Every private address of every ENI carrying the group."""
        key = (group, fieldname)
        if key not in self._members:
            self._members[key] = self.space.disj(self.owned(e, fieldname) for e in self.config.members(group))
        return self._members[key]

    def peer(self, rule: Rule, fieldname: str) -> object:
        kind = rule.peer.kind
        if kind == "cidr":
            return self.space.network(fieldname, rule.peer.cidr)
        if kind == "group":
            return self.members(rule.peer.ref, fieldname)
        return self.space.networks(fieldname, self.config.prefix_lists[rule.peer.ref].entries)

    def protocol_ports(self, rule: Rule) -> object:
        key = (rule.protocol, self.config.destination_ports(rule), rule.source_ports)
        if key not in self._ports:
            s = self.space
            region = s.protocol(rule.protocol)
            if rule.protocol in PORTED_PROTOCOLS:
                region &= s.disj(s.port_range("dport", lo, hi) for lo, hi in key[1])
                region &= s.port_range("sport", *rule.source_ports)
            self._ports[key] = region
        return self._ports[key]


def eni_groups(config: Config, eni: Interface) -> tuple[str, ...]:
    """The ENI's group set, in file order (how units name it)."""
    return tuple(sorted(set(eni.security_groups), key=lambda g: config.groups[g].order))


def group_sets(config: Config) -> list[tuple[str, tuple[str, ...], bool, tuple[str, ...]]]:
    """(vpc, groups in file order, load-balancer backend, ENIs) for every distinct group set; then each group
    attached to no ENI, alone."""
    sets: dict[tuple, list[str]] = {}
    for eni in config.interfaces.values():
        sets.setdefault((eni.vpc, eni_groups(config, eni), eni.load_balancer_backend), []).append(eni.id)
    out = [(vpc, groups, lb, tuple(enis)) for (vpc, groups, lb), enis in sets.items()]
    attached = {g for eni in config.interfaces.values() for g in eni.security_groups}
    out += [(g.vpc, (g.id,), False, ()) for g in config.groups.values() if g.id not in attached]
    return out


def build_unit(config: Config, regions: Regions, vpc: str, groups: tuple[str, ...], lb: bool,
               enis: tuple[str, ...], direction: str, node_budget: int = NODE_BUDGET,
               time_budget_s: float = TIME_BUDGET_S, within: object = None) -> Unit:
    """The unit's entries with their match and decision regions (a Batfish-style sweep down the list);
    `within`: only the flows of that region (a diff sweeps only the flows a change can touch)."""
    start = time.monotonic()
    s = regions.space
    interfaces = [config.interfaces[e] for e in enis]
    local_field = "dst" if direction == INGRESS else "src"
    peer_field = "src" if direction == INGRESS else "dst"
    local = s.disj(regions.owned(e, local_field) for e in interfaces) if enis else s.universe
    unit = Unit(vpc, groups, direction, enis, lb, local & s.universe & (s.true if within is None else within))
    advanced = any(config.groups[g].type == ADVANCED for g in groups)
    entries = unit.entries
    if direction == INGRESS:
        if lb:
            entries.append(Entry(DEFAULT_HEALTH_CHECK_ALLOW, ACCEPT, None,
                                 unit.region & s.network(peer_field, HEALTH_CHECK_NETWORK)))
        shared = [g for g in groups if config.groups[g].type == BASIC and config.groups[g].internal_policy == ACCEPT]
        if shared and not advanced:
            entries.append(Entry(DEFAULT_INTRA_GROUP_ALLOW, ACCEPT, None,
                                 unit.region & s.disj(regions.members(g, peer_field) for g in shared)))
    in_set = set(groups)
    for rule in regions.ordered:
        if rule.group not in in_set or rule.direction != direction:
            continue
        match = unit.region & regions.protocol_ports(rule) & regions.peer(rule, peer_field)
        if rule.local is not None:
            match &= s.network(local_field, rule.local)
        entries.append(Entry(rule.name, rule.action, rule, match))
    if direction == INGRESS:
        entries.append(Entry(DEFAULT_INBOUND_DENY, DROP, None, unit.region))
    else:
        entries.append(Entry(DEFAULT_OUTBOUND_DENY, DROP, None, unit.region) if advanced
                       else Entry(DEFAULT_OUTBOUND_ALLOW, ACCEPT, None, unit.region))
    remaining = unit.region
    for k, entry in enumerate(entries):
        entry.decides = entry.match & remaining
        remaining &= ~entry.match
        if k % BUDGET_EVERY == 0 and len(remaining) > node_budget:  # a DAG's size costs a walk: not every time
            unit.incomplete = f"the open region grew past {node_budget:,} BDD nodes at {entry.name}"
        elif time.monotonic() - start > time_budget_s:
            unit.incomplete = f"the sweep ran past {time_budget_s:g} s at {entry.name}"
        if unit.incomplete:
            break
    unit.seconds = time.monotonic() - start
    return unit


def iter_units(config: Config, space: Space, node_budget: int = NODE_BUDGET,
               time_budget_s: float = TIME_BUDGET_S) -> Iterator[Unit]:
    """Every unit of the configuration (group sets × directions), swept one after the other."""
    regions = Regions(config, space)
    for vpc, groups, lb, enis in group_sets(config):
        for direction in (INGRESS, EGRESS):
            yield build_unit(config, regions, vpc, groups, lb, enis, direction, node_budget, time_budget_s)


def build_units(config: Config, space: Space | None = None, node_budget: int = NODE_BUDGET,
                time_budget_s: float = TIME_BUDGET_S) -> tuple[Space, list[Unit]]:
    """Every unit of the configuration, kept (for questions across units such as path mode)."""
    space = space or Space()
    return space, list(iter_units(config, space, node_budget, time_budget_s))
