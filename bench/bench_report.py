"""What `--report` adds to a replay (issue 22): under 1 s on the bundled example, under 5 s on a 10 M-record
Parquet trace, and the report's size (under 2 MB).

In process, one thread, JIT warm, configuration compiled outside the timing; replays with and without the
report's recorder alternate (the order swapped each round) and the best of each is compared; the report's
time includes recording every chunk, building the page and writing it.
Run: `python bench/bench_report.py [--records N] [--rounds R]` or `python -m pytest bench/bench_report.py -s`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]


def measure(config: Path, trace: Path, rounds: int) -> dict:
    import flowsim
    from flowsim.batch.replay import replay
    from flowsim.report import ReplayRecorder, replay_report, write_report

    engine = flowsim.compile(flowsim.load_config(config))
    out = Path(tempfile.mkdtemp()) / "report.html"

    def plain() -> None:
        replay(engine, str(trace), threads=1)

    def reported() -> None:
        recorder = ReplayRecorder()
        summary = replay(engine, str(trace), threads=1, observe=recorder.observe)
        write_report(str(out), replay_report(summary, recorder))

    plain(), reported()  # JIT warm-up of both paths
    times: dict[str, list[float]] = {"plain": [], "report": []}
    pair = [("plain", plain), ("report", reported)]
    for r in range(rounds):
        for name, run in (pair if r % 2 == 0 else pair[::-1]):
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    best = {k: min(v) for k, v in times.items()}
    return {"trace": trace.name, "plain_s": best["plain"], "report_s": best["report"],
            "added_s": best["report"] - best["plain"], "report_bytes": out.stat().st_size, "rounds": rounds}


def show(r: dict) -> str:
    return (f"{r['trace']}: replay {r['plain_s']:.2f} s, with --report {r['report_s']:.2f} s "
            f"(+{r['added_s']:.2f} s, best of {r['rounds']}, order alternated), report {r['report_bytes'] / 1024:.0f} KiB")


def bench_report_example(benchmark):
    result = benchmark.pedantic(measure, args=(ROOT / "traces/example.yaml", ROOT / "traces/example-flowlog.csv", 5),
                                rounds=1, iterations=1)
    print(show(result))


def bench_report_10m(benchmark):
    from bench_replay import timestamped_trace

    config, trace = timestamped_trace(10_000_000)
    result = benchmark.pedantic(measure, args=(config, trace, 3), rounds=1, iterations=1)
    print(show(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(show(measure(ROOT / "traces/example.yaml", ROOT / "traces/example-flowlog.csv", 5)))
    from bench_replay import timestamped_trace

    config, trace = timestamped_trace(args.records)
    print(show(measure(config, trace, args.rounds)))
