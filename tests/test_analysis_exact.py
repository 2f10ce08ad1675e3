"""Exactness of the analysis core and lint against brute force over a coordinate-compressed grid (docs/analysis.md (lint))."""
from __future__ import annotations

import ipaddress
import os
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("dd.cudd")

from analysis_grid import GridPoint, UnitOracle, is_accept  # noqa: E402

import flowsim  # noqa: E402
from flowsim.analysis.lint import lint  # noqa: E402
from flowsim.analysis.space import Point  # noqa: E402
from flowsim.analysis.units import build_units  # noqa: E402
from flowsim.engine.reference import ReferenceEvaluator  # noqa: E402
from flowsim.model.network import DROP, flow_protocol_number  # noqa: E402
from flowsim.testing.randomconfig import Shape, random_config  # noqa: E402

SMALL = Shape(groups=3, rules_per_group=3, enis=3, groups_per_eni=2, priorities=2, port_list_share=0.3,
              legacy_share=0.1, lb_backend_share=0.3, quintuple_share=0.3, group_peer_share=0.25,
              prefix_list_share=0.2, prefix_share=0.3)


def check_exact(config) -> None:
    """Every entry's match and decision region has the size the grid gives it, every finding holds on the grid
    and no shadowed/redundant/unmatchable/tie rule is missed."""
    ref = ReferenceEvaluator(config)
    space, units = build_units(config)
    report = lint(config)
    got = defaultdict(set)
    for f in report.findings:
        if f.kind != "quota":
            got[(f.groups, f.direction, f.enis)].add((f.kind, f.rule))
    for unit in units:
        assert not unit.incomplete
        oracle = UnitOracle(config, ref, unit)
        matched = defaultdict(int)
        decided = defaultdict(int)
        changes = set()  # rules whose removal changes some point's verdict
        ties = set()
        overridden = set()
        for p in oracle.points:
            names, rule = oracle.matching(p)
            assert names[0] == rule, (unit.label, p, names, rule)
            for n in names:
                matched[n] += p.weight
            decided[rule] += p.weight
            if len(names) > 1 and is_accept(unit, names[0]) != is_accept(unit, names[1]):
                changes.add(names[0])
            first = next(e for e in unit.entries if e.name == rule)
            for n in names[1:]:
                e = next(x for x in unit.entries if x.name == n)
                if e.rule is None:
                    continue
                if e.action != DROP and first.rule is not None and first.action == DROP \
                        and first.rule.priority == e.rule.priority:
                    ties.add(n)
                if e.action == DROP and first.rule is None:
                    overridden.add(n)
        expected = set()
        for e in unit.entries:
            assert (e.action == "accept") == is_accept(unit, e.name), (unit.label, e.name)
            assert space.count(e.match) == matched[e.name], (unit.label, e.name)
            assert space.count(e.decides) == decided[e.name], (unit.label, e.name)
            if e.rule is None:
                continue
            if not matched[e.name]:
                expected.add(("unmatchable", e.name))
            elif not decided[e.name]:
                expected.add(("shadowed", e.name))
            elif e.name not in changes:
                expected.add(("redundant", e.name))
            if e.name in ties:
                expected.add(("tie", e.name))
            if e.name in overridden and decided[e.name]:
                expected.add(("overridden-by-default", e.name))
        found = {k for k in got[(unit.groups, unit.direction, unit.enis)] if k[0] != "permissive"}
        assert found == expected, (unit.label, found - expected, expected - found)
    check_examples(config, ref, units, report)


def check_examples(config, ref, units, report) -> None:
    """Every example flow is decided, by the reference, as its finding claims."""
    by_unit = {(u.groups, u.direction, u.enis): u for u in units}
    for f in report.findings:
        if f.example is None:
            continue
        unit = by_unit[(f.groups, f.direction, f.enis)]
        oracle = UnitOracle(config, ref, unit)
        ex = f.example
        src, dst = ipaddress.ip_address(ex["src_ip"]), ipaddress.ip_address(ex["dst_ip"])
        peer, local = (src, dst) if f.direction == "ingress" else (dst, src)
        names, rule = oracle.matching(GridPoint(src.version, peer, local, flow_protocol_number(ex["protocol"]),
                                                ex["src_port"], ex["dst_port"], 1))
        if unit.enis:
            assert ex["eni"] == oracle.eni_for(local).id and ex["direction"] == f.direction
        if f.kind in ("shadowed", "tie", "overridden-by-default"):
            assert f.rule in names and rule == f.by[0], f
        else:
            assert rule == f.rule, f


@settings(max_examples=int(os.environ.get("ANALYSIS_EXAMPLES", "80")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_lint_exact_on_random_configs(seed):
    check_exact(flowsim.load_config(random_config(seed, SMALL)))


def test_point_round_trip():
    """Points encode and decode unchanged, and count as one flow."""
    config = flowsim.load_config(random_config(3, SMALL))
    space, _ = build_units(config)
    for p in (Point(4, 6, ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("1.2.3.4"), 5, 443),
              Point(6, 17, ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("::"), 0, 65535)):
        region = space.point_region(p)
        assert space.count(region) == 1 and space.pick(region) == p and space.contains(region, p)
