"""Small builders shared by the foundation tests.

* `net(...)`, `sg(...)`, `rule(...)`, `eni(...)` build configuration mappings
  in the shape of docs/formats.md (configuration) with little typing;
* `decide(config, src, dst, ...)` evaluates one flow with BOTH the reference
  evaluator and the compiled engine (its `explain` and its batch `evaluate`),
  asserts that all three agree on the verdict and on both deciding rules, and
  returns that agreed `(verdict, egress_rule, ingress_rule)`;
* `line_of(text, needle)` finds the 1-based line of a YAML snippet, so
  validation tests compute the line they expect instead of hard-coding it.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import numpy as np

import flowsim
from flowsim.config.loader import parse_protocol
from flowsim.engine.reference import Flow, ReferenceEvaluator
from flowsim.model.network import Config


# ---------------------------------------------------------------- config builders
def rule(direction: str, protocol: Any = "all", peer: str = "0.0.0.0/0", ports: Any = None, *,
         action: str = "accept", priority: int = 1, id: str | None = None, source_ports: Any = None,
         local: str | None = None, port_list: str | None = None, legacy: bool | None = None) -> dict:
    """One rule mapping; optional fields only when given."""
    out: dict[str, Any] = {"direction": direction, "action": action, "priority": priority, "protocol": protocol, "peer": peer}
    for key, value in (("id", id), ("ports", ports), ("source_ports", source_ports), ("local", local),
                       ("port_list", port_list), ("legacy", legacy)):
        if value is not None:
            out[key] = value
    return out


def ingress(protocol: Any = "all", peer: str = "0.0.0.0/0", ports: Any = None, **kw: Any) -> dict:
    return rule("ingress", protocol, peer, ports, **kw)


def egress(protocol: Any = "all", peer: str = "0.0.0.0/0", ports: Any = None, **kw: Any) -> dict:
    return rule("egress", protocol, peer, ports, **kw)


def sg(*rules: dict, type: str = "basic", policy: str | None = None, vpc: str | None = None) -> dict:
    """One security group mapping."""
    out: dict[str, Any] = {"type": type, "rules": list(rules)}
    if policy is not None:
        out["internal_policy"] = policy
    if vpc is not None:
        out["vpc"] = vpc
    return out


def eni(*groups: str, ips: list[str] | tuple = (), ipv6: list[str] | tuple = (), ipv4_prefixes: list[str] | tuple = (),
        ipv6_prefixes: list[str] | tuple = (), vpc: str | None = None, load_balancer_backend: bool = False) -> dict:
    """One interface mapping."""
    out: dict[str, Any] = {"security_groups": list(groups), "ips": list(ips)}
    for key, value in (("ipv6", ipv6), ("ipv4_prefixes", ipv4_prefixes), ("ipv6_prefixes", ipv6_prefixes)):
        if value:
            out[key] = list(value)
    if vpc is not None:
        out["vpc"] = vpc
    if load_balancer_backend:
        out["load_balancer_backend"] = True
    return out


def net(groups: Mapping[str, dict], interfaces: Mapping[str, dict], prefix_lists: Mapping[str, Any] | None = None,
        limits: Mapping[str, int] | None = None) -> dict:
    """A whole configuration mapping (groups keep the given order: it is the file order)."""
    out: dict[str, Any] = {"security_groups": dict(groups), "interfaces": dict(interfaces)}
    if prefix_lists:
        out["prefix_lists"] = dict(prefix_lists)
    if limits:
        out["limits"] = dict(limits)
    return out


# ---------------------------------------------------------------- evaluating with both evaluators
class Pair:
    """A loaded configuration with its reference evaluator and compiled engine."""

    def __init__(self, config_or_mapping: Any):
        self.config = config_or_mapping if isinstance(config_or_mapping, Config) else flowsim.load_config(config_or_mapping)
        self.reference = ReferenceEvaluator(self.config)
        self.engine = flowsim.compile(self.config)

    def flow(self, src: str, dst: str, protocol: Any = "tcp", src_port: int = 40000, dst_port: int = 0,
             vpc: str | None = None, eni: str | None = None, direction: str | None = None) -> Flow:
        number = parse_protocol(protocol)
        ported = number in (6, 17)
        return Flow(ipaddress.ip_address(src), ipaddress.ip_address(dst), number,
                    src_port if ported else 0, dst_port if ported else 0, vpc=vpc, eni=eni, direction=direction)

    def decide(self, src: str, dst: str, protocol: Any = "tcp", src_port: int = 40000, dst_port: int = 0,
               vpc: str | None = None, eni: str | None = None, direction: str | None = None,
               batch: bool = True) -> tuple[str, str, str]:
        """(verdict, egress_rule, ingress_rule), asserted equal across reference, explain and evaluate."""
        flow = self.flow(src, dst, protocol, src_port, dst_port, vpc, eni, direction)
        ref = self.reference.evaluate(flow)
        expected = (ref.verdict, ref.egress_rule, ref.ingress_rule)
        explained = self.engine.explain(flow).verdict
        got = (explained.verdict, explained.egress_rule, explained.ingress_rule)
        assert got == expected, f"engine.explain {got} != reference {expected} for {flow}"
        for side_ref, side_eng in ((ref.egress, explained.egress), (ref.ingress, explained.ingress)):
            if side_ref is not None:
                assert side_eng is not None
                assert (side_eng.eni, side_eng.allowed, side_eng.priority) == (side_ref.eni, side_ref.allowed, side_ref.priority)
        if batch:
            table = evaluate_rows(self.engine, [flow])
            row = (table["verdict"][0], table["egress_rule"][0], table["ingress_rule"][0])
            assert row == expected, f"engine.evaluate {row} != reference {expected} for {flow}"
        return expected


def flow_columns(flows: list[Flow]) -> dict[str, np.ndarray]:
    """The flows as a mapping of numpy columns (docs/formats.md (flows))."""
    cols: dict[str, list] = {"src_ip": [], "dst_ip": [], "protocol": [], "src_port": [], "dst_port": []}
    endpoint = any(f.eni is not None for f in flows)
    vpc = any(f.vpc is not None for f in flows)
    if endpoint:
        cols["eni"], cols["direction"] = [], []
    if vpc:
        cols["vpc"] = []
    for f in flows:
        cols["src_ip"].append(str(f.src))
        cols["dst_ip"].append(str(f.dst))
        cols["protocol"].append(str(f.protocol))
        cols["src_port"].append(f.src_port)
        cols["dst_port"].append(f.dst_port)
        if endpoint:
            cols["eni"].append(f.eni or "")
            cols["direction"].append({"ingress": "in", "egress": "out", None: ""}[f.direction])
        if vpc:
            cols["vpc"].append(f.vpc or "")
    return {k: np.array(v, dtype=object if k not in ("src_port", "dst_port") else np.int64) for k, v in cols.items()}


def evaluate_rows(engine: Any, flows: list[Flow]) -> dict[str, list[str]]:
    """engine.evaluate over a batch, as python lists per verdict column."""
    table = engine.evaluate(flow_columns(flows))
    return {name: table.column(name).to_pylist() for name in ("verdict", "egress_rule", "ingress_rule")}


def decide(config: Any, src: str, dst: str, protocol: Any = "tcp", **kw: Any) -> tuple[str, str, str]:
    """One flow through both evaluators; see `Pair.decide`."""
    return Pair(config).decide(src, dst, protocol, **kw)


# ---------------------------------------------------------------- files and lines
def line_of(text: str, needle: str, start: int = 1) -> int:
    """1-based number of the first line at or after `start` that contains `needle`."""
    for number, line in enumerate(text.splitlines(), 1):
        if number >= start and needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")
