"""Property-based invariants of the verdict semantics (hypothesis), on both evaluators.

Configurations are small and valid by construction: a few groups (basic with
either policy, or advanced), a few rules drawn from overlapping pools, a few
ENIs with primary, secondary, IPv6 and prefix addresses, sometimes two VPCs.
"""
from __future__ import annotations

import copy
import ipaddress

from helpers import evaluate_rows
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import flowsim
from flowsim.engine.reference import Flow, ReferenceEvaluator

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

V4_PEERS = ["0.0.0.0/0", "10.0.0.0/8", "10.0.1.0/24", "10.0.1.11", "10.0.2.0/23", "203.0.113.0/24", "198.51.100.7"]
V6_PEERS = ["::/0", "2001:db8::/32", "2001:db8:0:1::/64", "2001:db8:2::/48"]
LOCALS = ["10.0.1.0/25", "10.0.0.0/8", "10.0.2.0/24", "2001:db8:0:1::/64"]
PORT_POINTS = [1, 22, 53, 80, 443, 1024, 8080, 65535]
RULE_PROTOCOLS = ["tcp", "udp", "icmp", "icmpv6", "gre", "all", 132]
FLOW_PROTOCOLS = [6, 17, 1, 58, 47, 132, 0]
OUTSIDE_V4 = ["203.0.113.9", "198.51.100.7", "10.0.1.250", "10.9.9.9"]
OUTSIDE_V6 = ["2001:db8:ffff::1", "2001:db8:0:1::ff", "2001:db8:2:1::1"]
PREFIX_LIST = {"pl-mixed": ["203.0.113.0/25", "10.0.1.12", "2001:db8:0:1::/96"]}


# ---------------------------------------------------------------- strategies
@st.composite
def port_range(draw) -> str:
    lo, hi = sorted(draw(st.lists(st.sampled_from(PORT_POINTS), min_size=2, max_size=2)))
    return f"{lo}-{hi}"


@st.composite
def rules(draw, group_id: str, group_ids_same_vpc_basic: list[str], advanced: bool, rule_id: str, direction: str | None = None,
          priority=None) -> dict:
    out = {"id": rule_id, "direction": direction or draw(st.sampled_from(["ingress", "egress"])),
           "action": draw(st.sampled_from(["accept", "drop"])),
           "priority": draw(priority if priority is not None else st.integers(1, 4)),
           "protocol": draw(st.sampled_from(RULE_PROTOCOLS))}
    if out["protocol"] in ("tcp", "udp"):
        if draw(st.booleans()):
            out["ports"] = draw(port_range())
        if draw(st.integers(0, 4)) == 0:
            out["source_ports"] = draw(port_range())
    targets = [] if advanced else [g for g in group_ids_same_vpc_basic if g != group_id]
    kinds = ["v4", "v4", "v6", "pl"] + (["group", "group"] if targets else [])
    kind = draw(st.sampled_from(kinds))
    out["peer"] = {"v4": lambda: draw(st.sampled_from(V4_PEERS)), "v6": lambda: draw(st.sampled_from(V6_PEERS)),
                   "pl": lambda: "pl-mixed", "group": lambda: draw(st.sampled_from(targets))}[kind]()
    if draw(st.integers(0, 5)) == 0:
        out["local"] = draw(st.sampled_from(LOCALS))
    return out


@st.composite
def configs(draw, catch_all: bool = False) -> dict:
    """A valid configuration; with `catch_all`, every group also gets all-protocol rules for both
    directions and families at a random priority, so most flows are decided by a custom rule."""
    vpcs = ["vpc-a", "vpc-b"][: draw(st.integers(1, 2))]
    groups: dict[str, dict] = {}
    for g in range(draw(st.integers(1, 4))):
        advanced = draw(st.integers(0, 3)) == 0
        groups[f"sg-{g}"] = {"type": "advanced" if advanced else "basic", "vpc": draw(st.sampled_from(vpcs)),
                             "internal_policy": "drop" if advanced else draw(st.sampled_from(["accept", "drop"])), "rules": []}
    for gid, group in groups.items():
        basic_same_vpc = [g for g, x in groups.items() if x["type"] == "basic" and x["vpc"] == group["vpc"]]
        n = draw(st.integers(0, 5))
        group["rules"] = [draw(rules(gid, basic_same_vpc, group["type"] == "advanced", f"r{i}")) for i in range(n)]
        if catch_all:
            for direction in ("ingress", "egress"):
                for peer in ("0.0.0.0/0", "::/0"):
                    group["rules"].insert(draw(st.integers(0, len(group["rules"]))), {
                        "id": f"catch-{direction}-v{6 if ':' in peer else 4}", "direction": direction, "protocol": "all", "peer": peer,
                        "action": draw(st.sampled_from(["accept", "drop"])), "priority": draw(st.integers(1, 60))})
    interfaces: dict[str, dict] = {}
    for i in range(draw(st.integers(1, 4))):
        # an ENI's groups share its VPC and one type (docs/semantics.md §6)
        vpc, kind = draw(st.sampled_from(sorted({(x["vpc"], x["type"]) for x in groups.values()})))
        candidates = [g for g, x in groups.items() if x["vpc"] == vpc and x["type"] == kind]
        chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique=True))
        eni = {"vpc": vpc, "security_groups": chosen, "ips": [f"10.0.1.{10 + i}"]}
        if draw(st.booleans()):
            eni["ips"].append(f"10.0.2.{20 + i}")
        if draw(st.booleans()):
            eni["ipv6"] = [f"2001:db8:0:1::{10 + i:x}"]
        if draw(st.booleans()):
            eni["ipv4_prefixes"] = [f"10.0.{3 + i}.0/28"]
        if draw(st.booleans()):
            eni["ipv6_prefixes"] = [f"2001:db8:2:{i}::/80"]
        interfaces[f"eni-{i}"] = eni
    return {"security_groups": groups, "prefix_lists": PREFIX_LIST, "interfaces": interfaces}


def eni_addresses(eni: dict, version: int) -> list[str]:
    """Addresses an ENI owns, including some inside its prefixes."""
    if version == 4:
        out = list(eni["ips"])
        for p in eni.get("ipv4_prefixes", []):
            net = ipaddress.ip_network(p)
            out += [str(net.network_address), str(net.network_address + 7), str(net.broadcast_address)]
        return out
    out = list(eni.get("ipv6", []))
    for p in eni.get("ipv6_prefixes", []):
        net = ipaddress.ip_network(p)
        out += [str(net.network_address + 1), str(net.broadcast_address)]
    return out


@st.composite
def flows(draw, config: dict, endpoint: bool = True) -> Flow:
    version = draw(st.sampled_from([4, 4, 6]))
    owned = [a for e in config["interfaces"].values() for a in eni_addresses(e, version)]
    pool = owned + (OUTSIDE_V4 if version == 4 else OUTSIDE_V6)
    src, dst = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
    proto = draw(st.sampled_from(FLOW_PROTOCOLS))
    ported = proto in (6, 17)
    sport = draw(st.sampled_from([22, 53, 1024, 40000])) if ported else 0
    dport = draw(st.sampled_from(PORT_POINTS + [0, 8000])) if ported else 0
    eni = direction = None
    if endpoint and draw(st.integers(0, 3)) == 0:
        eni = draw(st.sampled_from(list(config["interfaces"]) + ["eni-absent"]))
        direction = draw(st.sampled_from(["ingress", "egress"]))
    # addresses are unique across VPCs here, so a flow without a VPC is never ambiguous;
    # naming a VPC (possibly the wrong one, or an unknown one) restricts ownership to it
    vpc = draw(st.sampled_from([None, None, "vpc-a", "vpc-b", "vpc-x"]))
    return Flow(ipaddress.ip_address(src), ipaddress.ip_address(dst), proto, sport, dport, vpc=vpc, eni=eni, direction=direction)


def both(config_map: dict, flow_list: list[Flow]) -> list:
    """Reference verdicts, after asserting that engine.explain and engine.evaluate agree with them."""
    config = flowsim.load_config(config_map)
    reference = ReferenceEvaluator(config)
    engine = flowsim.compile(config)
    refs = [reference.evaluate(f) for f in flow_list]
    for f, ref in zip(flow_list, refs):
        got = engine.explain(f).verdict
        assert (got.verdict, got.egress_rule, got.ingress_rule) == (ref.verdict, ref.egress_rule, ref.ingress_rule), \
            f"explain disagrees for {f}"
    if flow_list:
        rows = evaluate_rows(engine, flow_list)
        batch = list(zip(rows["verdict"], rows["egress_rule"], rows["ingress_rule"]))
        for f, ref, row in zip(flow_list, refs, batch):
            assert row == (ref.verdict, ref.egress_rule, ref.ingress_rule), f"evaluate disagrees for {f}"
    return refs


# ---------------------------------------------------------------- 1. reference and engine agree
@settings(max_examples=70, **SETTINGS)
@given(data=st.data())
def test_reference_and_engine_agree_on_random_configs(data):
    config = data.draw(configs())
    flow_list = data.draw(st.lists(flows(config), min_size=1, max_size=12))
    both(config, flow_list)


# ---------------------------------------------------------------- 2. lower-priority rules never change a decided verdict
def side_of(verdict, direction: str):
    return verdict.ingress if direction == "ingress" else verdict.egress


def summary(side) -> tuple | None:
    """What a side decided, without the rule object (whose position may shift when a rule is inserted)."""
    return None if side is None else (side.eni, side.direction, side.allowed, side.rule, side.priority, side.group)


@settings(max_examples=35, **SETTINGS)
@given(data=st.data())
def test_adding_a_lower_priority_rule_never_changes_a_custom_decision(data):
    config = data.draw(configs(catch_all=True))
    flow_list = data.draw(st.lists(flows(config), min_size=4, max_size=12))
    before = both(config, flow_list)
    decided = [(f, v, d) for f, v in zip(flow_list, before) for d in ("ingress", "egress")
               if side_of(v, d) is not None and side_of(v, d).custom_rule is not None and side_of(v, d).priority < 100]
    assume(decided)
    _, verdict, direction = data.draw(st.sampled_from(decided))
    side = side_of(verdict, direction)
    eni = config["interfaces"][side.eni]
    gid = data.draw(st.sampled_from(eni["security_groups"]))
    group = config["security_groups"][gid]
    basic_same_vpc = [g for g, x in config["security_groups"].items() if x["type"] == "basic" and x["vpc"] == group["vpc"]]
    new_rule = data.draw(rules(gid, basic_same_vpc, group["type"] == "advanced", "added", direction=direction,
                               priority=st.integers(side.priority + 1, 100)))
    changed = copy.deepcopy(config)
    position = data.draw(st.integers(0, len(group["rules"])))
    changed["security_groups"][gid]["rules"].insert(position, new_rule)
    after = both(changed, flow_list)
    members = {e for e, x in config["interfaces"].items() if gid in x["security_groups"]}
    for flow, old, new in zip(flow_list, before, after):
        other = "egress" if direction == "ingress" else "ingress"
        assert summary(side_of(new, other)) == summary(side_of(old, other)), flow  # the other direction is untouched
        o = side_of(old, direction)
        unaffected = o is None or o.eni not in members or o.rule == "default:intra-group-allow"
        if unaffected or (o.custom_rule is not None and o.priority < new_rule["priority"]):
            assert (new.verdict, new.egress_rule, new.ingress_rule) == (old.verdict, old.egress_rule, old.ingress_rule), flow
    # the side that was drawn above is one of those
    assert side.priority < new_rule["priority"]


# ---------------------------------------------------------------- 3. a priority-1 drop of everything
def shares_open_group(config: dict, a: str, b: str) -> bool:
    groups = config["security_groups"]
    common = set(config["interfaces"][a]["security_groups"]) & set(config["interfaces"][b]["security_groups"])
    return any(groups[g]["type"] == "basic" and groups[g]["internal_policy"] == "accept" for g in common)


def owner_of(config: dict, addr: str, vpc: str) -> str | None:
    for eid, eni in config["interfaces"].items():
        if eni["vpc"] == vpc and any(ipaddress.ip_address(addr) in ipaddress.ip_network(n)
                                     for n in eni["ips"] + eni.get("ipv4_prefixes", [])):
            return eid
    return None


@settings(max_examples=40, **SETTINGS)
@given(data=st.data())
def test_drop_all_at_priority_1_denies_every_ipv4_flow_except_intra_group(data):
    config = data.draw(configs())
    carried = sorted({g for e in config["interfaces"].values() for g in e["security_groups"]})
    gid = data.draw(st.sampled_from(carried))
    group = config["security_groups"][gid]
    position = data.draw(st.integers(0, len(group["rules"])))
    group["rules"].insert(position, {"id": "deny-all", "direction": "ingress", "action": "drop", "priority": 1,
                                     "protocol": "all", "peer": "0.0.0.0/0"})
    targets = [e for e, x in config["interfaces"].items() if gid in x["security_groups"]]
    v4_owned = [a for x in config["interfaces"].values() for a in eni_addresses(x, 4)]
    cases = []
    for _ in range(data.draw(st.integers(1, 8))):
        dst_eni = data.draw(st.sampled_from(targets))
        vpc = config["interfaces"][dst_eni]["vpc"]
        dst = data.draw(st.sampled_from(eni_addresses(config["interfaces"][dst_eni], 4)))
        src = data.draw(st.sampled_from(v4_owned + OUTSIDE_V4))
        proto = data.draw(st.sampled_from(FLOW_PROTOCOLS[:1] + [17, 1, 47, 132, 0]))
        ported = proto in (6, 17)
        endpoint = data.draw(st.booleans())
        flow = Flow(ipaddress.ip_address(src), ipaddress.ip_address(dst), proto, 1234 if ported else 0, 443 if ported else 0,
                    vpc=vpc, eni=dst_eni if endpoint else None, direction="ingress" if endpoint else None)
        cases.append((flow, dst_eni, owner_of(config, src, vpc)))
    verdicts = both(config, [c[0] for c in cases])
    for (flow, dst_eni, src_eni), v in zip(cases, verdicts):
        if flow.eni is None and src_eni == dst_eni:
            assert (v.verdict, v.egress_rule, v.ingress_rule) == ("allow", "", ""), flow  # never leaves the ENI
            continue
        dst_basic = all(config["security_groups"][g]["type"] == "basic" for g in config["interfaces"][dst_eni]["security_groups"])
        if src_eni is not None and dst_basic and shares_open_group(config, src_eni, dst_eni):
            assert v.ingress.rule == "default:intra-group-allow" and v.ingress.allowed, flow
        else:
            assert v.verdict == "deny", flow
            assert not v.ingress.allowed and v.ingress.custom_rule is not None, flow
            assert v.ingress.priority == 1 and v.ingress.custom_rule.action == "drop", flow
