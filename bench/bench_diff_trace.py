"""`flowsim diff OLD NEW --trace T` throughput (issue 20): a 10 M-record Parquet trace at ≥ 1.5 M records/s on
one core in process (two evaluations and two session passes per record), memory bounded by live sessions.

OLD is the replay benchmark's configuration (1,000 ENIs, 100 rules each), NEW a copy with 10 rules changed
(their actions flipped); the trace is the replay benchmark's (bench_replay.timestamped_trace), generated once
into the cache folder (FLOWSIM_BENCH_DIR). Figures, all on one thread (numba and Arrow):
- in process: `diff_trace(old, new, trace, threads=1)` after a warm-up diff (JIT compiled), both
  configurations compiled outside the timed region; the time covers reading and decoding the trace, both
  evaluations, both session passes, the comparison and both summaries. Rounds alternate with a plain
  `replay(old, trace, threads=1)` so that the two are judged on the same machine load; every round is
  reported (the machine may be shared), with the best; then one round of `diff_trace(..., at=T)`, NEW
  deployed halfway through the trace (its live sessions re-evaluated);
- end to end: one `flowsim diff --trace --threads 1` process (start, cached configurations, cached JIT code),
  with its peak RSS, at 1 M and 10 M records: memory follows the live sessions, not the trace's length.
Run: `python bench/bench_diff_trace.py [--rounds N]` or `python -m pytest bench/bench_diff_trace.py --benchmark-only -s`.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_query import CACHE, run_flowsim  # noqa: E402
from bench_replay import timestamped_trace  # noqa: E402

CHANGED_RULES = 10


def edited_config(config: Path) -> Path:
    """A copy of the configuration with CHANGED_RULES rules' actions flipped (seeded)."""
    path = CACHE / f"{config.stem}-{CHANGED_RULES}-flipped.yaml"
    if not path.exists():
        mapping = yaml.safe_load(config.read_text())
        rules = [r for g in mapping["security_groups"].values() for r in g["rules"]]
        for rule in random.Random(5).sample(rules, CHANGED_RULES):
            rule["action"] = "drop" if rule.get("action", "accept") == "accept" else "accept"
        path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


def in_process(config: Path, edited: Path, trace: Path, rounds: int) -> dict:
    """Seconds of each single-threaded diff and replay round (alternating), after a warm-up of each."""
    import flowsim
    from flowsim.batch.replay import replay
    from flowsim.batch.tracediff import diff_trace

    old, new = flowsim.compile(flowsim.load_config(config)), flowsim.compile(flowsim.load_config(edited))
    result = diff_trace(old, new, str(trace), threads=1)
    replay(old, str(trace), threads=1)
    diffs, replays = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        result = diff_trace(old, new, str(trace), threads=1)
        diffs.append(time.perf_counter() - started)
        assert result.old.evaluated == result.new.evaluated == result.records
        started = time.perf_counter()
        replay(old, str(trace), threads=1)
        replays.append(time.perf_counter() - started)
    import pyarrow.parquet as pq

    times = pq.read_table(trace, columns=["time"]).column("time")
    at = float(times[len(times) // 2].as_py())
    started = time.perf_counter()
    deployed = diff_trace(old, new, str(trace), threads=1, at=at)
    return {"diff_seconds": diffs, "replay_seconds": replays, "changed": result.changed,
            "transitions": len(result.transitions), "records": result.records,
            "at_seconds": time.perf_counter() - started, "at_change": deployed.new.changes[0], "at_changed": deployed.changed}


def end_to_end(config: Path, edited: Path, trace: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one `flowsim diff --trace` process on one thread."""
    return run_flowsim(["diff", str(config), str(edited), "--trace", str(trace), "-q", "--threads", "1"])


def _measure(n: int, rounds: int) -> dict:
    config, trace = timestamped_trace(n)
    edited = edited_config(config)
    out = in_process(config, edited, trace, rounds)
    end_to_end(config, edited, trace)  # warm the configuration cache
    seconds, peak = end_to_end(config, edited, trace)
    best = min(out["diff_seconds"])
    return {**out, "threads": 1, "best_diff_per_s": n / best, "best_replay_per_s": n / min(out["replay_seconds"]),
            "process_seconds": seconds, "process_per_s": n / seconds, "peak_rss_mib": peak}


@pytest.mark.parametrize("n", [1_000_000, 10_000_000])
def bench_diff_trace(benchmark, n):
    result = benchmark.pedantic(_measure, args=(n, 3), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(result)


if __name__ == "__main__":
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    for n in (1_000_000, 10_000_000):
        r = _measure(n, rounds)
        diffs = ", ".join(f"{s:.2f}" for s in r["diff_seconds"])
        replays = ", ".join(f"{s:.2f}" for s in r["replay_seconds"])
        print(f"{n:>11,} records, 1 thread, {r['changed']:,} change verdict ({r['transitions']} transitions): "
              f"diff in process {diffs} s (best {r['best_diff_per_s'] / 1e6:.2f} M records/s); one replay "
              f"{replays} s (best {r['best_replay_per_s'] / 1e6:.2f} M records/s); diff process "
              f"{r['process_seconds']:.2f} s = {r['process_per_s'] / 1e6:.2f} M records/s, peak RSS {r['peak_rss_mib']:.0f} MiB")
        c = r["at_change"]
        print(f"{'':>11}  --at {c['time']:.1f}: {r['at_seconds']:.2f} s = {n / r['at_seconds'] / 1e6:.2f} M records/s, "
              f"{c['live']:,} live sessions re-evaluated, {c['closed']:,} closed, {r['at_changed']:,} records change verdict")
