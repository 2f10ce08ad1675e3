"""Engine throughput (issue 3): flows/s versus rules per ENI, flow count, groups per ENI, ENI count, threads.

Run: `python -m pytest bench/bench_engine.py --benchmark-only` (pytest-benchmark),
or `python bench/bench_engine.py` for a plain table. Parsing, compiling and JIT
warm-up stay outside the timed region; figures are flows per second per core.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_workloads import engine_for, flows_for, set_threads  # noqa: E402

from flowsim.benchmark import best_rate  # noqa: E402

N_FLOWS = 1_000_000


def _run(benchmark, rules: int, n: int, threads: int, enis: int = 1000, groups_per_eni: int = 2) -> None:
    engine = engine_for(rules, enis, groups_per_eni)
    flows = flows_for(rules, n, enis, groups_per_eni)
    threads = set_threads(threads)
    engine.evaluate_arrays(flows)  # warm the JIT
    benchmark.pedantic(engine.evaluate_arrays, args=(flows,), rounds=5, iterations=1, warmup_rounds=1)
    rate = n / benchmark.stats.stats.min
    benchmark.extra_info.update(flows=n, threads=threads, rules_per_eni=rules, enis=enis,
                                groups_per_eni=groups_per_eni, flows_per_s=rate, flows_per_s_per_core=rate / threads)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("rules", [10, 100, 1000])
def bench_rules_per_eni(benchmark, rules, threads):
    _run(benchmark, rules, N_FLOWS, threads)


@pytest.mark.parametrize("n", [100_000, 1_000_000, 10_000_000])
def bench_flow_count(benchmark, n):
    _run(benchmark, 100, n, 1)


@pytest.mark.parametrize("groups_per_eni", [1, 5, 10])
def bench_groups_per_eni(benchmark, groups_per_eni):
    _run(benchmark, 100, N_FLOWS, 1, groups_per_eni=groups_per_eni)


@pytest.mark.parametrize("enis", [100, 1000, 10_000])
def bench_eni_count(benchmark, enis):
    _run(benchmark, 100, N_FLOWS, 1, enis=enis)


def main() -> None:
    print(f"{'rules/ENI':>9} {'threads':>7} {'flows':>9} {'M flows/s':>10} {'M flows/s/core':>15}")
    for threads in (1, 2):  # every one-thread row first: idle worker threads of a parallel run would share the machine
        threads = set_threads(threads)
        for rules in (10, 100, 1000):
            engine, flows = engine_for(rules), flows_for(rules, N_FLOWS)
            rate = best_rate(lambda: engine.evaluate_arrays(flows), len(flows), 5)
            print(f"{rules:>9} {threads:>7} {len(flows):>9} {rate / 1e6:>10.2f} {rate / threads / 1e6:>15.2f}")


if __name__ == "__main__":
    main()
