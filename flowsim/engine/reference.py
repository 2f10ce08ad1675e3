"""The reference evaluator: docs/semantics.md §2–§4 written to be read, not to be fast.

It is the executable specification. Every fast path in flowsim is tested
against it flow by flow, so it favours the obvious over the clever.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..kernels.codes import VERDICT_NAMES
from ..model.addresses import IPAddress
from ..model.network import (
    ACCEPT,
    ADVANCED,
    BASIC,
    DEFAULT_HEALTH_CHECK_ALLOW,
    DEFAULT_INBOUND_DENY,
    DEFAULT_INTRA_GROUP_ALLOW,
    DEFAULT_OUTBOUND_ALLOW,
    DEFAULT_OUTBOUND_DENY,
    EGRESS,
    HEALTH_CHECK_NETWORK,
    INGRESS,
    PORTED_PROTOCOLS,
    Config,
    Flow,
    Interface,
    Rule,
)

ALLOW, DENY, UNMANAGED = VERDICT_NAMES


@dataclass(frozen=True)
class SideDecision:
    """What one ENI decided in one direction, and which rule decided it."""

    eni: str
    direction: str
    allowed: bool
    rule: str  # GROUP/RULE, or a default rule's name
    priority: int | None = None  # None for default rules
    group: str | None = None
    custom_rule: Rule | None = None


@dataclass(frozen=True)
class Verdict:
    """The verdict of a flow with each side's decision (None where a side does not apply)."""

    verdict: str
    egress: SideDecision | None = None
    ingress: SideDecision | None = None

    @property
    def egress_rule(self) -> str:
        return self.egress.rule if self.egress else ""

    @property
    def ingress_rule(self) -> str:
        return self.ingress.rule if self.ingress else ""


class ReferenceEvaluator:
    """Evaluates flows one at a time, exactly as docs/semantics.md says."""

    def __init__(self, config: Config):
        self.config = config
        self._ordered: dict[tuple[str, str], list[Rule]] = {}
        self._owned = [(eni, eni.owned_networks()) for eni in config.interfaces.values()]

    # -- address ownership (docs/semantics.md §3, Decision: resolved within one VPC)
    def owner(self, addr: IPAddress, vpc: str | None) -> Interface | None:
        """The ENI owning `addr` in `vpc`; without a VPC, the single ENI owning it in any VPC."""
        owners = [eni for eni, nets in self._owned
                  if (vpc is None or eni.vpc == vpc) and any(addr.version == n.version and addr in n for n in nets)]
        if len(owners) > 1:
            vpcs = ", ".join(sorted(e.vpc for e in owners))
            raise InputError(f"address {addr} is owned in several VPCs ({vpcs}); give the flow a vpc")
        return owners[0] if owners else None

    # -- matching one rule (docs/semantics.md §1)
    def rule_matches(self, rule: Rule, peer: IPAddress, peer_eni: Interface | None, local: IPAddress,
                     protocol: int, src_port: int, dst_port: int) -> bool:
        if rule.protocol not in (-1, protocol):
            return False
        if rule.protocol in PORTED_PROTOCOLS:
            if not any(lo <= dst_port <= hi for lo, hi in self.config.destination_ports(rule)):
                return False
            if not rule.source_ports[0] <= src_port <= rule.source_ports[1]:
                return False
        if rule.local is not None and not (local.version == rule.local.version and local in rule.local):
            return False
        kind = rule.peer.kind
        if kind == "cidr":
            return peer.version == rule.peer.cidr.version and peer in rule.peer.cidr
        if kind == "group":
            return peer_eni is not None and rule.peer.ref in peer_eni.security_groups
        entries = self.config.prefix_lists[rule.peer.ref].entries
        return any(peer.version == net.version and peer in net for net in entries)

    def ordered_rules(self, eni: Interface, direction: str) -> list[Rule]:
        """The ENI's custom rules of one direction, pooled from all its groups, in evaluation order."""
        key = (eni.id, direction)
        if key not in self._ordered:  # remembered: sorting per flow would make large tests crawl
            pooled = [r for gid in eni.security_groups for r in self.config.groups[gid].rules if r.direction == direction]
            self._ordered[key] = sorted(pooled, key=self.config.rule_order_key)
        return self._ordered[key]

    def shares_interconnected_group(self, eni: Interface, other: Interface | None) -> bool:
        """Decision (several groups): both ENIs carry one basic group whose internal policy is accept."""
        if other is None:
            return False
        for gid in eni.security_groups:
            group = self.config.groups[gid]
            if group.type == BASIC and group.internal_policy == ACCEPT and gid in other.security_groups:
                return True
        return False

    # -- one ENI, one direction (docs/semantics.md §2)
    def decide(self, eni: Interface, direction: str, peer: IPAddress, peer_eni: Interface | None,
               local: IPAddress, protocol: int, src_port: int, dst_port: int) -> SideDecision:
        advanced = any(self.config.groups[g].type == ADVANCED for g in eni.security_groups)
        # Decision: the platform's health-check allowance comes first, before the intra-group allow
        if direction == INGRESS and eni.load_balancer_backend and peer in HEALTH_CHECK_NETWORK:
            return SideDecision(eni.id, direction, True, DEFAULT_HEALTH_CHECK_ALLOW)
        if direction == INGRESS and not advanced and self.shares_interconnected_group(eni, peer_eni):
            return SideDecision(eni.id, direction, True, DEFAULT_INTRA_GROUP_ALLOW)
        for rule in self.ordered_rules(eni, direction):
            if self.rule_matches(rule, peer, peer_eni, local, protocol, src_port, dst_port):
                return SideDecision(eni.id, direction, rule.action == ACCEPT, rule.name, rule.priority, rule.group, rule)
        if direction == INGRESS:
            return SideDecision(eni.id, direction, False, DEFAULT_INBOUND_DENY)
        if advanced:
            return SideDecision(eni.id, direction, False, DEFAULT_OUTBOUND_DENY)
        return SideDecision(eni.id, direction, True, DEFAULT_OUTBOUND_ALLOW)

    # -- a flow (docs/semantics.md §3 and §4)
    def evaluate(self, flow: Flow) -> Verdict:
        """The verdict of one flow, in endpoint mode when it names an ENI, else in path mode."""
        if flow.eni is not None:
            return self._endpoint(flow)
        src_eni = self.owner(flow.src, flow.vpc)
        dst_eni = self.owner(flow.dst, flow.vpc)
        if src_eni is None and dst_eni is None:
            return Verdict(UNMANAGED)
        if src_eni is dst_eni:
            return Verdict(ALLOW)
        args = (flow.protocol, flow.src_port, flow.dst_port)
        egress = ingress = None
        if src_eni is not None:
            egress = self.decide(src_eni, EGRESS, flow.dst, dst_eni, flow.src, *args)
        if dst_eni is not None:
            ingress = self.decide(dst_eni, INGRESS, flow.src, src_eni, flow.dst, *args)
        allowed = all(side.allowed for side in (egress, ingress) if side is not None)
        return Verdict(ALLOW if allowed else DENY, egress, ingress)

    def _endpoint(self, flow: Flow) -> Verdict:
        eni = self.config.interfaces.get(flow.eni)
        if eni is None:
            return Verdict(UNMANAGED)
        args = (flow.protocol, flow.src_port, flow.dst_port)
        if flow.direction == INGRESS:
            side = self.decide(eni, INGRESS, flow.src, self.owner(flow.src, flow.vpc or eni.vpc), flow.dst, *args)
            return Verdict(ALLOW if side.allowed else DENY, ingress=side)
        side = self.decide(eni, EGRESS, flow.dst, self.owner(flow.dst, flow.vpc or eni.vpc), flow.src, *args)
        return Verdict(ALLOW if side.allowed else DENY, egress=side)
