"""`search` (docs/analysis.md (search)) against brute force: path-mode verdicts of every grid flow through the reference."""
from __future__ import annotations

import ipaddress
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("dd.cudd")

from analysis_grid import path_grid  # noqa: E402

import flowsim  # noqa: E402
from flowsim.analysis.search import Query, search  # noqa: E402
from flowsim.engine.reference import Flow, ReferenceEvaluator  # noqa: E402
from flowsim.model.network import PORTED_PROTOCOLS, flow_protocol_number  # noqa: E402
from flowsim.testing.randomconfig import Shape, random_config  # noqa: E402

TINY = Shape(groups=2, rules_per_group=3, enis=3, groups_per_eni=2, priorities=2, port_list_share=0.3,
             legacy_share=0.1, lb_backend_share=0.3, quintuple_share=0.2, group_peer_share=0.3, ipv6_share=0.2)


def endpoint_spec(rng: random.Random, config) -> str | None:
    choices = [None, "external", *config.interfaces, *config.groups]
    nets = [n for e in config.interfaces.values() for n in e.owned_networks()]
    if nets:
        net = rng.choice(nets)
        choices.append(str(net.supernet(rng.choice([0, 0, 4, 16])) if net.prefixlen >= 16 else net))
    return rng.choice(choices)


def in_endpoint(ref: ReferenceEvaluator, config, spec: str | None, addr, vpc: str) -> bool:
    if spec is None:
        return True
    owner = ref.owner(addr, vpc)
    if spec == "external":
        return owner is None
    if spec in config.interfaces:
        return owner is not None and owner.id == spec
    if spec in config.groups:
        return owner is not None and spec in owner.security_groups
    net = ipaddress.ip_network(spec)
    return addr.version == net.version and addr in net


def check_search(config, rng: random.Random) -> None:
    ref = ReferenceEvaluator(config)
    (vpc,) = config.vpcs
    names = [r.name for g in config.groups.values() for r in g.rules] + ["default:intra-group-allow"]
    proto = rng.choice([None, "tcp", "udp", "icmp", "gre"])
    ports = rng.choice([None, (22, 22), (80, 1000)]) if proto in (None, "tcp", "udp") else None
    query = Query(rng.choice(["allow", "deny"]), endpoint_spec(rng, config), endpoint_spec(rng, config), proto,
                  None, ports, rng.choice([None, None, *names]))
    result = search(config, query, limit=5)
    extra = [ipaddress.ip_network(s) for s in (query.src, query.dst) if s and "/" in s]
    size = 0
    for p in path_grid(config, extra, [ports] if ports else []):
        if proto is not None and p.protocol != flow_protocol_number(proto):
            continue
        if ports is not None and not ports[0] <= p.dst_port <= ports[1]:
            continue
        if not (in_endpoint(ref, config, query.src, p.peer, vpc) and in_endpoint(ref, config, query.dst, p.local, vpc)):
            continue
        v = ref.evaluate(Flow(p.peer, p.local, p.protocol, p.src_port, p.dst_port))
        if v.verdict == query.verdict and (query.rule is None or query.rule in (v.egress_rule, v.ingress_rule)):
            size += p.weight
    assert result.size == size, query
    assert result.exists == (size > 0)
    assert bool(result.examples) == (size > 0)
    for ex in result.examples:
        flow = Flow(ipaddress.ip_address(ex["src_ip"]), ipaddress.ip_address(ex["dst_ip"]),
                    flow_protocol_number(ex["protocol"]), ex["src_port"], ex["dst_port"])
        v = ref.evaluate(flow)
        assert (v.verdict, v.egress_rule, v.ingress_rule) == (ex["verdict"], ex["egress_rule"], ex["ingress_rule"])
        assert in_endpoint(ref, config, query.src, flow.src, vpc) and in_endpoint(ref, config, query.dst, flow.dst, vpc)
        assert proto is None or flow.protocol == flow_protocol_number(proto)
        assert ports is None or ports[0] <= flow.dst_port <= ports[1]
        assert query.rule is None or query.rule in (v.egress_rule, v.ingress_rule)
        assert flow.protocol in PORTED_PROTOCOLS or flow.src_port == flow.dst_port == 0


@settings(max_examples=int(os.environ.get("ANALYSIS_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), query_seed=st.integers(0, 2**16))
def test_search_exact_on_random_configs(seed, query_seed):
    check_search(flowsim.load_config(random_config(seed, TINY)), random.Random(query_seed))
