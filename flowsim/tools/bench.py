"""`flowsim bench`: how fast flowsim classifies a user's configuration or a ClassBench rule set.

Parsing, building and JIT warm-up stay outside the timed region; the work is
repeated until each timed round covers at least a million lookups, and the
fastest of several rounds is reported (the one least disturbed by other work).
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..io.outputs import Output, writing

MIN_ITEMS = 1_000_000
# The best of the published C classifiers (HyperSplit, CutSplit, PartitionSort, TupleMerge; -O3, one
# thread) on the ClassBench sets, in M lookups/s, measured on this project's machines.
C_BEST_1_THREAD = {"acl1_1k": 21.7, "acl1_10k": 7.1, "fw1_10k": 20.6, "ipc1_10k": 8.7, "acl1_100k": 6.6}
SWEEP_FRACTIONS = (0.125, 0.25, 0.5, 1.0)  # of the rules, for a report's throughput-against-rules figure


@dataclass
class BenchResult:
    """One measurement, with the names `--json` promises; `sweep` is filled for a report."""

    kind: str
    rules: int
    flows: int
    build_s: float
    lookups_per_s: float
    threads: int
    rounds: int
    structure_bytes: int
    name: str = ""
    by_threads: list[tuple[int, float]] = field(default_factory=list)  # (threads, lookups/s)
    by_rules: list[tuple[int, float]] = field(default_factory=list)  # (rules, lookups/s on one thread)

    @property
    def per_core(self) -> float:
        return self.lookups_per_s / self.threads

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("by_threads", "by_rules") or v}
        out["lookups_per_s_per_core"] = self.per_core
        if self.kind == "classbench":
            out["packets"] = self.flows
        return out

    def __str__(self) -> str:
        unit = "packets" if self.kind == "classbench" else "flows"
        return "\n".join([
            f"{'rules':>22}  {self.rules:,}",
            f"{unit:>22}  {self.flows:,}",
            f"{'build':>22}  {self.build_s:.3f} s ({self.structure_bytes / 2**20:.1f} MiB)",
            f"{'threads':>22}  {self.threads}",
            f"{'lookups/s':>22}  {self.lookups_per_s / 1e6:.2f} M ({self.per_core / 1e6:.2f} M per core, best of {self.rounds})",
        ])


def best_rate(run: Callable[[], object], items: int, rounds: int) -> float:
    """Items per second of the fastest of `rounds` timed calls (after one untimed warm-up call)."""
    run()
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return items / best


def bench_config(config_path: str, flows: int, threads: int | None, rounds: int, seed: int = 0,
                 sweep: bool = False) -> BenchResult:
    """Path-mode throughput of a configuration on synthetic flows aimed at it; with `sweep`, also on
    1..threads threads and on the first 1/8, 1/4, 1/2 of every group's rules (one thread)."""
    from ..config.loader import load_config
    from ..engine.compiler import compile_tables
    from ..engine.engine import Engine, set_threads
    from ..io.flows import prepare_flows
    from .synth import synthesize

    config = load_config(config_path)
    compile_tables(config)  # JIT warm-up of the builders
    started = time.perf_counter()
    tables = compile_tables(config)
    build_s = time.perf_counter() - started
    engine = Engine(config, tables)
    prepared = prepare_flows(synthesize(config, flows, seed=seed))
    threads = set_threads(threads)
    reps = max(1, -(-MIN_ITEMS // max(1, flows)))
    rate = best_rate(lambda: [engine.evaluate_arrays(prepared) for _ in range(reps)], reps * flows, rounds)
    result = BenchResult("config", config.rule_count, flows, build_s, rate, threads, rounds, tables.nbytes,
                         name=Path(config_path).name)
    if sweep:
        def timed(eng: Engine, t: int) -> float:
            set_threads(t)
            return best_rate(lambda: [eng.evaluate_arrays(prepared) for _ in range(reps)], reps * flows, rounds)

        result.by_threads = [(t, rate if t == threads else timed(engine, t)) for t in range(1, threads + 1)]
        for fraction in SWEEP_FRACTIONS:
            part = replace(config, groups={gid: replace(g, rules=g.rules[:max(1, round(len(g.rules) * fraction))]
                                                        if g.rules else ()) for gid, g in config.groups.items()})
            result.by_rules.append((part.rule_count, timed(Engine(part, compile_tables(part)), 1)))
        set_threads(threads)
    return result


def bench_classbench(rules_path: str, trace_path: str, threads: int | None, rounds: int,
                     matches: str | Output | None = None, sweep: bool = False) -> BenchResult:
    """First-match throughput on a ClassBench filter set and trace; optionally writes each packet's match.
    With `sweep`, also on 1..threads threads and on the set's first 1/8, 1/4, 1/2 rules (one thread)."""
    from ..engine.classifier import build
    from ..engine.engine import set_threads
    from ..errors import InputError
    from ..io.classbench import read_rules, read_trace

    lo, hi = read_rules(rules_path)
    keys = read_trace(trace_path)
    build(lo, hi)  # JIT warm-up of the builders
    clf = build(lo, hi)
    threads = set_threads(threads)
    reps = max(1, -(-MIN_ITEMS // max(1, len(keys))))
    repeated = np.ascontiguousarray(np.tile(keys, (reps, 1)))
    out = np.empty(len(repeated), np.int32)
    rate = best_rate(lambda: clf.lookup(repeated, out=out), len(repeated), rounds)
    if matches:
        with writing(matches, "--matches", [("rules", rules_path), ("trace", trace_path)]) as target:
            try:
                np.savetxt(sys.stdout.buffer if target.stdout else target.path, clf.lookup(keys), fmt="%d")
            except OSError as exc:
                raise InputError(target.problem(f"cannot write matches: {exc.strerror or exc}")) from None
    result = BenchResult("classbench", clf.n_rules, len(keys), clf.build_seconds, rate, threads, rounds, clf.nbytes,
                         name=Path(rules_path).name)
    if sweep:
        def timed(c, t: int) -> float:
            set_threads(t)
            return best_rate(lambda: c.lookup(repeated, out=out), len(repeated), rounds)

        result.by_threads = [(t, rate if t == threads else timed(clf, t)) for t in range(1, threads + 1)]
        for fraction in SWEEP_FRACTIONS:
            k = max(1, round(len(lo) * fraction))
            result.by_rules.append((k, timed(build(lo[:k], hi[:k]), 1)))
        set_threads(threads)
    return result
