"""A verdict explained for people (`flowsim check`) and for machines (`--json`)."""
from __future__ import annotations

from dataclasses import dataclass

from ..model.network import (
    DEFAULT_HEALTH_CHECK_ALLOW,
    DEFAULT_INBOUND_DENY,
    DEFAULT_INTRA_GROUP_ALLOW,
    DEFAULT_OUTBOUND_ALLOW,
    DEFAULT_OUTBOUND_DENY,
    HEALTH_CHECK_NETWORK,
    PORTED_PROTOCOLS,
    Config,
    format_ports,
    protocol_name,
)
from .reference import Flow, SideDecision, Verdict

_DEFAULT_MEANING = {
    DEFAULT_INTRA_GROUP_ALLOW: "the sender shares an interconnected basic group with this interface",
    DEFAULT_INBOUND_DENY: "no custom inbound rule matched",
    DEFAULT_OUTBOUND_ALLOW: "no custom outbound rule matched; basic groups allow outbound by default",
    DEFAULT_OUTBOUND_DENY: "no custom outbound rule matched; advanced groups deny outbound by default",
    DEFAULT_HEALTH_CHECK_ALLOW: f"a load-balancer health check from {HEALTH_CHECK_NETWORK} to a load_balancer_backend "
                                "interface, allowed before every rule",
}


@dataclass(frozen=True)
class Explanation:
    """A flow, its verdict, and each side's deciding rule with its group and priority."""

    flow: Flow
    verdict: Verdict
    config: Config

    def _side(self, side: SideDecision | None) -> dict | None:
        if side is None:
            return None
        out = {"eni": side.eni, "direction": side.direction, "decision": "allow" if side.allowed else "deny",
               "rule": side.rule, "group": side.group, "priority": side.priority, "default": side.custom_rule is None}
        rule = side.custom_rule
        if rule is not None:
            out.update(action=rule.action, protocol=protocol_name(rule.protocol), ports=format_ports(rule.ports),
                       peer=str(rule.peer), description=rule.description)
            if rule.port_list:
                out.update(ports=_port_list_text(self.config, rule.port_list), port_list=rule.port_list)
            if rule.legacy:
                out["legacy"] = True
            if rule.local is not None:
                out["local"] = str(rule.local)
        else:
            out["meaning"] = _DEFAULT_MEANING.get(side.rule, "")
        return out

    def to_dict(self) -> dict:
        """JSON-ready form: the flow, the verdict and both sides."""
        f = self.flow
        return {
            "flow": {"src_ip": str(f.src), "dst_ip": str(f.dst), "protocol": protocol_name(f.protocol),
                     "src_port": f.src_port, "dst_port": f.dst_port, "vpc": f.vpc, "eni": f.eni, "direction": f.direction},
            "verdict": self.verdict.verdict,
            "egress_rule": self.verdict.egress_rule,
            "ingress_rule": self.verdict.ingress_rule,
            "egress": self._side(self.verdict.egress),
            "ingress": self._side(self.verdict.ingress),
        }

    def __str__(self) -> str:
        f = self.flow
        proto = protocol_name(f.protocol)
        ports = f.protocol in PORTED_PROTOCOLS
        src = f"{f.src}:{f.src_port}" if ports else str(f.src)
        dst = f"{f.dst}:{f.dst_port}" if ports else str(f.dst)
        lines = [f"flow     {src} -> {dst} {proto}" + (f" (endpoint {f.eni}, {f.direction})" if f.eni else ""),
                 f"verdict  {self.verdict.verdict.upper()}"]
        if self.verdict.verdict == "unmanaged":
            lines.append("         neither address belongs to a modelled interface" if f.eni is None
                         else f"         interface {f.eni} is not in the configuration")
        elif self.verdict.egress is None and self.verdict.ingress is None:
            lines.append("         both addresses belong to one interface: the traffic never leaves it")
        for label, side in (("egress ", self.verdict.egress), ("ingress", self.verdict.ingress)):
            if side is None:
                if self.verdict.verdict != "unmanaged" and (self.verdict.egress or self.verdict.ingress) and f.eni is None:
                    lines.append(f"{label}  not checked: {'source' if label.strip() == 'egress' else 'destination'} is outside the modelled interfaces")
                continue
            decision = "allow" if side.allowed else "deny"
            rule = side.custom_rule
            if rule is not None:
                toward = "from" if rule.direction == "ingress" else "to"
                what = (f"{rule.name} (group {rule.group}, priority {rule.priority}{' (legacy)' if rule.legacy else ''}, "
                        f"{rule.action} {proto_of(rule, self.config)} {toward} {rule.peer})")
                if rule.description:
                    what += f" — {rule.description.encode('unicode_escape').decode('ascii') if not rule.description.isprintable() else rule.description}"
            else:
                what = f"{side.rule} ({_DEFAULT_MEANING.get(side.rule, '')})"
            lines.append(f"{label}  at {side.eni}: {decision} by {what}")
        return "\n".join(lines)


def proto_of(rule, config: Config | None = None) -> str:
    """`tcp 443/443`, `tcp port list prl-admin (22/22, 3389/3389)`, `all`, `icmp` — a rule's protocol and ports."""
    name = protocol_name(rule.protocol)
    if rule.protocol not in PORTED_PROTOCOLS:
        return name
    if rule.port_list:
        entries = f" ({_port_list_text(config, rule.port_list)})" if config is not None else ""
        return f"{name} port list {rule.port_list}{entries}"
    return f"{name} {format_ports(rule.ports)}"


def _port_list_text(config: Config, port_list: str) -> str:
    """A port list's ranges, `22/22, 8000/8080`, as the cloud writes them."""
    return ", ".join(format_ports(p) for p in config.port_lists[port_list].entries)


def explain(config: Config, flow: Flow, verdict: Verdict) -> Explanation:
    """Bundle a flow and its verdict for printing."""
    return Explanation(flow, verdict, config)
