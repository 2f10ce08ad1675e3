"""Lint (docs/analysis.md (lint)): rules that never decide, decide nothing new, lose ties or open too much; quotas.

Every finding about a rule names its unit's ENIs and carries an example flow in endpoint mode (the ENI and
direction of the unit), which `flowsim check`/the reference evaluator decides as the finding says.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache

from ..config.loader import paused_gc
from ..config.validate import quota_usage
from ..engine.explain import proto_of
from ..model.addresses import IPNetwork
from ..model.network import (
    ACCEPT,
    DEFAULT_HEALTH_CHECK_ALLOW,
    DEFAULT_INTRA_GROUP_ALLOW,
    DROP,
    INGRESS,
    PORTED_PROTOCOLS,
    Config,
    Interface,
    Rule,
    protocol_name,
)
from ..model.words import counted
from .space import Point, Space
from .units import Entry, Unit, iter_units

SEVERITIES = ("info", "warning", "error")
ADMIN_PORTS = (22, 23, 3389, 445, 3306, 5432, 1433, 6379, 27017, 9200, 11211)
#: Address space that is not public: private, shared (carrier-grade NAT), loopback, link-local, multicast, reserved.
NON_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "::/8", "fc00::/7", "fe80::/10", "ff00::/8"))
PUBLIC_THRESHOLD = {4: 2 ** 24, 6: 2 ** 120}  # a /8 of the family's space



@dataclass(frozen=True)
class Finding:
    """One lint finding. `rule` and `by` name rules as GROUP/RULE or default-rule names."""

    kind: str
    severity: str
    rule: str
    direction: str
    enis: tuple[str, ...]
    message: str
    by: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # the unit's group set
    example: dict | None = None  # flow columns (endpoint mode when the unit has ENIs)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "severity": self.severity, "rule": self.rule, "by": list(self.by),
                "direction": self.direction, "enis": list(self.enis), "example": self.example,
                "message": self.message}


@dataclass(frozen=True)
class Incomplete:
    """A unit whose analysis exceeded its node or time budget: nothing is claimed about it."""

    groups: tuple[str, ...]
    direction: str
    enis: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict:
        return {"groups": list(self.groups), "direction": self.direction, "enis": list(self.enis),
                "reason": self.reason}


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)
    incomplete: list[Incomplete] = field(default_factory=list)
    units: int = 0
    seconds: float = 0.0

    def at_least(self, severity: str) -> list[Finding]:
        floor = SEVERITIES.index(severity)
        return [f for f in self.findings if SEVERITIES.index(f.severity) >= floor]

    def to_dict(self) -> dict:
        return {"findings": [f.to_dict() for f in self.findings],
                "incomplete": [i.to_dict() for i in self.incomplete]}


@paused_gc()  # millions of BDD handles beside a large configuration: see paused_gc
def lint(config: Config, node_budget: int | None = None, time_budget_s: float | None = None) -> LintReport:
    """Every finding of docs/analysis.md (lint) over every unit of the configuration."""
    import time

    start = time.monotonic()
    budgets = {k: v for k, v in (("node_budget", node_budget), ("time_budget_s", time_budget_s)) if v is not None}
    space = Space()
    public_peer = space.universe & ~space.networks("src", NON_PUBLIC)
    report = LintReport()
    for unit in iter_units(config, space, **budgets):  # one at a time: a unit's BDDs go when it is done
        report.units += 1
        if unit.incomplete:
            report.incomplete.append(Incomplete(unit.groups, unit.direction, unit.enis, unit.incomplete))
            continue
        report.findings += unit_findings(config, space, unit, public_peer)
    report.findings += quota_findings(config)
    report.findings.sort(key=lambda f: -SEVERITIES.index(f.severity))
    report.seconds = time.monotonic() - start
    return report


def example_flow(config: Config, unit: Unit, point: Point) -> dict:
    """A point as flow columns; endpoint mode at the unit's ENI owning the local address."""
    flow = {"src_ip": str(point.src), "dst_ip": str(point.dst), "protocol": protocol_name(point.protocol),
            "src_port": point.src_port, "dst_port": point.dst_port}
    local = point.dst if unit.direction == INGRESS else point.src
    for eni in unit.enis:
        if _owns(config.interfaces[eni], local):
            flow.update(eni=eni, direction=unit.direction, vpc=config.interfaces[eni].vpc)
            break
    return flow


@lru_cache(maxsize=65536)
def _owned(eni: Interface) -> tuple[IPNetwork, ...]:
    return tuple(eni.owned_networks())


def _owns(eni: Interface, addr) -> bool:
    return any(addr.version == n.version and addr in n for n in _owned(eni))


def describe(config: Config, entry: Entry) -> str:
    """`sg-web/ssh (priority 1, accept tcp 22 from 0.0.0.0/0)`; a default rule by its name."""
    rule = entry.rule
    if rule is None:
        return entry.name
    return f"{rule.name} ({what(config, rule)})"


def what(config: Config, rule: Rule) -> str:
    """`priority 1, accept tcp 22/22 from 0.0.0.0/0` — a rule in a few words."""
    side = "from" if rule.direction == INGRESS else "to"
    local = f" at {rule.local}" if rule.local is not None else ""
    return f"priority {rule.priority}, {rule.action} {proto_of(rule)} {side} {rule.peer}{local}"


def _on(unit: Unit) -> str:
    return f" on {', '.join(unit.enis)}" if unit.enis else " (group attached to no ENI)"


def unit_findings(config: Config, space: Space, unit: Unit, public_peer) -> list[Finding]:
    """The findings about the custom rules of one swept unit (public_peer: flows from public sources)."""
    out: list[Finding] = []
    entries = unit.entries
    after = _allow_after(space, entries)
    defaults_first = [e for e in entries if e.name in (DEFAULT_INTRA_GROUP_ALLOW, DEFAULT_HEALTH_CHECK_ALLOW)]

    def finding(kind: str, severity: str, entry: Entry, message: str, point: Point | None,
                by: tuple[str, ...] = ()) -> None:
        out.append(Finding(kind, severity, entry.name, unit.direction, unit.enis, message + _on(unit), by,
                           unit.groups, example_flow(config, unit, point) if point else None))

    for i, entry in enumerate(entries):
        if entry.is_default:
            continue
        if entry.match == space.false:
            finding("unmatchable", "warning", entry,
                    f"{entry.name} matches no flow: {_why_unmatchable(config, unit, entry.rule)}", None)
            continue
        if entry.decides == space.false:
            taking = [e for e in entries[:i] if not (entry.match & e.decides) == space.false]
            by = taking if len(taking) == 1 else \
                sorted(taking, key=lambda e: space.approx_count(entry.match & e.decides), reverse=True)
            other = any(e.action != entry.action for e in by)
            takers = ", ".join(describe(config, e) for e in by[:3]) + (f" and {len(by) - 3} more" if len(by) > 3 else "")
            finding("shadowed", "error" if other else "warning", entry,
                    f"{entry.name} never decides anything: {takers} {'takes' if len(by) == 1 else 'take'} "
                    f"all of its traffic" + (", with the opposite action" if other else ""),
                    space.pick(entry.match & by[0].decides), tuple(e.name for e in by))
        else:
            rest = after[i + 1]
            same = (entry.decides & ~rest) == space.false if entry.action == ACCEPT \
                else (entry.decides & rest) == space.false
            if same:
                finding("redundant", "info", entry,
                        f"{entry.name} can be removed: the rules after it {'allow' if entry.action == ACCEPT else 'deny'} "
                        f"everything it decides", space.pick(entry.decides))
        if entry.action == ACCEPT:
            ties = [e for e in entries[:i] if e.rule is not None and e.action == DROP
                    and e.rule.priority == entry.rule.priority and not (entry.match & e.decides) == space.false]
            if ties:
                finding("tie", "warning", entry,
                        f"{entry.name} loses to {describe(config, ties[0])} at the same priority: drop wins ties",
                        space.pick(entry.match & ties[0].decides), tuple(e.name for e in ties))
            _permissive(config, space, unit, entry, finding, public_peer)
        elif entry.decides != space.false:
            lost = [e for e in defaults_first if not (entry.match & e.decides) == space.false]
            if lost:
                finding("overridden-by-default", "warning", entry,
                        f"{entry.name} does not block what {lost[0].name} allows first",
                        space.pick(entry.match & lost[0].decides), tuple(e.name for e in lost))
    return out


def _allow_after(space: Space, entries: list[Entry]) -> list:
    """after[i]: the points that entries i.. allow (the unit's verdict if entries before i were removed)."""
    after = [space.false] * (len(entries) + 1)
    for i in range(len(entries) - 1, -1, -1):
        e = entries[i]
        after[i] = (e.match if e.action == ACCEPT else space.false) | (~e.match & after[i + 1])
    return after


def _why_unmatchable(config: Config, unit: Unit, rule: Rule) -> str:
    if rule.peer.kind == "group" and not config.members(rule.peer.ref):
        return f"group {rule.peer.ref} has no member ENI"
    if rule.peer.kind == "prefix_list" and not config.prefix_lists[rule.peer.ref].entries:
        return f"prefix list {rule.peer.ref} is empty"
    if rule.local is not None:
        return f"local {rule.local} holds no address of the group set's ENIs"
    return "no address, protocol and port combination fits it (a peer of the wrong family for the protocol?)"


def _public_addresses(nets: list[IPNetwork]) -> dict[int, int]:
    """Public addresses per family in the union of nets."""
    out = {4: 0, 6: 0}
    for version in (4, 6):
        for net in ipaddress.collapse_addresses(n for n in nets if n.version == version):
            size = net.num_addresses
            for private in NON_PUBLIC:
                if private.version != version:
                    continue
                if net.subnet_of(private):
                    size = 0
                    break
                if private.subnet_of(net):
                    size -= private.num_addresses
            out[version] += size
    return out


def _permissive(config: Config, space: Space, unit: Unit, entry: Entry, finding, public_peer) -> None:
    rule = entry.rule
    if unit.direction != INGRESS or rule.peer.kind == "group":
        return
    nets = [rule.peer.cidr] if rule.peer.kind == "cidr" else list(config.prefix_lists[rule.peer.ref].entries)
    public = _public_addresses(nets)
    if not any(public[v] >= PUBLIC_THRESHOLD[v] for v in (4, 6)):
        return
    ranges = config.destination_ports(rule)
    if rule.protocol < 0:
        reason, region = "all protocols", space.true
    elif rule.protocol in PORTED_PROTOCOLS and any(lo <= 1 and hi == 65535 for lo, hi in ranges):
        reason, region = "all ports", space.true
    else:
        admin = [p for p in ADMIN_PORTS if rule.protocol in PORTED_PROTOCOLS and any(lo <= p <= hi for lo, hi in ranges)]
        if not admin:
            return
        reason = f"port {', '.join(map(str, admin))}"
        region = space.disj(space.value("dport", p) for p in admin)
    point = space.pick(entry.decides & public_peer & region)
    if point is not None:
        finding("permissive", "warning", entry,
                f"{entry.name} accepts {reason} from {rule.peer} (public addresses)", point)


def quota_findings(config: Config) -> list[Finding]:
    """Usages at 80 % or more of a quota (docs/semantics.md §6): info, error past 100 %."""
    return [Finding("quota", "error" if use.used > use.limit else "info", "", "", use.enis,
                    f"{use.subject} {use.phrase}: {use.used} of {use.limit} ({100 * use.used // use.limit} %) "
                    f"(limits.{use.quota})")
            for use in quota_usage(config) if use.limit > 0 and use.used * 5 >= use.limit * 4]


def format_report(report: LintReport) -> str:
    """A readable table of the findings, most severe first, then the units left incomplete."""
    lines = []
    for severity in reversed(SEVERITIES):
        chosen = [f for f in report.findings if f.severity == severity]
        if not chosen:
            continue
        lines.append(f"{severity.upper()} ({len(chosen)})")
        for f in chosen:
            lines.append(f"  {f.kind:<22} {f.message}")
            if f.example:
                ex = f.example
                where = f" at {ex['eni']} {ex['direction']}" if "eni" in ex else ""
                lines.append(f"  {'':<22} example: {ex['protocol']} {ex['src_ip']}:{ex['src_port']} -> "
                             f"{ex['dst_ip']}:{ex['dst_port']}{where}")
    for i in report.incomplete:
        lines.append(f"ANALYSIS INCOMPLETE: {'+'.join(i.groups)} {i.direction} on "
                     f"{', '.join(i.enis) or 'no ENI'}: {i.reason}; nothing is claimed about it")
    counts = {s: sum(f.severity == s for f in report.findings) for s in SEVERITIES}
    lines.append(f"{counted(len(report.findings), 'finding', grouped=False)} ({counted(counts['error'], 'error', grouped=False)}, "
                 f"{counted(counts['warning'], 'warning', grouped=False)}, {counts['info']} info) over {counted(report.units, 'unit', grouped=False)}"
                 + (f"; {counted(len(report.incomplete), 'unit', grouped=False)} incomplete" if report.incomplete else ""))
    return "\n".join(lines)
