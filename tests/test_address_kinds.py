"""Every address kind an ENI can own, through every fast path, against the reference evaluator.

Secondary IPv4, IPv4 prefixes, IPv6 addresses and IPv6 prefixes of /56 to /120 (several per ENI),
flows drawn inside, at the edges of and just outside each, two VPCs reusing one address plan, endpoint
rows, group peers whose members own only prefixes: the engine (with and without list classifiers),
long lists with their classifier, and stateful replay must all agree with the reference.
"""
from __future__ import annotations

import ipaddress
import math
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from test_differential import assert_same, engine_columns

import flowsim
from flowsim.batch.replay import SESSION_TIMEOUT, replay
from flowsim.config.loader import parse_protocol
from flowsim.engine.compiler import LONG_LIST
from flowsim.engine.reference import Flow, ReferenceEvaluator
from flowsim.kernels.evaluate import LANES, N_PCLASS
from flowsim.testing.randomconfig import Shape, random_config, random_flows

KINDS = ("ips", "ipv4_prefixes", "ipv6", "ipv6_prefixes")


def owning_kinds(config: dict, cols: dict) -> Counter:
    """How many flow addresses fall in each kind of owned address (of any ENI, in the row's VPC)."""
    nets = []
    for e in config["interfaces"].values():
        for kind in KINDS:
            for i, a in enumerate(e.get(kind, [])):
                nets.append((e.get("vpc", "default"), "secondary" if kind == "ips" and i else kind, ipaddress.ip_network(a)))
    seen: Counter = Counter()
    for i, pair in enumerate(zip(cols["src_ip"], cols["dst_ip"])):
        vpc = cols["vpc"][i] if "vpc" in cols else None
        for addr in map(ipaddress.ip_address, pair):
            seen.update(kind for net_vpc, kind, net in nets
                        if vpc in (None, net_vpc) and addr.version == net.version and addr in net)
    return seen


def test_the_issue_s_ipv6_prefix_flows():
    """An address inside an ENI's IPv6 prefix belongs to that ENI: its egress rules and group peers apply."""
    mapping = {
        "security_groups": {
            "sg-web": {"type": "basic", "internal_policy": "drop", "rules": [
                {"id": "egress-rest", "direction": "egress", "action": "drop", "priority": 90, "protocol": "all",
                 "peer": "::/0"}]},
            "sg-db": {"type": "basic", "internal_policy": "drop", "rules": [
                {"id": "from-web", "direction": "ingress", "priority": 1, "protocol": "tcp", "ports": "5000-7000",
                 "peer": "sg-web"}]},
        },
        "interfaces": {
            "eni-web": {"security_groups": ["sg-web"], "ips": ["10.20.0.5"], "ipv6": ["2001:db8:20::5"],
                        "ipv6_prefixes": ["2001:db8:21::/64"]},
            "eni-db": {"security_groups": ["sg-db"], "ips": ["10.20.1.5"], "ipv6": ["2001:db8:20::15"]},
        },
    }
    cols = {"src_ip": ["2001:db8:21::abcd", "2001:db8:21::abcd"], "dst_ip": ["2001:db8:20::15", "2001:db8:99::1"],
            "protocol": ["tcp", "udp"], "src_port": [40000, 1], "dst_port": [6000, 53]}
    got = engine_columns(flowsim.compile(flowsim.load_config(mapping)), cols)
    assert got == [("deny", "sg-web/egress-rest", "sg-db/from-web"), ("deny", "sg-web/egress-rest", "")]
    assert_same(mapping, cols)


@pytest.mark.parametrize("seed", range(4))
def test_every_address_kind_in_two_vpcs_reusing_addresses(seed):
    """Tens of thousands of flows over every address kind, path and endpoint mode, with the vpc column."""
    shape = Shape(vpcs=2, groups=8, rules_per_group=14, enis=24, groups_per_eni=3, ipv6_share=0.5,
                  prefix_share=0.5, group_peer_share=0.25, quintuple_share=0.3)
    config = random_config(500 + seed, shape)
    cols = random_flows(config, 5000, seed)
    kinds = owning_kinds(config, cols)
    assert all(kinds[k] >= 100 for k in ("ips", "secondary", "ipv4_prefixes", "ipv6", "ipv6_prefixes")), kinds
    assert_same(config, cols)
    rng = random.Random(seed)
    names = list(config["interfaces"]) + ["eni-not-there"]
    endpoint = dict(cols, eni=[rng.choice(names) for _ in cols["src_ip"]],
                    direction=[rng.choice(["in", "out"]) for _ in cols["src_ip"]])
    assert_same(config, endpoint, endpoint=True)


def test_long_lists_with_ipv6_rows_use_their_classifier_and_agree():
    """Lists longer than LONG_LIST rows, mostly IPv6, through the classifier the compiler gives them."""
    config = random_config(77, Shape(groups=3, rules_per_group=60, enis=20, groups_per_eni=2, ipv6_share=0.6,
                                     advanced_share=0.0, priorities=50))
    rng = random.Random(77)
    rules = [{"direction": rng.choice(["ingress", "egress"]), "action": rng.choice(["accept", "drop"]),
              "priority": rng.randint(1, 50), "protocol": rng.choice(["tcp", "tcp", "udp", "all"]),
              "ports": f"{1000 + 3 * i}-{1000 + 3 * i + rng.choice([0, 2, 50])}",
              "peer": f"2001:db8:{rng.randrange(24):x}:{rng.randrange(4):x}00::/{rng.choice([40, 48, 56, 64, 72, 120])}"}
             for i in range(600)]
    for rule in rules:
        if rule["protocol"] == "all":
            del rule["ports"]
    config["security_groups"]["sg-long"] = {"type": "basic", "vpc": "vpc-0", "rules": rules}
    for eni in config["interfaces"].values():
        eni["security_groups"].append("sg-long")
    engine = flowsim.compile(flowsim.load_config(config))
    seg, list_set = engine.tables.seg, engine.tables.list_set
    # a list's index is ((profile * 2 + egress) * 2 + ipv6) * N_PCLASS + protocol class; seg counts blocks of LANES rows
    v6_long = [s for s in range(len(list_set)) if list_set[s] >= 0 and (s // N_PCLASS) % 2 == 1]
    assert v6_long and max(seg[s + 1] - seg[s] for s in v6_long) * LANES > LONG_LIST
    flows = random_flows(config, 1500, 77)
    flows["dst_port"] = [rng.choice([p, 1000 + rng.randrange(1900)]) for p in flows["dst_port"]]
    assert_same(config, flows)


# ---------------------------------------------------------------- replay
def reference_replay(config, rows: list[dict]) -> list[tuple]:
    """docs/semantics.md §5 written out: per record in time order (file order among equal times), each side's
    live session for (ENI, protocol, unordered endpoints) lets a reverse-orientation packet through."""
    ref = ReferenceEvaluator(config)
    sessions: dict[tuple, dict] = {}
    out = []
    for r in sorted(rows, key=lambda r: r["time"]):
        proto = parse_protocol(r["protocol"])
        ported = proto in (6, 17)
        src, dst = ipaddress.ip_address(r["src_ip"]), ipaddress.ip_address(r["dst_ip"])
        sport, dport = (r["src_port"], r["dst_port"]) if ported else (0, 0)
        direction = {"in": "ingress", "out": "egress"}.get(r.get("direction"))
        v = ref.evaluate(Flow(src, dst, proto, sport, dport, vpc=r.get("vpc"), eni=r.get("eni"), direction=direction))
        sides = [s for s in (v.egress, v.ingress) if s is not None]
        if not sides:
            out.append((r["seq"], v.verdict, v.egress_rule, v.ingress_rule, False))
            continue
        ends = ((src, sport), (dst, dport))
        live = {}
        for side in sides:
            s = sessions.get((side.eni, proto, frozenset(ends)))
            live[side.direction] = s is not None and r["time"] - s["last"] <= SESSION_TIMEOUT and s["opener"] != ends
        allowed = all(live[s.direction] or s.allowed for s in sides)
        rule = {s.direction: "" if live[s.direction] else s.rule for s in sides}
        out.append((r["seq"], "allow" if allowed else "deny", rule.get("egress", ""), rule.get("ingress", ""),
                    allowed and any(live.values())))
        if allowed:
            for side in sides:
                key = (side.eni, proto, frozenset(ends))
                s = sessions.get(key)
                if s is not None and r["time"] - s["last"] <= SESSION_TIMEOUT:
                    s["last"] = r["time"]
                else:
                    sessions[key] = {"last": r["time"], "opener": ends}
    return sorted(out)


def timed_trace(cols: dict, seed: int) -> list[dict]:
    """Rows with times in order, a third of them replies to earlier rows (so that sessions matter)."""
    rng = random.Random(seed)
    n = len(cols["src_ip"])
    rows = [{k: cols[k][i] for k in cols} for i in range(n)]
    t = 0.0
    for i, row in enumerate(rows):
        t += rng.choice([0.0, 0.5, 1.0, 5.0, 30.0, 30.0, 300.0]) + (SESSION_TIMEOUT if rng.random() < 0.01 else 0)
        row["time"], row["seq"] = t, i + 1
        if i and rng.random() < 0.5:
            j = max(0, i - rng.randint(1, 30))
            other = rows[j]
            for a, b in (("src_ip", "dst_ip"), ("src_port", "dst_port")):
                row[a], row[b] = other[b], other[a]
            for same in ("protocol", "vpc", "eni"):
                if same in other:
                    row[same] = other[same]
            if "direction" in other:
                row["direction"] = {"in": "out", "out": "in"}[other["direction"]]
    return rows


def replayed(config_map: dict, rows: list[dict], tmp_path: Path) -> list[tuple]:
    engine = flowsim.compile(flowsim.load_config(config_map))
    path, out = tmp_path / "trace.csv", tmp_path / "out.csv"
    columns = [c for c in rows[0] if c != "seq"] + ["seq"]
    pacsv.write_csv(pa.table({c: [r[c] for r in rows] for c in columns}), path)
    replay(engine, str(path), str(out))
    table = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    return sorted((r["seq"], r["verdict"], r["egress_rule"], r["ingress_rule"], r["stateful"])
                  for r in table.to_pylist())


@pytest.mark.parametrize("endpoint", [False, True], ids=["path", "endpoint"])
def test_replay_sessions_over_every_address_kind(tmp_path, endpoint):
    shape = Shape(vpcs=2, groups=6, rules_per_group=12, enis=16, groups_per_eni=2, ipv6_share=0.5, prefix_share=0.5,
                  group_peer_share=0.25)
    config = random_config(31 + endpoint, shape)
    cols = random_flows(config, 3000, 5)
    if endpoint:
        rng = random.Random(5)
        cols["eni"] = [rng.choice(list(config["interfaces"])) for _ in cols["src_ip"]]
        cols["direction"] = [rng.choice(["in", "out"]) for _ in cols["src_ip"]]
    rows = timed_trace(cols, 9)
    want = reference_replay(flowsim.load_config(config), rows)
    got = replayed(config, rows, tmp_path)
    assert sum(w[4] for w in want) > 80  # sessions really decided records
    assert sum(1 for w in want if ":" in rows[w[0] - 1]["src_ip"] and w[4]) > 20  # IPv6 ones too
    for g, w in zip(got, want):
        assert g == w, (rows[w[0] - 1], g, w)
    assert not math.isnan(rows[-1]["time"])


@pytest.mark.parametrize("version", [4, 6])
def test_an_owned_prefix_of_every_length_owns_exactly_its_addresses(version):
    """For every prefix length, the first, the last and random addresses of an owned block resolve to
    its ENI and the addresses just outside do not (masks at every word boundary: /32, /63, /64, /65, /127...)."""
    bits = 32 if version == 4 else 128
    base = ipaddress.ip_address("10.128.0.0" if version == 4 else "2001:db8:8000::")
    for length in range(1, bits + 1):  # /0 owns the other end too: such a flow never leaves the ENI
        net = ipaddress.ip_network(f"{base}/{length}", strict=False)
        mapping = {"security_groups": {"sg-a": {"internal_policy": "drop", "rules": [
                       {"id": "out", "direction": "egress", "action": "drop", "protocol": "all",
                        "peer": "::/0" if version == 6 else "0.0.0.0/0"}]}},
                   "interfaces": {"eni-a": {"security_groups": ["sg-a"], f"ipv{version}_prefixes": [str(net)]},
                                  "eni-b": {"security_groups": ["sg-a"], "ips": ["192.0.2.1"], "ipv6": ["ffff::1"]}}}
        rng = random.Random(length)
        points = [str(a) for a in {net.network_address, net.broadcast_address,
                                   *(net.network_address + rng.randrange(net.num_addresses) for _ in range(4))}]
        points += [str(net.network_address - 1)] if int(net.network_address) > 0 else []
        points += [str(net.broadcast_address + 1)] if int(net.broadcast_address) < 2 ** bits - 1 else []
        outside = str(net.network_address - 1 if int(net.network_address) > 0 else net.broadcast_address + 1)
        owned_b = "192.0.2.1" if version == 4 else "ffff::1"
        cols = {"src_ip": points * 2, "dst_ip": [outside] * len(points) + [owned_b] * len(points),
                "protocol": ["udp"] * 2 * len(points), "src_port": [1] * 2 * len(points),
                "dst_port": [53] * 2 * len(points)}
        inside = [ipaddress.ip_address(p) in net for p in points]
        want = [("deny", "sg-a/out", "") if i else ("unmanaged", "", "") for i in inside]
        want += [("deny", "sg-a/out" if i else "", "default:inbound-deny") for i in inside]
        assert engine_columns(flowsim.compile(flowsim.load_config(mapping)), cols) == want, length
