"""Workloads shared by the engine benchmarks: configurations and prepared flows, built outside timing."""
from __future__ import annotations

import functools

import numba

import flowsim
from flowsim.flows import FlowArrays, prepare_flows
from flowsim.randomconfig import Shape, random_config
from flowsim.synth import synthesize


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
