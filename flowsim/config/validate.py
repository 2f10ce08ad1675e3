"""What the cloud refuses: cross-object checks and quotas (docs/semantics.md §6).

Syntax problems are found while loading (`flowsim.config.loader`); this module checks
a parsed `Config` as a whole and returns every problem, never stopping at the first.
"""
from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass

from ..errors import Problem
from ..model.network import ADVANCED, BASIC, Config, Interface, Rule
from ..model.words import counted


def _rule_subject(rule: Rule) -> str:
    return f"{rule.group} rule {rule.id}"


def validate_config(config: Config) -> list[Problem]:
    """Every hard error and quota violation of the configuration."""
    problems: list[Problem] = []

    def add(subject: str, message: str, line: int | None) -> None:
        problems.append(Problem(message, subject=subject, source=config.source, line=line))

    _check_rules(config, add)
    _check_interfaces(config, add)
    _check_addresses(config, add)
    _check_quotas(config, add)
    return problems


def _check_rules(config: Config, add) -> None:
    groups = config.groups
    for group in groups.values():
        for rule in group.rules:
            if rule.peer.kind != "group":
                continue
            subject, target = _rule_subject(rule), groups.get(rule.peer.ref)
            if rule.peer.ref == group.id:
                add(subject, "a group cannot reference itself", rule.line)
            elif group.type == ADVANCED:
                add(subject, f"an advanced group cannot reference a security group ({rule.peer.ref})", rule.line)
            elif target is not None and target.type == ADVANCED:
                add(subject, f"advanced group {target.id} cannot be referenced by a rule", rule.line)
            elif target is not None and target.vpc != group.vpc:
                add(subject, f"references {target.id} in VPC {target.vpc}, but the group is in VPC {group.vpc}", rule.line)


def _check_interfaces(config: Config, add) -> None:
    for eni in config.interfaces.values():
        if not eni.security_groups:
            add(eni.id, "an interface must be in at least one security group", eni.line)
        types = set()
        for gid in eni.security_groups:
            group = config.groups.get(gid)
            if group is None:
                add(eni.id, f"unknown security group {gid!r}", eni.line)
                continue
            types.add(group.type)
            if group.vpc != eni.vpc:
                add(eni.id, f"is in VPC {eni.vpc} but security group {gid} is in VPC {group.vpc}", eni.line)
        if len(types) > 1:
            add(eni.id, "is in both basic and advanced security groups; an interface's groups must all be of one type", eni.line)


def _check_addresses(config: Config, add) -> None:
    """No address may belong to two ENIs (or twice to one) within one VPC."""
    by_vpc: dict[tuple[str, int], list[tuple[int, int, Interface]]] = defaultdict(list)
    for eni in config.interfaces.values():
        for net in eni.owned_networks():
            by_vpc[(eni.vpc, net.version)].append((int(net.network_address), int(net.broadcast_address), eni))
    for (vpc, version), spans in by_vpc.items():
        spans.sort(key=lambda s: (s[0], s[1]))
        reach_end, reach_eni = -1, None
        for first, last, eni in spans:
            if first <= reach_end:
                addr = ipaddress.ip_address(first) if version == 4 else ipaddress.IPv6Address(first)
                if reach_eni is eni:
                    add(eni.id, f"owns address {addr} twice", eni.line)
                else:
                    add(eni.id, f"address {addr} is also owned by {reach_eni.id} in VPC {vpc}", eni.line)
            if last > reach_end:
                reach_end, reach_eni = last, eni


@dataclass(frozen=True)
class QuotaUse:
    """How much of one quota one object uses (docs/semantics.md §6)."""

    quota: str  # the Limits field
    subject: str  # the ENI, group or prefix list
    used: int
    limit: int
    phrase: str  # what the object does, for messages: "is in 3 security groups"
    whose: str = "the quota"
    line: int | None = None
    enis: tuple[str, ...] = ()  # the interfaces the use concerns (an ENI's own, a group's members)

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else float("inf")


def quota_usage(config: Config) -> list[QuotaUse]:
    """Every quota's use by every object it applies to, over or under its limit."""
    limits, out = config.limits, []
    members: dict[str, list[Interface]] = defaultdict(list)
    for eni in config.interfaces.values():
        for gid in eni.security_groups:
            members[gid].append(eni)
        n = len(eni.security_groups)
        out.append(QuotaUse("groups_per_eni", eni.id, n, limits.groups_per_eni, f"is in {counted(n, 'security group', grouped=False)}", line=eni.line, enis=(eni.id,)))
        n = sum(rule_weight(config, r) for gid in eni.security_groups if gid in config.groups for r in config.groups[gid].rules)
        out.append(QuotaUse("rules_per_eni", eni.id, n, limits.rules_per_eni, f"carries {counted(n, 'rule', grouped=False)} over its groups",
                            line=eni.line, enis=(eni.id,)))
    for group in config.groups.values():
        enis = tuple(e.id for e in members[group.id])
        if group.type == BASIC:
            n = sum(1 for r in group.rules if r.peer.kind == "group")
            out.append(QuotaUse("group_rules_per_group", group.id, n, limits.group_rules_per_group,
                                f"has {counted(n, 'rule', grouped=False)} that reference{'s' if n == 1 else ''} security groups",
                                line=group.line, enis=enis))
            n = sum(e.address_count() for e in members[group.id])
            out.append(QuotaUse("addresses_per_basic_group", group.id, n, limits.addresses_per_basic_group,
                                f"holds {counted(n, 'private address', 'private addresses', grouped=False)}", "a basic group's quota",
                                group.line, enis))
        else:
            n = len(members[group.id])
            out.append(QuotaUse("enis_per_advanced_group", group.id, n, limits.enis_per_advanced_group,
                                f"holds {counted(n, 'interface', grouped=False)}", "an advanced group's quota", group.line, enis))
    for pl in config.prefix_lists.values():
        n = max(pl.max_entries, len(pl.entries))
        out.append(QuotaUse("entries_per_prefix_list", pl.id, n, limits.entries_per_prefix_list, f"allows {counted(n, 'entry', 'entries', grouped=False)}",
                            line=pl.line))
    return out


def _check_quotas(config: Config, add) -> None:
    for use in quota_usage(config):
        if use.used > use.limit:
            add(use.subject, f"{use.phrase}; {use.whose} is {use.limit} (limits.{use.quota})", use.line)
    for pl in config.prefix_lists.values():
        if len(pl.entries) > pl.max_entries:
            add(pl.id, f"has {len(pl.entries)} entries but max_entries is {pl.max_entries}", pl.line)
    for prl in config.port_lists.values():
        if len(prl.entries) > prl.max_entries:
            add(prl.id, f"has {len(prl.entries)} entries but max_entries is {prl.max_entries}", prl.line)


def rule_weight(config: Config, rule: Rule) -> int:
    """A rule counts once, a rule naming a prefix list or a port list as the list's max entries
    (Decision: a rule naming both counts as the product, one rule per pair of entries)."""
    weight = 1
    if rule.peer.kind == "prefix_list" and rule.peer.ref in config.prefix_lists:
        weight *= config.prefix_lists[rule.peer.ref].max_entries
    if rule.port_list and rule.port_list in config.port_lists:
        weight *= config.port_lists[rule.port_list].max_entries
    return weight
