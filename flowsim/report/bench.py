"""The bench report: throughput against threads and rule count, and ClassBench beside the C classifiers."""
from __future__ import annotations

from typing import Any

from ..model.words import counted
from . import page, svg


def bench_report(result: Any) -> str:
    """The report's HTML for a `flowsim bench` result measured with its sweeps."""
    from ..tools.bench import C_BEST_1_THREAD

    r = result
    unit = "packets" if r.kind == "classbench" else "flows"
    headline = page.tiles([
        ("rules", r.rules), (unit, r.flows), ("threads", r.threads),
        ("M lookups/s", f"{r.lookups_per_s / 1e6:.2f}"), ("M lookups/s per core", f"{r.per_core / 1e6:.2f}"),
        ("build", f"{r.build_s:.3f} s"), ("structure", f"{r.structure_bytes / 2 ** 20:.2f} MiB")])
    headline += page.empty(f"Fastest of {counted(r.rounds, 'timed round')}, each of at least a million lookups; parsing, "
                           "building and JIT warm-up are outside the timing.")
    sections = [("Measurement", headline)]
    if r.by_threads:
        xs = [t for t, _ in r.by_threads]
        chart = svg.lines(xs, {"M lookups/s": [v / 1e6 for _, v in r.by_threads],
                               "per core": [v / 1e6 / t for t, v in r.by_threads]},
                          "Throughput against threads", "threads", "M lookups/s")
        sections.append(("Threads", page.figure(chart, "lookups per second, all threads together and per core")
                         + page.table(["threads", "M lookups/s", "per core"],
                                      [(t, v / 1e6, v / 1e6 / t) for t, v in r.by_threads], numeric=[0, 1, 2])))
    if r.by_rules:
        xs = [k for k, _ in r.by_rules]
        chart = svg.lines(xs, {"M lookups/s": [v / 1e6 for _, v in r.by_rules]},
                          "Throughput against rule count", "rules", "M lookups/s (1 thread)")
        what = "the set's first rules" if r.kind == "classbench" else "the first rules of every group"
        sections.append(("Rule count", page.figure(chart, f"one thread, on {what}")
                         + page.table(["rules", "M lookups/s"], [(k, v / 1e6) for k, v in r.by_rules], numeric=[0, 1])))
    if r.kind == "classbench":
        stem = r.name.split(".")[0]
        one = dict(r.by_threads).get(1, r.lookups_per_s if r.threads == 1 else None)
        mine = f"{one / 1e6:.2f}" if one else f"{r.per_core / 1e6:.2f} per core"
        rows = [(name, f"{c:.1f}", mine if name == stem else "") for name, c in C_BEST_1_THREAD.items()]
        note = ("The best of the published C classifiers (HyperSplit, CutSplit, PartitionSort, TupleMerge at -O3, one "
                "thread) as measured on this project's machines; this run's one-thread figure stands beside its set.")
        if stem not in C_BEST_1_THREAD:
            note += f" No C figure was measured for {stem}."
        sections.append(("Beside the C classifiers", page.table(["set", "best C, M/s (1 thread)", "flowsim, M/s (1 thread)"], rows,
                                                                 numeric=[1, 2]) + page.empty(note)))
    kind = "ClassBench set" if r.kind == "classbench" else "configuration"
    return page.document("flowsim bench report", f"{kind} {r.name}: {counted(r.rules, 'rule')}", sections)
