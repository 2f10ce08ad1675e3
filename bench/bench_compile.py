"""Compile time (issue 3): 10,000 ENIs carrying 1,000 rules each must compile in under 5 s.

Each interface is in 10 of 200 basic groups of 100 rules, so nearly every
interface has its own group set: the compiler must merge 10,000 distinct rule
lists of 1,000 rows. Loading and validating the configuration is not timed.
Run: `python -m pytest bench/bench_compile.py --benchmark-only` or `python bench/bench_compile.py`.
"""
from __future__ import annotations

import time

import flowsim
from flowsim.engine.compiler import compile_tables
from flowsim.testing.randomconfig import Shape, random_config

SHAPE = Shape(groups=200, rules_per_group=100, enis=10_000, groups_per_eni=10, advanced_share=0.0,
              priorities=100, ipv6_share=0.1, group_peer_share=0.05, prefix_list_share=0.0, quintuple_share=0.05)


def big_config():
    mapping = random_config(5, SHAPE)
    for eni in mapping["interfaces"].values():  # exactly 10 groups each: 1,000 rules per interface
        eni["security_groups"] = (eni["security_groups"] + [g for g in mapping["security_groups"]
                                                            if g not in eni["security_groups"]])[:10]
    return flowsim.load_config(mapping)


def bench_compile_10k_enis_1k_rules(benchmark):
    config = big_config()
    tables = benchmark.pedantic(compile_tables, args=(config,), rounds=3, iterations=1)
    benchmark.extra_info.update(enis=len(config.interfaces), profiles=tables.n_profiles,
                                rows=int(len(tables.scan[1])), table_bytes=tables.nbytes)


if __name__ == "__main__":
    started = time.perf_counter()
    config = big_config()
    print(f"load+validate {time.perf_counter() - started:.2f}s")
    compile_tables(config)  # JIT of the table builders
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        tables = compile_tables(config)
        best = min(best, time.perf_counter() - started)
    print(f"compile {len(config.interfaces)} ENIs, {tables.n_profiles} group sets, {len(tables.scan[1]):,} rule slots: "
          f"{best:.2f}s, {tables.nbytes / 2**20:.0f} MiB")
