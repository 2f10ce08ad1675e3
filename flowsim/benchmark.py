"""`flowsim bench`: how fast flowsim classifies a user's configuration or a ClassBench rule set.

Parsing, building and JIT warm-up stay outside the timed region; the work is
repeated until each timed round covers at least a million lookups, and the
fastest of several rounds is reported (the one least disturbed by other work).
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from .outputs import Output, writing

MIN_ITEMS = 1_000_000


@dataclass
class BenchResult:
    """One measurement, with the names `--json` promises."""

    kind: str
    rules: int
    flows: int
    build_s: float
    lookups_per_s: float
    threads: int
    rounds: int
    structure_bytes: int

    @property
    def per_core(self) -> float:
        return self.lookups_per_s / self.threads

    def to_dict(self) -> dict:
        out = asdict(self)
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


def bench_config(config_path: str, flows: int, threads: int | None, rounds: int, seed: int = 0) -> BenchResult:
    """Path-mode throughput of a configuration on synthetic flows aimed at it."""
    from .compiler import compile_tables
    from .config import load_config
    from .engine import Engine, set_threads
    from .flows import prepare_flows
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
    return BenchResult("config", config.rule_count, flows, build_s, rate, threads, rounds, tables.nbytes)


def bench_classbench(rules_path: str, trace_path: str, threads: int | None, rounds: int,
                     matches: str | Output | None = None) -> BenchResult:
    """First-match throughput on a ClassBench filter set and trace; optionally writes each packet's match."""
    from .classbench import read_rules, read_trace
    from .classifier import build
    from .engine import set_threads
    from .errors import InputError

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
    return BenchResult("classbench", clf.n_rules, len(keys), clf.build_seconds, rate, threads, rounds, clf.nbytes)
