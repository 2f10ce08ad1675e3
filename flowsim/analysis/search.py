"""Search (docs/analysis.md (search)): example flows of a query space that get a verdict in path mode, the exact size of
that region, and a proof of absence when it is empty."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..config.loader import paused_gc
from ..engine.reference import ALLOW, DENY
from ..errors import InputError
from ..model.network import PORTED_PROTOCOLS, Config, flow_protocol_number, protocol_name
from ..model.words import counted
from .lint import Incomplete
from .path import PathModel
from .space import Point

EXTERNAL = "external"


@dataclass(frozen=True)
class Query:
    """A query space: each field None for "any"."""

    verdict: str
    src: str | None = None  # CIDR, ENI id, group id or `external` (comma-separated: their union)
    dst: str | None = None
    protocol: str | None = None
    src_ports: tuple[int, int] | None = None
    dst_ports: tuple[int, int] | None = None
    rule: str | None = None  # GROUP/RULE or a default rule's name: flows it decides at either side


@dataclass
class SearchResult:
    exists: bool
    size: int
    examples: list[dict] = field(default_factory=list)
    incomplete: list[Incomplete] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"exists": self.exists, "size": self.size, "examples": self.examples,
                "incomplete": [i.to_dict() for i in self.incomplete]}


def parse_port_range(text: str, flag: str) -> tuple[int, int]:
    """`N`, `LO-HI` or `LO/HI` as a port range."""
    parts = text.replace("/", "-").split("-")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (-1, -1)
    except ValueError:
        lo, hi = -1, -1
    if not 0 <= lo <= hi <= 65535:
        raise InputError(f"{flag}: {text!r} is not a port or a port range LO-HI within 0..65535")
    return lo, hi


@paused_gc()  # millions of BDD handles beside a large configuration: see paused_gc
def search(config: Config, query: Query, limit: int = 10, model: PathModel | None = None) -> SearchResult:
    """Flows of the query space with the verdict, and the region's exact size."""
    if query.verdict not in (ALLOW, DENY):
        raise InputError(f"--verdict: {query.verdict!r} is neither allow nor deny")
    model = model or PathModel(config)
    s = model.space
    result = SearchResult(False, 0)
    for vpc in model.vpcs:
        region = model.verdict_region(vpc, query.verdict) & _query_region(model, vpc, query)
        if query.rule:
            region &= model.rule_region(vpc, query.rule)
        result.incomplete += [Incomplete(u.groups, u.direction, u.enis, u.incomplete)
                              for u in model.vpcs[vpc].incomplete]
        result.size += s.count(region)
        while len(result.examples) < limit:
            point = s.pick(region)
            if point is None:
                break
            result.examples.append(_flow(model, vpc, point, query.verdict, len(model.vpcs) > 1))
            region &= ~model.cell(vpc, point)
    result.exists = result.size > 0
    return result


def _flow(model: PathModel, vpc: str, p: Point, verdict: str, with_vpc: bool) -> dict:
    egress, ingress = model.deciding(vpc, p)
    flow = {"src_ip": str(p.src), "dst_ip": str(p.dst), "protocol": protocol_name(p.protocol),
            "src_port": p.src_port, "dst_port": p.dst_port}
    if with_vpc:
        flow["vpc"] = vpc
    flow.update(verdict=verdict, egress_rule=egress.name if egress else "", ingress_rule=ingress.name if ingress else "")
    return flow


def _query_region(model: PathModel, vpc: str, q: Query) -> object:
    s = model.space
    region = s.universe
    for fieldname, spec in (("src", q.src), ("dst", q.dst)):
        if spec:
            region &= s.disj(_endpoint(model, vpc, fieldname, part.strip()) for part in spec.split(","))
    if q.protocol:
        number = flow_protocol_number(q.protocol)
        if number is None:
            raise InputError(f"-p: {q.protocol!r} is not a protocol name or number 0..255")
        region &= s.protocol(number)
    for fieldname, ports in (("sport", q.src_ports), ("dport", q.dst_ports)):
        if ports is not None:
            region &= s.port_range(fieldname, *ports)
    if (q.src_ports or q.dst_ports) and q.protocol and flow_protocol_number(q.protocol) not in PORTED_PROTOCOLS:
        region &= s.value("sport", 0) & s.value("dport", 0)
    return region


def _endpoint(model: PathModel, vpc: str, fieldname: str, spec: str) -> object:
    s, config = model.space, model.config
    if spec == EXTERNAL:
        v = model.vpcs[vpc]
        return s.universe & ~(v.owned_src if fieldname == "src" else v.owned_dst)
    if spec in config.interfaces:
        eni = config.interfaces[spec]
        return model.regions.owned(eni, fieldname) if eni.vpc == vpc else s.false
    if spec in config.groups:
        return model.regions.members(spec, fieldname)
    try:
        return s.network(fieldname, ipaddress.ip_network(spec, strict=False))
    except ValueError:
        raise InputError(f"--{fieldname}: {spec!r} is not a CIDR, an ENI id, a group id or 'external'") from None


def format_result(result: SearchResult, query: Query) -> str:
    """The examples as a table, the region's size, or the proof that no such flow exists."""
    if result.incomplete:
        units = "; ".join(f"{'+'.join(i.groups)} {i.direction} ({i.reason})" for i in result.incomplete)
        head = f"ANALYSIS INCOMPLETE for {units}: the answer below may miss flows\n"
    else:
        head = ""
    if not result.exists:
        return head + f"no such flow exists: no flow of the query space gets {query.verdict} (exact)"
    lines = [f"{counted(result.size, 'flow')} of the query space "
             f"{'gets' if result.size == 1 else 'get'} {query.verdict} (exact count); examples:"]
    for ex in result.examples:
        rules = " / ".join(r for r in (ex["egress_rule"], ex["ingress_rule"]) if r) or "(same ENI: not filtered)"
        lines.append(f"  {ex['protocol']:<6} {ex['src_ip']}:{ex['src_port']} -> {ex['dst_ip']}:{ex['dst_port']}"
                     f"{'  [' + ex['vpc'] + ']' if 'vpc' in ex else ''}  {ex['verdict']} by {rules}")
    return head + "\n".join(lines)
