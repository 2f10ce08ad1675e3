"""Workloads shared by the engine benchmarks: configurations and prepared flows, built outside timing."""
from __future__ import annotations

import functools
import ipaddress
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa

import flowsim
from flowsim.io.flows import FlowArrays, prepare_flows
from flowsim.testing.randomconfig import Shape, random_config
from flowsim.tools.synth import synthesize


def shape_for(rules_per_eni: int, enis: int = 1000, groups_per_eni: int = 2) -> Shape:
    """Basic groups whose rules add up to about `rules_per_eni` per interface (both directions)."""
    per_group = max(1, rules_per_eni // groups_per_eni)
    groups = max(groups_per_eni, min(200, enis // 5))
    return Shape(groups=groups, rules_per_group=per_group, enis=enis, groups_per_eni=groups_per_eni,
                 advanced_share=0.0, priorities=100,
                 ipv6_share=0.1, group_peer_share=0.05, prefix_list_share=0.05, quintuple_share=0.05)


@functools.lru_cache(maxsize=8)
def engine_for(rules_per_eni: int, enis: int = 1000, groups_per_eni: int = 2, seed: int = 1):
    """A compiled engine for the shape (cached: compiling is not what these benchmarks time)."""
    shape = shape_for(rules_per_eni, enis, groups_per_eni)
    config = flowsim.load_config(random_config(seed, shape))
    return flowsim.compile(config)


@functools.lru_cache(maxsize=8)
def flows_for(rules_per_eni: int, n: int, enis: int = 1000, groups_per_eni: int = 2, seed: int = 1) -> FlowArrays:
    """`n` synthetic flows aimed at the configuration, already parsed."""
    engine = engine_for(rules_per_eni, enis, groups_per_eni, seed)
    return prepare_flows(synthesize(engine.config, n, seed=seed))


def set_threads(threads: int) -> int:
    """Use `threads` numba threads (capped at what the machine has); returns the count in force."""
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)
    return threads


CLASSBENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "classbench"


def _ports(lo: int, hi: int) -> str:
    """A ClassBench port range as a security group writes it (ports start at 1: port 0 is dropped)."""
    return f"{max(1, lo)}/{max(1, hi)}"


@functools.lru_cache(maxsize=4)
def classbench_group(name: str, min_flows: int = 1_000_000):
    """A ClassBench rule set as one security group's ingress rules, and its trace (repeated to at least
    `min_flows`) as inbound flows of its ENI.

    Rule k becomes: peer = source prefix, local = destination prefix, source and destination ports,
    protocol, priority 1, accept, so that evaluation order is line order. Ports of a rule for any
    protocol cannot be written in a security group and are dropped (the rule gets wider), and port 0 is
    left out of ranges. Returns
    (engine, flows) or None where the data is not there."""
    from flowsim.io.classbench import read_rules, read_trace

    rules_path, trace_path = CLASSBENCH / name, CLASSBENCH / f"{name}_trace"
    if not rules_path.exists() or not trace_path.exists():
        return None
    lo, hi = read_rules(rules_path)
    rules = []
    for (s, d, sp, dp, pr), (se, de, spe, dpe, pre) in zip(lo.tolist(), hi.tolist()):
        rule = {"direction": "ingress", "action": "accept", "priority": 1,
                "peer": str(ipaddress.IPv4Network((s, 32 - (se - s + 1).bit_length() + 1))),
                "local": str(ipaddress.IPv4Network((d, 32 - (de - d + 1).bit_length() + 1))),
                "protocol": "all" if pre > pr else int(pr)}
        if pr == pre and pr in (6, 17):
            rule["ports"], rule["source_ports"] = _ports(dp, dpe), _ports(sp, spe)
        rules.append(rule)
    config = flowsim.load_config({
        "security_groups": {"sg-classbench": {"type": "advanced", "vpc": "vpc-0", "rules": rules}},
        "interfaces": {"eni-0": {"vpc": "vpc-0", "security_groups": ["sg-classbench"], "ips": ["10.0.0.1"]}},
        "limits": {"rules_per_eni": 10**6, "group_rules_per_group": 10**6},
    })
    keys = read_trace(trace_path)
    keys = np.tile(keys, (max(1, -(-min_flows // len(keys))), 1))
    n = len(keys)
    flows = prepare_flows(pa.table({
        "src_ip": pa.array([str(ipaddress.IPv4Address(a)) for a in keys[:, 0].tolist()]),
        "dst_ip": pa.array([str(ipaddress.IPv4Address(a)) for a in keys[:, 1].tolist()]),
        "protocol": pa.array(keys[:, 4].astype(np.int64)), "src_port": pa.array(keys[:, 2].astype(np.int64)),
        "dst_port": pa.array(keys[:, 3].astype(np.int64)),
        "eni": pa.array(["eni-0"] * n), "direction": pa.array(["in"] * n)}))
    return flowsim.compile(config), flows
