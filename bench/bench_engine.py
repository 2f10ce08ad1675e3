"""Engine throughput (issues 3, 6): flows/s versus rules per ENI, flow count, groups per ENI, ENI count, threads,
and ClassBench rule sets as one security group (long row lists, searched by the list classifier or by a scan).

Run: `python -m pytest bench/bench_engine.py --benchmark-only` (pytest-benchmark),
or `python bench/bench_engine.py` for a plain table. Parsing, compiling and JIT
warm-up stay outside the timed region; figures are flows per second per core.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402
from engine_workloads import classbench_group, engine_for, flows_for, set_threads  # noqa: E402

from flowsim.engine.compiler import compile_tables  # noqa: E402
from flowsim.engine.engine import Engine  # noqa: E402
from flowsim.tools.bench import best_rate  # noqa: E402

N_FLOWS = 1_000_000
CLASSBENCH_SETS = ["acl1_1k", "fw1_1k", "ipc1_1k", "acl1_10k", "fw1_10k", "ipc1_10k", "acl1_100k"]
SCAN_LIMIT = 10_000  # rules: past this a scan of the whole list takes too long to time


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


def _classbench_engines(name: str) -> tuple:
    """The ClassBench group's engine with list classifiers, the same with every list scanned, and its flows."""
    workload = classbench_group(name)
    if workload is None:
        pytest.skip(f"ClassBench data not found for {name}")
    engine, flows = workload
    return engine, Engine(engine.config, compile_tables(engine.config, long_list=10**9)), flows


@pytest.mark.parametrize("search", ["classifier", "scan"])
@pytest.mark.parametrize("name", CLASSBENCH_SETS)
def bench_classbench_group(benchmark, name, search):
    classified, scanned, flows = _classbench_engines(name)
    if search == "scan" and len(classified.rules) > SCAN_LIMIT:
        pytest.skip("a scan of this list takes too long to time")
    engine = classified if search == "classifier" else scanned
    threads = set_threads(1)
    engine.evaluate_arrays(flows)  # warm the JIT
    benchmark.pedantic(engine.evaluate_arrays, args=(flows,), rounds=5, iterations=1, warmup_rounds=1)
    rate = len(flows) / benchmark.stats.stats.min
    benchmark.extra_info.update(flows=len(flows), threads=threads, rules=len(engine.rules), search=search,
                                flows_per_s=rate, flows_per_s_per_core=rate)


def main() -> None:
    print(f"{'rules/ENI':>9} {'threads':>7} {'flows':>9} {'M flows/s':>10} {'M flows/s/core':>15}")
    rates: dict[tuple[int, int], float] = {}
    for threads in (1, 2):  # every one-thread row first: idle worker threads of a parallel run would share the machine
        threads = set_threads(threads)
        for rules in (10, 100, 1000):
            engine, flows = engine_for(rules), flows_for(rules, N_FLOWS)
            rate = best_rate(lambda: engine.evaluate_arrays(flows), len(flows), 5)
            print(f"{rules:>9} {threads:>7} {len(flows):>9} {rate / 1e6:>10.2f} {rate / threads / 1e6:>15.2f}")
            rates[rules, threads] = rate / 1e6
    results.save("engine", "python bench/bench_engine.py",
                 ["rules per ENI", "1 thread (M flows/s)", "2 threads (M flows/s)", "per core, 2 threads"],
                 [[r, rates[r, 1], rates.get((r, 2)), rates[r, 2] / 2 if (r, 2) in rates else None] for r in (10, 100, 1000)],
                 "Best of 5 rounds of 1 M flows.")
    threads = set_threads(1)
    print("\nClassBench rule sets as one security group's inbound rules, endpoint mode, one thread")
    print(f"{'set':>10} {'rules':>7} {'flows':>9} {'classifier M/s':>15} {'scan M/s':>9}")
    rows = []
    for name in CLASSBENCH_SETS:
        if classbench_group(name) is None:
            print(f"{name:>10}  skipped: ClassBench data not found")
            continue
        classified, scanned, flows = _classbench_engines(name)
        rates = []
        for engine in (classified, scanned):
            if engine is scanned and len(engine.rules) > SCAN_LIMIT:
                rates.append(float("nan"))
                continue
            rates.append(best_rate(lambda: engine.evaluate_arrays(flows), len(flows), 5) / 1e6)
        print(f"{name:>10} {len(classified.rules):>7} {len(flows):>9} {rates[0]:>15.2f} {rates[1]:>9.2f}")
        rows.append([name, len(classified.rules), rates[0], rates[1]])
    if rows:
        results.save("engine-classbench", "python bench/bench_engine.py",
                     ["set", "rules", "list classifier (M flows/s)", "scan (M flows/s)"], rows, "One thread, best of 5.")


if __name__ == "__main__":
    main()
