"""The compiled engine against the reference evaluator, flow by flow: verdict and deciding rules."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowsim
from flowsim.config.loader import parse_protocol
from flowsim.engine.compiler import compile_tables
from flowsim.engine.engine import Engine
from flowsim.engine.reference import Flow, ReferenceEvaluator
from flowsim.testing.randomconfig import Shape, random_config, random_flows


def reference_columns(config, cols: dict[str, list], endpoint: bool = False) -> list[tuple[str, str, str]]:
    ref = ReferenceEvaluator(config)
    out = []
    for i in range(len(cols["src_ip"])):
        proto = parse_protocol(cols["protocol"][i])
        ported = proto in (6, 17)
        eni = cols["eni"][i] if endpoint else None
        direction = {"in": "ingress", "out": "egress"}.get(cols["direction"][i]) if endpoint else None
        v = ref.evaluate(Flow(ipaddress.ip_address(cols["src_ip"][i]), ipaddress.ip_address(cols["dst_ip"][i]), proto,
                              cols["src_port"][i] if ported else 0, cols["dst_port"][i] if ported else 0,
                              vpc=cols["vpc"][i] if "vpc" in cols else None, eni=eni, direction=direction))
        out.append((v.verdict, v.egress_rule, v.ingress_rule))
    return out


def engine_columns(engine, cols) -> list[tuple[str, str, str]]:
    table = engine.evaluate(cols)
    return list(zip(table.column("verdict").to_pylist(), table.column("egress_rule").to_pylist(),
                    table.column("ingress_rule").to_pylist()))


def assert_same(config_map: dict, cols: dict, endpoint: bool = False) -> None:
    """The engine agrees with the reference on every flow: as compiled by default, and with a
    classifier in front of every row list (by default only long lists have one)."""
    config = flowsim.load_config(config_map)
    want = reference_columns(config, cols, endpoint)
    for label, engine in (("engine", flowsim.compile(config)),
                          ("engine with list classifiers", Engine(config, compile_tables(config, long_list=0)))):
        got = engine_columns(engine, cols)
        for i, (g, w) in enumerate(zip(got, want)):
            assert g == w, f"flow {i}: {[cols[k][i] for k in cols]}: {label} {g} != reference {w}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), vpcs=st.integers(1, 2), groups=st.integers(1, 6),
       rules=st.integers(0, 12), enis=st.integers(1, 10), per_eni=st.integers(1, 4))
def test_path_mode_matches_reference(seed, vpcs, groups, rules, enis, per_eni):
    config = random_config(seed, Shape(vpcs=vpcs, groups=groups, rules_per_group=rules, enis=enis, groups_per_eni=per_eni))
    assert_same(config, random_flows(config, 80, seed))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), groups=st.integers(1, 6), rules=st.integers(0, 12), enis=st.integers(1, 10))
def test_endpoint_mode_matches_reference(seed, groups, rules, enis):
    config = random_config(seed, Shape(groups=groups, rules_per_group=rules, enis=enis))
    cols = random_flows(config, 80, seed)
    import random

    rng = random.Random(seed)
    names = list(config["interfaces"]) + ["eni-not-there"]
    cols["eni"] = [rng.choice(names) for _ in cols["src_ip"]]
    cols["direction"] = [rng.choice(["in", "out"]) for _ in cols["src_ip"]]
    assert_same(config, cols, endpoint=True)


@pytest.mark.parametrize("seed", range(3))
def test_seeded_large_configuration(seed):
    shape = Shape(groups=30, rules_per_group=40, enis=300, groups_per_eni=6, priorities=20)
    config = random_config(1000 + seed, shape)
    assert_same(config, random_flows(config, 3000, seed))


def test_several_vpcs_with_vpc_column():
    config = random_config(7, Shape(vpcs=3, groups=6, rules_per_group=8, enis=30))
    cols = random_flows(config, 500, 7)
    parsed = flowsim.load_config(config)
    engine = flowsim.compile(parsed)
    ref = ReferenceEvaluator(parsed)
    for vpc in ("vpc-0", "vpc-1", "vpc-2", "vpc-unknown"):
        cols["vpc"] = [vpc] * len(cols["src_ip"])
        got = engine_columns(engine, cols)
        for i, g in enumerate(got):
            proto = parse_protocol(cols["protocol"][i])
            ported = proto in (6, 17)
            v = ref.evaluate(Flow(ipaddress.ip_address(cols["src_ip"][i]), ipaddress.ip_address(cols["dst_ip"][i]), proto,
                                  cols["src_port"][i] if ported else 0, cols["dst_port"][i] if ported else 0, vpc=vpc))
            assert g == (v.verdict, v.egress_rule, v.ingress_rule), (vpc, i)


def test_synthetic_flows_match_reference():
    from pathlib import Path

    from flowsim.tools.synth import synthesize

    config = flowsim.load_config(Path(__file__).resolve().parents[1] / "traces" / "example.yaml")
    table = synthesize(config, 3000, seed=3)
    cols = {k: table.column(k).to_pylist() for k in table.column_names}
    got = engine_columns(flowsim.compile(config), cols)
    assert got == reference_columns(config, cols)
    assert {v for v, _, _ in got} == {"allow", "deny", "unmanaged"}


def test_many_address_pages_fall_back_to_hashing():
    """Past 64 distinct IPv4 /16s the direct ownership table gives way to the hash table: same answers."""
    mapping = {
        "security_groups": {
            "sg-a": {"rules": [{"direction": "ingress", "protocol": "tcp", "ports": "22", "peer": "10.0.0.0/8"},
                               {"direction": "ingress", "action": "drop", "protocol": "all", "peer": "sg-b"}]},
            "sg-b": {"internal_policy": "drop",
                     "rules": [{"direction": "egress", "action": "drop", "protocol": "udp", "peer": "0.0.0.0/0"}]},
        },
        "interfaces": {f"eni-{k}": {"security_groups": ["sg-a" if k % 2 else "sg-b"], "ips": [f"{10 + k}.{k}.0.1"]}
                       for k in range(80)},
    }
    config = flowsim.load_config(mapping)
    assert (flowsim.compile(config).tables.owners[3] == -2).sum() == 80
    assert_same(mapping, random_flows(mapping, 600, 21))
