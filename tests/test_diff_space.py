"""The header-space diff (docs/analysis.md (diff)) against brute force: every flow of a coordinate-compressed grid cut at
both configurations' boundaries is decided under OLD and NEW by the reference evaluator; it changes exactly when
a reported box holds it, and that change names its old and new rules."""
from __future__ import annotations

import copy
import dataclasses
import ipaddress
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

pytest.importorskip("dd.cudd")

from analysis_grid import path_grid  # noqa: E402

import flowsim  # noqa: E402
from flowsim.analysis.diff import EXTERNAL, diff_configs  # noqa: E402
from flowsim.cli import main  # noqa: E402
from flowsim.engine.reference import Flow, ReferenceEvaluator  # noqa: E402
from flowsim.errors import ConfigError  # noqa: E402
from flowsim.model.network import flow_protocol_number  # noqa: E402
from flowsim.testing.randomconfig import Shape, random_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE, EDITED = ROOT / "traces" / "example.yaml", ROOT / "traces" / "example-edited.yaml"
TINY = Shape(groups=2, rules_per_group=3, enis=3, groups_per_eni=2, priorities=3, port_list_share=0.3,
             lb_backend_share=0.3, quintuple_share=0.2, group_peer_share=0.3, ipv6_share=0.2)
MUTATIONS = ("add", "remove", "widen", "narrow", "priority", "flip", "attach", "move")


def mutate(raw: dict, kind: str, rng: random.Random) -> dict:
    """A copy of the configuration mapping with one edit of the given kind."""
    out = copy.deepcopy(raw)
    groups = out["security_groups"]
    rules = [(g, k) for g, group in groups.items() for k in range(len(group["rules"]))]
    pick = rng.choice(rules) if rules else None
    rule = groups[pick[0]]["rules"][pick[1]] if pick else None
    if kind == "add" and rule is not None:
        new = dict(rule, id="added", action=rng.choice(["accept", "drop"]), priority=rng.randint(1, 3))
        groups[rng.choice(list(groups))]["rules"].insert(rng.randrange(len(rules) + 1) % 4, new)
    elif kind == "remove" and rule is not None:
        del groups[pick[0]]["rules"][pick[1]]
    elif kind in ("widen", "narrow") and rule is not None:
        peer = rule["peer"]
        if "/" in peer or peer[0].isdigit():
            net = ipaddress.ip_network(peer, strict=False)
            if kind == "widen" and net.prefixlen:
                net = net.supernet(rng.randint(1, min(8, net.prefixlen)))
            elif kind == "narrow" and net.prefixlen < net.max_prefixlen:
                net = next(net.subnets(rng.randint(1, min(8, net.max_prefixlen - net.prefixlen))))
            rule["peer"] = str(net)
        elif rule.get("protocol") in ("tcp", "udp") and "port_list" not in rule:
            rule["ports"] = "1-65535" if kind == "widen" else "80-443"
        else:
            rule["protocol"] = "all" if kind == "widen" else "tcp"
            rule.pop("port_list", None)
    elif kind == "priority" and rule is not None:
        rule["priority"] = rng.randint(1, 100)
        rule.pop("legacy", None)
    elif kind == "flip" and rule is not None:
        rule["action"] = "drop" if rule.get("action", "accept") == "accept" else "accept"
    elif kind == "attach":
        eni = out["interfaces"][rng.choice(list(out["interfaces"]))]
        eni["security_groups"] = list(dict.fromkeys([*eni["security_groups"], rng.choice(list(groups))]))
    elif kind == "move":
        enis = list(out["interfaces"].values())
        a, b = rng.sample(enis, 2) if len(enis) > 1 else (enis[0], enis[0])
        if len(a.get("ips", [])) > 1 and a is not b:
            b.setdefault("ips", []).append(a["ips"].pop())
        else:
            a["ips"] = [f"10.9.{rng.randrange(256)}.{rng.randrange(1, 255)}"] + a.get("ips", [])[1:]
    return out


def grid_config(old, new):
    """One configuration holding both sides' rules and interfaces, only for cutting the grid."""
    groups = {**old.groups, **{f"new:{k}": g for k, g in new.groups.items()}}
    enis = {**old.interfaces, **{f"new:{k}": e for k, e in new.interfaces.items()}}
    return dataclasses.replace(old, groups=groups, interfaces=enis,
                               prefix_lists={**old.prefix_lists, **new.prefix_lists},
                               port_lists={**old.port_lists, **new.port_lists})


def outcome(v) -> tuple:
    sides = [(s.rule, "accept" if s.allowed else "drop") if s else ("", "") for s in (v.egress, v.ingress)]
    return v.verdict, sides[0][0], sides[0][1], sides[1][0], sides[1][1]


def change_outcomes(c) -> tuple[tuple, tuple]:
    a = c.actions
    return ((c.old_verdict, c.old_egress_rule, a[0], c.old_ingress_rule, a[1]),
            (c.new_verdict, c.new_egress_rule, a[2], c.new_ingress_rule, a[3]))


def holders(points, changes) -> list[int]:
    """For each point, the index of the change whose boxes hold it, -1 where none does; -2 where several do.

    Vectorised over points, box by box: the diffs of a few thousand boxes over a grid of tens of thousands of
    points would take minutes tested pair by pair in Python."""
    keys = sorted({(p.peer.version, int(a)) for p in points for a in (p.peer, p.local)}
                  | {(n.version, int(x)) for c in changes for b in c.boxes for n in (b.src, b.dst)
                     for x in (n.network_address, n.broadcast_address)})
    rank = {k: i for i, k in enumerate(keys)}
    peer = np.array([rank[p.peer.version, int(p.peer)] for p in points], dtype=np.int64)
    local = np.array([rank[p.local.version, int(p.local)] for p in points], dtype=np.int64)
    proto = np.array([p.protocol for p in points], dtype=np.int64)
    sport = np.array([p.src_port for p in points], dtype=np.int64)
    dport = np.array([p.dst_port for p in points], dtype=np.int64)
    owner = np.full(len(points), -1, dtype=np.int64)
    for i, c in enumerate(changes):
        for b in c.boxes:
            inside = ((peer >= rank[b.src.version, int(b.src.network_address)])
                      & (peer <= rank[b.src.version, int(b.src.broadcast_address)])
                      & (local >= rank[b.dst.version, int(b.dst.network_address)])
                      & (local <= rank[b.dst.version, int(b.dst.broadcast_address)])
                      & (proto >= b.protocols[0]) & (proto <= b.protocols[1])
                      & (sport >= b.src_ports[0]) & (sport <= b.src_ports[1])
                      & (dport >= b.dst_ports[0]) & (dport <= b.dst_ports[1]))
            owner[inside & (owner != -1) & (owner != i)] = -2
            owner[inside & (owner == -1)] = i
    return owner.tolist()


def label(old_owner, new_owner) -> str:
    a, b = (o.id if o else EXTERNAL for o in (old_owner, new_owner))
    return a if a == b else f"{a} -> {b}"


def check_diff(old, new) -> None:
    result = diff_configs(old, new, box_limit=100_000)
    assert not result.incomplete
    ref_old, ref_new = ReferenceEvaluator(old), ReferenceEvaluator(new)
    points = path_grid(grid_config(old, new), [], [])
    for c in result.changes:
        assert c.boxes_complete and sum(b.size for b in c.boxes) == c.size > 0
    changed_size = {}
    for vpc in sorted(set(old.vpcs) | set(new.vpcs)):
        mine = [c for c in result.changes if c.vpc == vpc]
        for p, held in zip(points, holders(points, mine)):
            flow = Flow(p.peer, p.local, p.protocol, p.src_port, p.dst_port, vpc=vpc)
            before, after = outcome(ref_old.evaluate(flow)), outcome(ref_new.evaluate(flow))
            assert held != -2, (p, "held by two changes")
            assert (held >= 0) == (before != after), (p, before, after, held)
            if held >= 0:
                c = mine[held]
                assert change_outcomes(c) == (before, after), (p, c)
                assert c.src == label(ref_old.owner(p.peer, vpc), ref_new.owner(p.peer, vpc))
                assert c.dst == label(ref_old.owner(p.local, vpc), ref_new.owner(p.local, vpc))
                changed_size[id(c)] = changed_size.get(id(c), 0) + p.weight
    assert {id(c): c.size for c in result.changes} == changed_size
    check_examples(result, old, new)
    assert result.identical == (not result.changes)


def check_examples(result, old, new) -> None:
    """Every example flow is decided as its change claims under both configurations."""
    ref_old, ref_new = ReferenceEvaluator(old), ReferenceEvaluator(new)
    for c in result.changes:
        e = c.example
        flow = Flow(ipaddress.ip_address(e["src_ip"]), ipaddress.ip_address(e["dst_ip"]),
                    flow_protocol_number(e["protocol"]), e["src_port"], e["dst_port"], vpc=c.vpc)
        assert (outcome(ref_old.evaluate(flow)), outcome(ref_new.evaluate(flow))) == change_outcomes(c), c


def mutated_pair(seed: int, mutation_seed: int, kinds: list[str], shape: Shape = TINY):
    raw = random_config(seed, shape)
    rng = random.Random(mutation_seed)
    edited = raw
    for kind in kinds:
        edited = mutate(edited, kind, rng)
    try:
        return flowsim.load_config(raw), flowsim.load_config(edited)
    except ConfigError:
        assume(False)


@settings(max_examples=int(os.environ.get("ANALYSIS_EXAMPLES", "20")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2**32 - 1), mutation_seed=st.integers(0, 2**16),
       kinds=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=2))
def test_diff_exact_on_mutated_random_configs(seed, mutation_seed, kinds):
    check_diff(*mutated_pair(seed, mutation_seed, kinds))


@pytest.mark.parametrize("kind", MUTATIONS)
def test_each_mutation_kind_is_exact(kind):
    """Every kind of edit at least once, on a fixed set of seeds, whatever hypothesis draws."""
    for seed in range(4):
        raw = random_config(seed, TINY)
        try:
            old, new = flowsim.load_config(raw), flowsim.load_config(mutate(raw, kind, random.Random(seed)))
        except ConfigError:
            continue
        check_diff(old, new)


@settings(max_examples=int(os.environ.get("ANALYSIS_EXAMPLES", "20")) // 4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2**32 - 1), mutation_seed=st.integers(0, 2**16),
       kinds=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=2))
def test_diff_exact_across_two_vpcs(seed, mutation_seed, kinds):
    check_diff(*mutated_pair(seed, mutation_seed, kinds, dataclasses.replace(TINY, vpcs=2, enis=4)))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_identical_configurations_are_identical(seed):
    config = flowsim.load_config(random_config(seed, TINY))
    result = diff_configs(config, flowsim.load_config(random_config(seed, TINY)))
    assert result.identical and result.changes == [] and "identical" in str(result)


def test_the_bundled_example_against_its_edited_copy():
    old, new = flowsim.load_config(EXAMPLE), flowsim.load_config(EDITED)
    check_diff(old, new)
    result = diff_configs(old, new)
    kinds = [c.kind for c in result.changes]
    assert kinds == sorted(kinds, key=["opened", "closed", "verdict", "rules"].index) and kinds[0] == "opened"
    closed = [c for c in result.changes if c.kind == "closed"]
    assert {(c.dst, c.old_ingress_rule, c.new_ingress_rule) for c in closed} == {
        ("eni-web-1", "sg-web/ssh-office", "sg-web/no-ssh-office"),
        ("eni-web-2", "sg-web/ssh-office", "sg-web/no-ssh-office")}
    # 257 pl-office addresses x 65,536 source ports x (2 + 1) addresses of the two web ENIs
    assert sum(c.size for c in closed) == 257 * 65536 * 3
    assert result.only_in_new["rules"] == ["sg-web/no-ssh-office"] and result.only_in_old["rules"] == []


def test_cli_text_json_and_table_outputs(tmp_path, capsys):
    assert main(["diff", str(EXAMPLE), str(EDITED)]) == 0
    text = capsys.readouterr().out
    assert "over every flow" in text and "Base" in text and "Delta" in text and "sg-web/no-ssh-office" in text
    assert text.index("opened") < text.index("closed")
    assert main(["diff", str(EXAMPLE), str(EDITED), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["identical"] is False
    want = {"src", "dst", "old_verdict", "new_verdict", "old_egress_rule", "old_ingress_rule", "new_egress_rule",
            "new_ingress_rule", "boxes", "size", "example"}
    assert all(want <= set(c) for c in data["changes"])
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "diff.parquet"
    assert main(["diff", str(EXAMPLE), str(EDITED), "-o", str(out), "--json"]) == 0
    capsys.readouterr()
    table = pq.read_table(out)
    assert table.num_rows == sum(len(c["boxes"]) for c in data["changes"])
    assert sum(int(s) for s in table.column("box_size").to_pylist()) == sum(c["size"] for c in data["changes"])
    csv = tmp_path / "diff.csv"
    assert main(["diff", str(EXAMPLE), str(EDITED), "-o", str(csv), "-q"]) == 0
    assert csv.read_text().splitlines()[0].startswith('"change","vpc","src","dst"')
    assert main(["diff", str(EXAMPLE), str(EXAMPLE), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"identical": True, "changes": [], "incomplete": [],
                                                   "only_in_old": {"interfaces": [], "groups": [], "rules": []},
                                                   "only_in_new": {"interfaces": [], "groups": [], "rules": []}}


def test_cli_diff_of_a_bad_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("security_groups: [1, 2\n")
    assert main(["diff", str(EXAMPLE), str(bad)]) == 2
    assert "bad.yaml" in capsys.readouterr().err
