"""ClassBench classification throughput (issue 6): lookups/s per core, build time, memory.

Run: `python -m pytest bench/bench_classbench.py --benchmark-only` (pytest-benchmark), or
`python bench/bench_classbench.py [--rounds N] [--sets a,b]` for a plain table (the
README figures).  Parsing, building and JIT warm-up stay outside the timed region; each
timed round classifies the whole trace, repeated to at least REPEAT_MIN lookups, and the
rate is taken from the fastest round (the least disturbed by other processes).

Reference figures (best of HyperSplit, CutSplit, PartitionSort and TupleMerge, C -O3,
single thread, measured on this machine): acl1_1k 21.7, acl1_10k 7.1, fw1_10k 20.6,
ipc1_10k 8.7, acl1_100k 6.6 M lookups/s.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import results  # noqa: E402

from flowsim.engine.classifier import build  # noqa: E402
from flowsim.io.classbench import read_rules, read_trace  # noqa: E402
from flowsim.tools.bench import C_BEST_1_THREAD, best_rate  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "classbench"
SETS = ["acl1_1k", "fw1_1k", "ipc1_1k", "acl1_10k", "fw1_10k", "ipc1_10k", "acl1_100k"]
C_BEST = C_BEST_1_THREAD
REPEAT_MIN = 1_000_000
_cache: dict = {}


def load(name: str):
    if name not in _cache:
        rules, trace = DATA / name, DATA / f"{name}_trace"
        if not rules.exists() or not trace.exists():
            pytest.skip(f"ClassBench data not found under {DATA}")
        lo, hi = read_rules(rules)
        keys = read_trace(trace)
        clf = build(lo, hi)
        clf = build(lo, hi)               # the second build is JIT-warm: report its time
        _cache[name] = (clf, keys)
    return _cache[name]


def set_threads(threads: int) -> int:
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)
    return threads


def make_runner(clf, keys):
    """One lookup call over the trace repeated to at least REPEAT_MIN packets (so that the
    per-call cost of starting the parallel region is negligible)."""
    reps = max(1, -(-REPEAT_MIN // len(keys)))
    keys = np.ascontiguousarray(np.tile(keys, (reps, 1)))
    out = np.empty(len(keys), np.int32)
    clf.lookup(keys, out=out)             # warm the JIT

    def run():
        return clf.lookup(keys, out=out)
    return run, len(keys)


def measure(clf, keys, threads: int, rounds: int = 15) -> float:
    """Lookups per second (all threads together), fastest of `rounds` rounds."""
    set_threads(threads)
    run, n = make_runner(clf, keys)
    return best_rate(run, n, rounds)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", SETS)
def bench_classbench(benchmark, name, threads):
    clf, keys = load(name)
    threads = set_threads(threads)
    run, n = make_runner(clf, keys)
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    rate = n / benchmark.stats.stats.min
    benchmark.extra_info.update(set=name, rules=clf.n_rules, packets=len(keys), threads=threads,
                                lookups_per_s=rate, lookups_per_s_per_core=rate / threads,
                                build_s=clf.build_seconds, structure_bytes=clf.nbytes,
                                c_best_per_core=C_BEST.get(name))


@pytest.mark.parametrize("rules", [10, 100, 1_000, 10_000, 100_000])
def bench_rule_count(benchmark, rules):
    """acl1_100k truncated to its first N rules, classified against the acl1_100k trace."""
    lo, hi = read_rules(DATA / "acl1_100k") if (DATA / "acl1_100k").exists() else pytest.skip("no data")
    keys = read_trace(DATA / "acl1_100k_trace")
    build(lo[:rules], hi[:rules])
    clf = build(lo[:rules], hi[:rules])
    set_threads(1)
    run, n = make_runner(clf, keys)
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    rate = n / benchmark.stats.stats.min
    benchmark.extra_info.update(rules=rules, lookups_per_s=rate, build_s=clf.build_seconds,
                                structure_bytes=clf.nbytes)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--scaling", action="store_true", help="also rule counts 10..100,000 (acl1_100k prefixes)")
    args = ap.parse_args(argv)
    print(f"{'set':10} {'rules':>7} {'build s':>8} {'MiB':>7} {'1 thread M/s':>13} {'2 threads M/s':>14} "
          f"{'2T/1T':>6} {'C best M/s':>11}")
    rows = []
    for name in args.sets.split(","):
        clf, keys = load(name)
        one = measure(clf, keys, 1, args.rounds)
        two = measure(clf, keys, 2, args.rounds)
        c = C_BEST.get(name)
        print(f"{name:10} {clf.n_rules:7d} {clf.build_seconds:8.3f} {clf.nbytes / 2**20:7.2f} {one / 1e6:13.2f} "
              f"{two / 1e6:14.2f} {two / one:6.2f} {'' if c is None else f'{c:11.1f}'}", flush=True)
        rows.append([name, clf.n_rules, f"{clf.build_seconds:.3f} s", f"{clf.nbytes / 2**20:.2f} MiB", one / 1e6,
                     two / 1e6, two / one, "" if c is None else f"{c:.1f}"])
    results.save("classbench", f"python bench/bench_classbench.py --rounds {args.rounds}",
                 ["set", "rules", "build", "structure", "1 thread (M/s)", "2 threads (M/s)", "2 threads / 1",
                  "best C, 1 thread (M/s)"], rows)
    if args.scaling:
        lo, hi = read_rules(DATA / "acl1_100k")
        keys = read_trace(DATA / "acl1_100k_trace")
        print(f"\n{'rules':>7} {'build s':>8} {'MiB':>7} {'1 thread M/s':>13}   (acl1_100k prefixes, acl1_100k trace)")
        for n in (10, 100, 1_000, 10_000, 100_000):
            build(lo[:n], hi[:n])
            clf = build(lo[:n], hi[:n])
            one = measure(clf, keys, 1, max(3, args.rounds // 3))
            print(f"{n:7d} {clf.build_seconds:8.3f} {clf.nbytes / 2**20:7.2f} {one / 1e6:13.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
