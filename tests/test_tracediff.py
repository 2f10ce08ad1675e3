"""Configuration changes over recorded traffic: `replay --change` and `diff --trace` (issue 20 §2-3).

`--change` is checked against a readable per-record replay of docs/semantics.md §5 with rule changes
(sessions per ENI id and unordered 5-tuple, the reference evaluator deciding every packet), on
hand-built traces around the change time and on random configuration pairs; `diff --trace` against
two independent replays joined record by record.
"""
from __future__ import annotations

import copy
import ipaddress
import math
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import flowsim
from flowsim.batch.replay import SESSION_TIMEOUT, replay
from flowsim.batch.tracediff import diff_trace
from flowsim.cli import main
from flowsim.config.loader import parse_protocol
from flowsim.engine.reference import ALLOW, Flow, ReferenceEvaluator
from flowsim.errors import ConfigError
from flowsim.model.network import EGRESS, INGRESS
from flowsim.testing.randomconfig import Shape, random_config, random_flows

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "traces" / "example.yaml"
RESOLVER, DB, WEB, OFFICE = "100.100.2.136", "10.0.3.10", "10.0.1.10", "198.51.100.7"
T = 1_000_000.0  # the change time of the hand-built traces


# ---------------------------------------------------------------- the reference replay with changes
def _flow(r: dict) -> Flow:
    proto = parse_protocol(str(r["protocol"]))
    ported = proto in (6, 17)
    direction = {"in": INGRESS, "out": EGRESS}.get(r.get("direction") or "")
    return Flow(ipaddress.ip_address(r["src_ip"]), ipaddress.ip_address(r["dst_ip"]), proto,
                int(r.get("src_port") or 0) if ported else 0, int(r.get("dst_port") or 0) if ported else 0,
                vpc=r.get("vpc") or None, eni=r.get("eni") or None, direction=direction)


def _path(ref: ReferenceEvaluator, flow: Flow) -> list[tuple[int, str]]:
    """(side, ENI id) of each ENI on the flow's path: 0 its source, 1 its destination (endpoint mode: the one)."""
    if flow.eni is not None:
        if flow.eni not in ref.config.interfaces:
            return []
        return [(1 if flow.direction == INGRESS else 0, flow.eni)]
    return [(side, eni.id) for side, eni in ((0, ref.owner(flow.src, flow.vpc)), (1, ref.owner(flow.dst, flow.vpc)))
            if eni is not None]


def _sides(ref: ReferenceEvaluator, flow: Flow) -> list[tuple[int, str]]:
    """(side, ENI id) of each ENI that checks the flow: none when its two addresses are one ENI's (the traffic
    never leaves it), else those on its path."""
    path = _path(ref, flow)
    return [] if len(path) == 2 and path[0][1] == path[1][1] else path


def reference_replay(configs: list[tuple[float, object]], records: list[dict]) -> tuple[list[tuple], list[int]]:
    """(verdict, egress rule, ingress rule, stateful) per record in time order, and the sessions each change
    closed. configs: (from time, Config), the first from -inf. Sessions: ENI id and unordered 5-tuple."""
    ref = ReferenceEvaluator(configs[0][1])
    pending = list(configs[1:])
    sessions: dict[tuple, dict] = {}
    out, closed = [], []

    def key(eni: str, flow: Flow) -> tuple:
        return eni, flow.protocol, frozenset(((flow.src, flow.src_port), (flow.dst, flow.dst_port)))

    def live(s: dict | None, now: float) -> bool:
        return s is not None and now - s["last"] <= SESSION_TIMEOUT

    def change(at: float, config) -> None:
        nonlocal ref, sessions
        ref = ReferenceEvaluator(config)
        carried: dict[tuple, dict] = {}
        lost = 0
        for (eni, *_), s in sorted(((k, s) for k, s in sessions.items() if live(s, at)), key=lambda ks: ks[1]["last"]):
            # the opening packet, as if it arrived at `at`: allowed -> the session lives on at the ENIs it passes
            verdict = ref.evaluate(s["opener"]).verdict
            enis = {e for _, e in _path(ref, s["opener"])} if verdict == ALLOW else set()
            lost += eni not in enis
            for e in enis:
                k = key(e, s["opener"])
                if k in carried:
                    carried[k]["last"] = max(carried[k]["last"], s["last"])
                else:
                    carried[k] = dict(s)
        sessions = carried
        closed.append(lost)

    for r in records:
        now = r["time"]
        while pending and now >= pending[0][0]:
            change(*pending.pop(0))
        flow = _flow(r)
        v = ref.evaluate(flow)
        sides = _sides(ref, flow)
        if not sides:
            out.append((v.verdict, v.egress_rule, v.ingress_rule, False))
            continue
        ok = {0: v.egress.allowed if v.egress else True, 1: v.ingress.allowed if v.ingress else True}
        by_state = {0: False, 1: False}
        for side, eni in sides:
            s = sessions.get(key(eni, flow))
            # a live session of this ENI that the packet does not match as its opener saw it: a reply
            o = s["opener"] if s is not None else None
            by_state[side] = live(s, now) and (o.src, o.src_port, o.dst, o.dst_port) != \
                (flow.src, flow.src_port, flow.dst, flow.dst_port)
        if not all(by_state[side] or ok[side] for side, _ in sides):
            out.append(("deny", v.egress_rule, v.ingress_rule, False))
            continue
        out.append(("allow", "" if by_state[0] else v.egress_rule, "" if by_state[1] else v.ingress_rule,
                    by_state[0] or by_state[1]))
        for eni in {eni for _, eni in sides}:
            s = sessions.get(key(eni, flow))
            if live(s, now):
                s["last"] = max(s["last"], now)
            else:
                sessions[key(eni, flow)] = {"last": now, "opener": flow}
    for at, config in pending:
        change(at, config)
    return out, closed


# ---------------------------------------------------------------- helpers
def write_trace(path: Path, rows: list[dict]) -> Path:
    order = ["time", "src_ip", "dst_ip", "protocol", "src_port", "dst_port", "vpc", "eni", "direction"]
    columns = sorted({k for r in rows for k in r}, key=order.index)
    types = {"time": pa.float64(), "src_port": pa.int64(), "dst_port": pa.int64()}
    pacsv.write_csv(pa.table({c: pa.array([r.get(c) for r in rows], type=types.get(c, pa.string())) for c in columns}),
                    path)
    return path


def replayed(engine, trace: Path, tmp_path: Path, name: str, **kw) -> tuple[object, list[dict]]:
    out = tmp_path / f"{name}.parquet"
    summary = replay(engine, str(trace), str(out), **kw)
    return summary, pq.read_table(out).to_pylist() if out.exists() else []


def outcome(rows: list[dict]) -> list[tuple]:
    return [(r["verdict"], r["egress_rule"], r["ingress_rule"], r["stateful"]) for r in rows]


def example(edit=None):
    mapping = yaml.safe_load(EXAMPLE.read_text())
    if edit:
        edit(mapping)
    return flowsim.load_config(mapping)


def renumbered(m: dict) -> None:
    """A new interface listed first: every ENI of the example gets another index in the compiled tables."""
    m["interfaces"] = {"eni-new-0": {"instance": "i-new", "vpc": "vpc-prod", "security_groups": ["sg-web"],
                                     "ips": ["10.0.1.99"]}, **m["interfaces"]}


def without_dns(m: dict) -> None:
    m["security_groups"]["sg-db"]["rules"] = [r for r in m["security_groups"]["sg-db"]["rules"] if r["id"] != "dns"]


def no_office_ssh(m: dict) -> None:
    m["security_groups"]["sg-web"]["rules"].insert(0, {"id": "no-ssh-office", "direction": "ingress", "action": "drop",
                                                       "priority": 1, "protocol": "tcp", "ports": 22,
                                                       "peer": "pl-office"})


def dns(t: float, reply: bool = False, port: int = 40008, **extra) -> dict:
    src, dst, sport, dport = (RESOLVER, DB, 53, port) if reply else (DB, RESOLVER, port, 53)
    return {"time": t, "src_ip": src, "dst_ip": dst, "protocol": "udp", "src_port": sport, "dst_port": dport, **extra}


def ssh(t: float, reply: bool = False) -> dict:
    src, dst, sport, dport = (WEB, OFFICE, 22, 40001) if reply else (OFFICE, WEB, 40001, 22)
    return {"time": t, "src_ip": src, "dst_ip": dst, "protocol": "tcp", "src_port": sport, "dst_port": dport}


def check_change(tmp_path: Path, rows: list[dict], configs: list[tuple[float, object]], **kw):
    """Replay with the changes and compare to the reference, record by record; returns the replay's rows."""
    trace = write_trace(tmp_path / "trace.csv", rows)
    engines = [(at, flowsim.compile(c), f"config-{k}") for k, (at, c) in enumerate(configs[1:], 1)]
    summary, out = replayed(flowsim.compile(configs[0][1]), trace, tmp_path, "changed", changes=engines, **kw)
    expected, closed = reference_replay(configs, sorted(rows, key=lambda r: r["time"]))
    assert outcome(sorted(out, key=lambda r: (float(r["time"]), r["record"]))) == expected
    assert [c["closed"] for c in summary.changes] == closed
    return summary, sorted(out, key=lambda r: r["record"])


# ---------------------------------------------------------------- --change on hand-built traces
def test_a_session_opened_a_second_before_a_change_that_keeps_it_allowed_lives_on(tmp_path):
    summary, out = check_change(tmp_path, [dns(T - 1), dns(T + 1, reply=True)], [(-math.inf, example()),
                                                                                (T, example(renumbered))])
    assert [(r["verdict"], r["stateful"]) for r in out] == [("allow", False), ("allow", True)]
    assert summary.changes == [{"time": T, "config": "config-1", "live": 1, "closed": 0}]


def test_a_session_that_the_change_denies_is_closed_and_its_reply_decided_anew(tmp_path):
    summary, out = check_change(tmp_path, [dns(T - 1), dns(T + 1, reply=True), dns(T + 2)],
                                [(-math.inf, example()), (T, example(without_dns))])
    assert [(r["verdict"], r["stateful"], r["ingress_rule"] or r["egress_rule"]) for r in out] == [
        ("allow", False, "sg-db/dns"), ("deny", False, "default:inbound-deny"), ("deny", False, "default:outbound-deny")]
    assert summary.changes[0]["closed"] == 1 and summary.changes[0]["live"] == 1


def test_a_closed_session_s_packets_both_ways_are_new_traffic_under_the_new_configuration(tmp_path):
    rows = [ssh(T - 1), ssh(T - 0.5, reply=True), ssh(T + 1), ssh(T + 1.5, reply=True)]
    _, out = check_change(tmp_path, rows, [(-math.inf, example()), (T, example(no_office_ssh))])
    assert [(r["verdict"], r["stateful"], r["egress_rule"] or r["ingress_rule"]) for r in out] == [
        ("allow", False, "sg-web/ssh-office"), ("allow", True, ""),
        ("deny", False, "sg-web/no-ssh-office"), ("allow", False, "default:outbound-allow")]


def test_a_record_at_the_change_time_is_decided_by_the_new_configuration(tmp_path):
    _, out = check_change(tmp_path, [dns(T - 5), dns(T)], [(-math.inf, example()), (T, example(without_dns))])
    assert [r["verdict"] for r in out] == ["allow", "deny"]


def test_sessions_expired_before_the_change_are_not_re_evaluated(tmp_path):
    summary, _ = check_change(tmp_path, [dns(T - SESSION_TIMEOUT - 1), dns(T - 1, port=40009), dns(T + 1)],
                              [(-math.inf, example()), (T, example(without_dns))])
    assert summary.changes[0]["live"] == 1 and summary.changes[0]["closed"] == 1


def test_a_session_carried_over_still_expires_910_seconds_after_its_last_packet(tmp_path):
    rows = [dns(T - 900), dns(T - 1, port=40009), dns(T + 11, reply=True), dns(T + 11, reply=True, port=40009)]
    _, out = check_change(tmp_path, rows, [(-math.inf, example()), (T, example(renumbered))])
    assert [(r["verdict"], r["stateful"]) for r in out] == [("allow", False), ("allow", False), ("deny", False),
                                                            ("allow", True)]


def test_endpoint_mode_sessions_are_re_evaluated_at_their_recorded_eni(tmp_path):
    db = {"eni": "eni-db-1"}
    rows = [dns(T - 1, direction="out", **db), dns(T + 1, reply=True, direction="in", **db),
            dns(T - 1, port=40010, direction="out", **db), dns(T + 2, reply=True, port=40010, direction="in", **db)]
    summary, out = check_change(tmp_path, rows, [(-math.inf, example()), (T, example(renumbered)),
                                                 (T + 1.5, example(without_dns))])
    assert [(r["verdict"], r["stateful"]) for r in out] == [("allow", False), ("allow", True), ("allow", False),
                                                            ("deny", False)]
    assert [(c["live"], c["closed"]) for c in summary.changes] == [(2, 0), (2, 2)]


def test_changes_back_and_forth_and_after_the_trace(tmp_path):
    rows = [dns(T - 1), dns(T + 1), dns(T + 1, reply=True), dns(T + 101, port=1), dns(T + 102, reply=True, port=1)]
    summary, out = check_change(tmp_path, rows, [(-math.inf, example()), (T, example(without_dns)),
                                                 (T + 100, example()), (T + 10_000, example(without_dns))])
    assert [(r["verdict"], r["stateful"]) for r in out] == [("allow", False), ("deny", False), ("deny", False),
                                                            ("allow", False), ("allow", True)]
    assert [c["closed"] for c in summary.changes] == [1, 0, 0]  # the last change finds the session expired


def test_sessions_spanning_chunks_survive_a_change_inside_a_chunk(tmp_path):
    rows = [dns(T - 10 + k, port=41000 + k) for k in range(10)] + \
           [dns(T + 1 + k, reply=True, port=41000 + k) for k in range(10)]
    for chunk_rows in (1, 3, 7, 100):
        _, out = check_change(tmp_path, rows, [(-math.inf, example()), (T, example(renumbered))], chunk_rows=chunk_rows)
        assert sum(r["stateful"] for r in out) == 10


# ---------------------------------------------------------------- --change on random configuration pairs
def mutate(mapping: dict, rng: random.Random) -> dict:
    """A copy of a random configuration with one to three edits: rules added, removed, widened, flipped or
    re-prioritised, everything blocked one way, an ENI's groups or addresses changed, a new ENI listed first
    (ENIs renumbered)."""
    m = copy.deepcopy(mapping)
    groups, enis = m["security_groups"], m["interfaces"]
    for _ in range(rng.randint(1, 3)):
        group = groups[rng.choice(sorted(groups))]
        rules = group["rules"]
        kind = rng.choice(["add", "block", "remove", "flip", "priority", "widen", "groups", "move", "renumber"])
        if kind == "block":  # closes many live sessions
            rules.insert(0, {"direction": rng.choice(["ingress", "egress"]), "action": "drop", "priority": 1,
                             "protocol": "all", "peer": rng.choice(["0.0.0.0/0", "::/0"])})
        elif kind == "add" or not rules:
            rules.insert(0, {"direction": rng.choice(["ingress", "egress"]), "action": rng.choice(["accept", "drop"]),
                             "priority": rng.randint(1, 5), "protocol": rng.choice(["tcp", "udp", "all"]),
                             "peer": rng.choice(["0.0.0.0/0", "10.0.0.0/8", "::/0"])})
        elif kind == "remove":
            rules.pop(rng.randrange(len(rules)))
        elif kind == "flip":
            r = rng.choice(rules)
            r["action"] = "drop" if r.get("action", "accept") == "accept" else "accept"
        elif kind == "priority":
            rng.choice(rules)["priority"] = rng.randint(1, 100)
        elif kind == "widen":
            r = rng.choice(rules)
            r.pop("ports", None), r.pop("source_ports", None)
        elif kind == "groups" and enis:
            eni = enis[rng.choice(sorted(enis))]
            same = [g for g, body in groups.items() if body["vpc"] == eni["vpc"]
                    and body["type"] == groups[eni["security_groups"][0]]["type"]]
            eni["security_groups"] = rng.sample(same, rng.randint(1, min(2, len(same))))
        elif kind == "move" and len(enis) > 1:
            a, b = rng.sample(sorted(enis), 2)
            if len(enis[a].get("ips", [])) > 1 and enis[a].get("vpc") == enis[b].get("vpc"):
                enis[b].setdefault("ips", []).append(enis[a]["ips"].pop())
        elif kind == "renumber" and enis:
            first = rng.choice(sorted(enis))
            m["interfaces"] = enis = {first: enis[first], **{k: v for k, v in enis.items() if k != first}}
    return m


SHAPE = Shape(groups=4, rules_per_group=6, enis=8, groups_per_eni=2)
SHAPES = {"path": SHAPE, "vpc": Shape(vpcs=2, groups=4, rules_per_group=6, enis=8, groups_per_eni=2), "endpoint": SHAPE}


def random_trace(mapping: dict, seed: int, n: int, kind: str) -> list[dict]:
    """Flows with increasing times (gaps around the session timeout) and replies to recent ones; `kind`:
    path mode, path mode naming the VPC (one session entry per ENI), or endpoint mode."""
    endpoint = kind == "endpoint"
    rng = random.Random(seed)
    cols = random_flows(mapping, n, seed)
    rows, now = [], 0.0
    for i in range(n):
        now += rng.choice([0.0, 1.0, 1.0, 2.0, 5.0, 10.0, 30.0]) + (SESSION_TIMEOUT if rng.random() < 0.05 else 0.0)
        r = {k: cols[k][i] for k in cols}
        if rows and rng.random() < 0.5:  # the reply of a recent record
            e = rng.choice(rows[-20:])
            r = dict(e, src_ip=e["dst_ip"], dst_ip=e["src_ip"], src_port=e["dst_port"], dst_port=e["src_port"])
            if endpoint:
                r["direction"] = {"in": "out", "out": "in"}[e["direction"]]
        elif endpoint:
            r["eni"] = rng.choice(sorted(mapping["interfaces"]) + ["eni-unknown"])
            r["direction"] = rng.choice(["in", "out"])
        elif kind == "vpc":
            r["vpc"] = rng.choice(["vpc-0", "vpc-1"])
        r["time"] = now
        rows.append(r)
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 10**6), st.sampled_from(["path", "vpc", "endpoint"]), st.sampled_from([3, 17, 1000]),
       st.integers(1, 2))
def test_change_replay_equals_the_reference_on_random_configuration_pairs(tmp_path, seed, kind, chunk_rows, count):
    rng = random.Random(seed)
    mapping = random_config(seed, SHAPES[kind])
    configs = [(-math.inf, flowsim.load_config(mapping))]
    rows = random_trace(mapping, seed, 120, kind)
    edited = mapping
    for at in sorted(rng.uniform(rows[0]["time"], rows[-1]["time"] + 1) for _ in range(count)):
        # an edit, or other groups and rules over interfaces of the same names (most sessions change)
        edited = mutate(edited, rng) if rng.random() < 0.6 else random_config(rng.randrange(10**6), SHAPES[kind])
        try:
            configs.append((at, flowsim.load_config(edited)))
        except ConfigError:
            assume(False)
    check_change(tmp_path, rows, configs, chunk_rows=chunk_rows)


# ---------------------------------------------------------------- diff --trace
def check_diff(tmp_path: Path, old, new, trace: Path, at: float | None = None, **kw):
    """diff_trace against two independent replays joined by record; returns the diff."""
    result = diff_trace(old, new, str(trace), collect=True, at=at, **kw)
    _, a = replayed(old, trace, tmp_path, "old", **kw)
    changes = [(at, new, "NEW")] if at is not None else []
    _, b = replayed(new if at is None else old, trace, tmp_path, "new", changes=changes, **kw)
    a, b = {r["record"]: r for r in a}, {r["record"]: r for r in b}
    rows = result.table.to_pylist() if result.table is not None else []
    assert sorted(r["record"] for r in rows) == sorted(set(a) | set(b))
    transitions: Counter = Counter()
    for r in rows:
        before, after = a.get(r["record"], {}), b.get(r["record"], {})
        for side, replayed_row in (("old", before), ("new", after)):
            for column in ("verdict", "egress_rule", "ingress_rule"):
                assert r[f"{side}_{column}"] == replayed_row.get(column), (side, column, r, replayed_row)
        assert r["changed"] == (before.get("verdict") != after.get("verdict"))
        if r["changed"]:
            transitions[tuple(r[f"{s}_{c}"] or "" for s in ("old", "new")
                              for c in ("verdict", "egress_rule", "ingress_rule"))] += 1
    assert result.changed == sum(transitions.values())
    assert {tuple(t[f"{s}_{c}"] for s in ("old", "new") for c in ("verdict", "egress_rule", "ingress_rule")): t["count"]
            for t in result.transitions} == dict(transitions)
    assert sum(f["count"] for f in result.top_changed) <= result.changed
    if result.changed:
        assert result.top_changed
    return result


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 10**6), st.sampled_from(["path", "vpc", "endpoint"]), st.sampled_from([2, 11, 1000]),
       st.booleans())
def test_diff_over_a_trace_equals_two_replays_joined_by_record(tmp_path, seed, kind, chunk_rows, deployed):
    rng = random.Random(seed)
    mapping = random_config(seed, SHAPES[kind])
    try:
        new = flowsim.compile(flowsim.load_config(mutate(mapping, rng)))
    except ConfigError:
        assume(False)
    rows = random_trace(mapping, seed, 150, kind)
    trace = write_trace(tmp_path / "trace.csv", rows)
    at = rng.uniform(rows[0]["time"], rows[-1]["time"]) if deployed else None
    check_diff(tmp_path, flowsim.compile(flowsim.load_config(mapping)), new, trace, at=at, chunk_rows=chunk_rows)


def test_diff_of_the_bundled_traces_against_an_edited_example(tmp_path):
    old, new = flowsim.compile(example()), flowsim.compile(example(no_office_ssh))
    for name in ("example-flowlog.csv", "example.pcap"):
        result = check_diff(tmp_path, old, new, ROOT / "traces" / name)
        assert result.changed == result.closed == 1
        assert result.transitions == [{"old_verdict": "allow", "old_egress_rule": "", "old_ingress_rule": "sg-web/ssh-office",
                                       "new_verdict": "deny", "new_egress_rule": "", "new_ingress_rule": "sg-web/no-ssh-office",
                                       "count": 1}]
        assert result.top_changed == [{"flow": f"{OFFICE} -> {WEB}:22 tcp", "count": 1}]


def test_the_readme_s_diff_of_the_bundled_flow_log_against_the_edited_example():
    result = diff_trace(flowsim.compile(example()), flowsim.compile(flowsim.load_config(ROOT / "traces" / "example-edited.yaml")),
                        str(ROOT / "traces" / "example-flowlog.csv"))
    assert (result.compared, result.changed, result.opened, result.closed, result.rule_changed) == (8, 2, 1, 1, 1)
    assert [(t["old_ingress_rule"], t["new_ingress_rule"]) for t in result.transitions] == [
        ("sg-web/ssh-office", "sg-web/no-ssh-office"), ("default:inbound-deny", "sg-db/mysql-from-app")]


def _config_for(trace: Path) -> tuple[dict, list[float]]:
    """A configuration whose ENIs own the trace's most frequent addresses and carry its ENI ids, so that
    a real trace is decided by rules rather than left unmanaged; and the trace's record times."""
    from flowsim.io.traces import open_trace
    from flowsim.model.addresses import parts_address

    counts: Counter = Counter()
    ids, times = set(), []
    for chunk in open_trace(trace):
        for side in ("src", "dst"):
            counts.update(str(parts_address(f, h, l)) for f, h, l in zip(*(getattr(chunk, f"{side}_{p}").tolist()
                                                                           for p in ("fam", "hi", "lo"))))
        ids |= {e for e in (chunk.eni.tolist() if chunk.eni is not None else []) if e}
        times += [t for t in chunk.time.tolist() if not math.isnan(t)]
    v4 = [a for a, _ in counts.most_common() if ":" not in a][:6]
    v6 = [a for a, _ in counts.most_common() if ":" in a][:2]
    rules = [{"id": "web", "direction": "ingress", "protocol": "tcp", "ports": "80/443", "peer": "0.0.0.0/0"},
             {"id": "dns", "direction": "egress", "action": "drop", "protocol": "udp", "ports": 53, "peer": "0.0.0.0/0"},
             {"id": "v6", "direction": "ingress", "protocol": "all", "peer": "::/0"}]
    interfaces = {f"eni-{k}": {"vpc": "vpc-1", "security_groups": ["sg-a" if k % 2 else "sg-b"], "ips": [a]}
                  for k, a in enumerate(v4)}
    for k, a in enumerate(v6):
        interfaces[f"eni-v6-{k}"] = {"vpc": "vpc-1", "security_groups": ["sg-b"], "ips": [f"10.254.0.{k + 1}"], "ipv6": [a]}
    for k, eni in enumerate(ids):
        interfaces[eni] = {"vpc": "vpc-1", "security_groups": ["sg-a"], "ips": [f"10.253.{k // 250}.{k % 250 + 1}"]}
    return {"security_groups": {"sg-a": {"type": "basic", "vpc": "vpc-1", "rules": rules},
                                "sg-b": {"type": "basic", "vpc": "vpc-1", "rules": rules[:1]}},
            "interfaces": interfaces}, times


def test_diff_over_real_captures_and_flow_logs_equals_two_replays(tmp_path, shared_data):
    files = sorted((shared_data / "real" / "pcap").iterdir()) + sorted((shared_data / "real" / "flowlogs" / "aws").glob("*.log"))
    assert files
    changed = 0
    for path in files:
        mapping, times = _config_for(path)
        edited = copy.deepcopy(mapping)
        edited["security_groups"]["sg-a"]["rules"][0]["action"] = "drop"  # no more web
        edited["security_groups"]["sg-a"]["rules"].pop(1)  # dns allowed out
        old, new = flowsim.compile(flowsim.load_config(mapping)), flowsim.compile(flowsim.load_config(edited))
        result = check_diff(tmp_path, old, new, path, chunk_rows=64)
        if times:
            check_diff(tmp_path, old, new, path, at=sorted(times)[len(times) // 2], chunk_rows=64)
        changed += result.changed
    assert changed > 0


# ---------------------------------------------------------------- the command line
def test_cli_diff_over_a_trace_and_its_outputs(tmp_path, capsys):
    edited = tmp_path / "edited.yaml"
    mapping = yaml.safe_load(EXAMPLE.read_text())
    no_office_ssh(mapping)
    edited.write_text(yaml.safe_dump(mapping))
    flowlog = str(ROOT / "traces" / "example-flowlog.csv")
    assert main(["diff", str(EXAMPLE), str(edited), "--trace", flowlog, "-o", str(tmp_path / "d.parquet")]) == 0
    out = capsys.readouterr().out
    assert "1 changes verdict (0 deny -> allow, 1 allow -> deny)" in out and "sg-web/no-ssh-office" in out
    table = pq.read_table(tmp_path / "d.parquet")
    assert {"old_verdict", "new_verdict", "old_egress_rule", "old_ingress_rule", "new_egress_rule", "new_ingress_rule",
            "changed"} <= set(table.column_names)
    assert table.column("changed").to_pylist().count(True) == 1
    assert main(["diff", str(EXAMPLE), str(edited), "--trace", flowlog, "--json", "--at", "1764547207.5"]) == 0
    import json

    result = json.loads(capsys.readouterr().out)
    assert result["at"] == 1764547207.5 and result["new_replay"]["changes"][0]["closed"] == 1
    assert result["changed"] == 0  # the ssh session opened before the change: its reply is the only later record


def test_cli_replay_with_changes_and_bad_changes(tmp_path, capsys):
    edited = tmp_path / "edited.yaml"
    mapping = yaml.safe_load(EXAMPLE.read_text())
    without_dns(mapping)
    edited.write_text(yaml.safe_dump(mapping))
    trace = write_trace(tmp_path / "t.csv", [dns(T - 1), dns(T + 1, reply=True)])
    assert main(["replay", str(EXAMPLE), str(trace), "--change", f"{T}={edited}"]) == 0
    assert f"change at {T} to {edited}: live sessions re-evaluated 1, closed 1, live on 0" in capsys.readouterr().out
    for bad, where in ((["--change", "soon=x.yaml"], "--change"), (["--change", f"{T}"], "--change"),
                       (["--change", f"{T}={edited}", "--change", f"{T - 1}={edited}"], "time order"),
                       (["--change", f"{T}={tmp_path / 'missing.yaml'}"], "missing.yaml")):
        assert main(["replay", str(EXAMPLE), str(trace), *bad]) == 2
        err = capsys.readouterr().err
        assert where in err and "Traceback" not in err


def test_cli_trace_only_flags_need_a_trace(capsys):
    for flags in (["--at", "5"], ["--format", "pcap"], ["--threads", "2"]):
        assert main(["diff", str(EXAMPLE), str(EXAMPLE), *flags]) == 2
        assert f"{flags[0]} needs --trace" in capsys.readouterr().err
    assert main(["diff", str(EXAMPLE), str(EXAMPLE)]) == 0
    assert "over every flow (header space, exact)" in capsys.readouterr().out
    assert main(["diff", str(EXAMPLE), str(EXAMPLE), "--trace", str(ROOT / "traces" / "example.pcap"), "--at", "nan"]) == 2
    assert "--at: must be a time" in capsys.readouterr().err


def test_each_configuration_infers_the_directions_of_a_log_without_them(tmp_path):
    # an AWS log names the ENI but not the direction: each configuration infers it from the addresses the
    # ENI owns there, and marks a record whose ENI owns neither address, independently of the other
    def config(address: str):
        return flowsim.compile(flowsim.load_config({
            "security_groups": {"sg-a": {"type": "basic", "vpc": "vpc-1", "rules": [
                {"id": "ssh", "direction": "ingress", "protocol": "tcp", "ports": 22, "peer": "0.0.0.0/0"},
                {"id": "no-out", "direction": "egress", "action": "drop", "priority": 1, "protocol": "all",
                 "peer": "0.0.0.0/0"}]}},
            "interfaces": {"eni-a": {"vpc": "vpc-1", "security_groups": ["sg-a"], "ips": [address]}}}))

    log = tmp_path / "flows.log"
    log.write_text("".join(f"2 123456789010 eni-a {src} {dst} 40000 22 6 1 60 {100 + k} {101 + k} ACCEPT OK\n"
                           for k, (src, dst) in enumerate([("10.0.0.1", "10.0.0.2"), ("10.0.0.2", "10.0.0.9"),
                                                           ("10.0.0.3", "10.0.0.4")])))
    result = check_diff(tmp_path, config("10.0.0.1"), config("10.0.0.2"), log)
    assert (result.compared, result.changed, result.one_side_invalid) == (1, 2, 1)
