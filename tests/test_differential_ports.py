"""The compiled engine against the reference, flow by flow, on random configurations with port lists,
legacy priority-110 rules and load-balancer backends (flows from 100.64.0.0/10, ports at every
port-list entry's edges): path mode, endpoint mode, `flowsim query`, and lists long enough for the
list classifiers."""
from __future__ import annotations

import random
from collections import Counter

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_differential import assert_same, reference_columns

import flowsim
from flowsim.cli import main
from flowsim.testing.randomconfig import Shape, random_config, random_flows

FEATURES = dict(port_list_share=0.5, legacy_share=0.2, lb_backend_share=0.4)


def decided_by(config_map: dict, cols: dict, endpoint: bool = False) -> Counter:
    """How often the reference names each kind of deciding rule the features add (so a test can show it covered them)."""
    config = flowsim.load_config(config_map)
    port_list_rules = {r.name for r in config.evaluation_order() if r.port_list}
    legacy_rules = {r.name for r in config.evaluation_order() if r.legacy}
    kinds: Counter = Counter()
    for _, egress, ingress in reference_columns(config, cols, endpoint):
        for name in (egress, ingress):
            kinds["port list"] += name in port_list_rules
            kinds["legacy"] += name in legacy_rules
            kinds["health check"] += name == "default:health-check-allow"
    return kinds


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), vpcs=st.integers(1, 2), groups=st.integers(1, 6), rules=st.integers(0, 12),
       enis=st.integers(1, 10), per_eni=st.integers(1, 4))
def test_path_mode_matches_reference(seed, vpcs, groups, rules, enis, per_eni):
    config = random_config(seed, Shape(vpcs=vpcs, groups=groups, rules_per_group=rules, enis=enis, groups_per_eni=per_eni,
                                       **FEATURES))
    assert_same(config, random_flows(config, 120, seed))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), groups=st.integers(1, 6), rules=st.integers(0, 12), enis=st.integers(1, 10))
def test_endpoint_mode_matches_reference(seed, groups, rules, enis):
    config = random_config(seed, Shape(groups=groups, rules_per_group=rules, enis=enis, **FEATURES))
    cols = random_flows(config, 120, seed)
    rng, n = random.Random(seed), len(cols["src_ip"])
    cols.update(eni=rng.choices([*config["interfaces"], "eni-not-there"], k=n), direction=rng.choices(["in", "out"], k=n))
    assert_same(config, cols, endpoint=True)


@pytest.mark.parametrize("seed", range(3))
def test_seeded_large_configuration(seed):
    """30 groups of 40 rules, 300 ENIs, 5,000 flows each; the features decide many of them."""
    shape = Shape(groups=30, rules_per_group=40, enis=300, groups_per_eni=6, priorities=20, **FEATURES)
    config = random_config(2000 + seed, shape)
    cols = random_flows(config, 5000, seed)
    assert_same(config, cols)
    kinds = decided_by(config, cols)
    assert kinds["port list"] > 50 and kinds["legacy"] > 0 and kinds["health check"] > 50, kinds


def test_long_port_lists_take_the_classifier_path():
    """Port lists of up to 60 ranges make row lists far past LONG_LIST (128 rows): the compiled engine scans them
    behind a list classifier, and still agrees with the reference."""
    shape = Shape(groups=4, rules_per_group=30, enis=30, groups_per_eni=3, port_list_share=0.9, port_list_entries=60,
                  lb_backend_share=0.3)
    config = random_config(74, shape)  # a seed whose lists grow long (the assertion below checks it)
    compiled = flowsim.compile(flowsim.load_config(config))
    assert (compiled.tables.list_set >= 0).sum() > 10
    cols = random_flows(config, 6000, 74)
    assert_same(config, cols)
    assert decided_by(config, cols)["port list"] > 100


def test_query_command_matches_reference(tmp_path, capsys):
    """`flowsim query` on a CSV file: the same verdicts and rules as the reference, row by row."""
    import yaml

    mapping = random_config(5, Shape(groups=6, rules_per_group=12, enis=20, **FEATURES))
    config_path = tmp_path / "net.yaml"
    config_path.write_text(yaml.safe_dump(mapping))
    cols = random_flows(mapping, 3000, 5)
    flows_path, out_path = tmp_path / "flows.csv", tmp_path / "out.csv"
    pacsv.write_csv(pa.table(cols), flows_path)
    assert main(["query", str(config_path), str(flows_path), "-o", str(out_path), "-q"]) == 0, capsys.readouterr().err
    rows = pacsv.read_csv(out_path, convert_options=pacsv.ConvertOptions(strings_can_be_null=False)).to_pylist()
    got = [(r["verdict"], r["egress_rule"], r["ingress_rule"]) for r in rows]
    assert got == reference_columns(flowsim.load_config(mapping), cols)
    assert any(r[2] == "default:health-check-allow" for r in got)


def test_flows_probe_every_port_list_edge_and_the_health_check_network():
    """The generator aims flows at both sides of each port-list entry's edges and of 100.64.0.0/10's."""
    config = random_config(9, Shape(groups=6, rules_per_group=12, enis=20, **FEATURES))
    cols = random_flows(config, 20000, 9)
    edges = {p for pl in config["port_lists"].values() for entry in pl["entries"]
             for lo, hi in [map(int, entry.split("/"))] for p in (lo - 1, lo, hi, hi + 1) if 0 <= p <= 65535}
    assert edges and edges <= set(cols["dst_port"])
    assert {"100.63.255.255", "100.64.0.0", "100.127.255.255", "100.128.0.0"} <= set(cols["src_ip"])
