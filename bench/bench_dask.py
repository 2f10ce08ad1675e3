"""`query --dask` and `replay --dask` (issue 21): a 10 M-record Parquet dataset in 8 parts, on local:1 and local:2.

The dataset is the replay benchmark's timestamped trace (bench_replay.timestamped_trace: synthetic flows
aimed at a configuration of 1,000 ENIs with 100 rules each, a third of them replies) cut into 8 files of
consecutive times, generated once into FLOWSIM_BENCH_DIR. A LocalCluster of 1 and one of 2 worker
processes (one thread each) are started side by side, their start times reported on their own; the commands
reach them by address. Each command is run once on a small dataset first (workers load flowsim and its
compiled kernels), then timed in FLOWSIM_DASK_BENCH_ROUNDS rounds (5), the order alternating from round to
round, from its first task to its last (the client's connection excluded):
- query: every part evaluated into a folder of Parquet parts;
- replay: the summary only; the time splits into the map stage (read, hash, split) and the shard stage
  (move the pieces, sort, replay); the shuffle's share is the hashing and splitting, the transfers
  between workers (Dask's task stream) and the sorting of each shard, of the workers' busy time.
One-process replay (`replay(engine, DATASET, threads=1)`, warm) is timed beside them.
Run: `python bench/bench_dask.py` (or `python -m pytest bench/bench_dask.py --benchmark-only -s`).
"""
from __future__ import annotations

import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_query import CACHE  # noqa: E402
from bench_replay import timestamped_trace  # noqa: E402

RECORDS = int(os.environ.get("FLOWSIM_DASK_BENCH_RECORDS", 10_000_000))
PARTS = 8


def dataset(n: int = RECORDS, parts: int = PARTS) -> tuple[Path, Path]:
    """(configuration, folder of `parts` Parquet files holding the n-record trace in time order)."""
    import pyarrow.parquet as pq

    config, trace = timestamped_trace(n)
    folder = CACHE / f"dask-{n}-{parts}"
    if not (folder / f"part-{parts - 1}.parquet").exists():
        folder.mkdir(parents=True, exist_ok=True)
        table = pq.read_table(trace)
        size = -(-n // parts)
        for k in range(parts):
            pq.write_table(table.slice(k * size, size), folder / f"part-{k}.parquet", row_group_size=1 << 20)
    return config, folder


def _busy(stream: list[dict]) -> dict[str, float]:
    """Seconds the workers spent per kind of work, from Dask's task stream."""
    out = {"transfer": 0.0, "compute": 0.0}
    for task in stream:
        for part in task.get("startstops", ()):
            kind = "transfer" if part["action"] == "transfer" else "compute" if part["action"] == "compute" else None
            if kind:
                out[kind] += part["stop"] - part["start"]
    return out


ROUNDS = int(os.environ.get("FLOWSIM_DASK_BENCH_ROUNDS", 5))


class Cluster:
    """A started LocalCluster of `workers` single-threaded worker processes, with its start time."""

    def __init__(self, workers: int) -> None:
        from distributed import Client, LocalCluster

        started = time.perf_counter()
        self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                                    scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR)
        self.client = Client(self.cluster)
        self.start_seconds = time.perf_counter() - started
        self.workers, self.address = workers, self.cluster.scheduler_address

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


def time_query(engine, config: Path, data: Path, cluster: Cluster) -> float:
    from flowsim.batch.distributed import query_dask

    out = CACHE / f"dask-out-{os.getpid()}"
    try:
        stats, _ = query_dask(engine, str(config), str(data), str(out), cluster.address)
        assert stats.rows == RECORDS
        return stats.seconds
    finally:
        shutil.rmtree(out, ignore_errors=True)


def time_replay(engine, config: Path, data: Path, cluster: Cluster) -> dict:
    from distributed import get_task_stream

    from flowsim.batch.distributed import replay_dask

    with get_task_stream(client=cluster.client) as stream:
        result = replay_dask(engine, str(config), str(data), None, cluster.address)
    busy = _busy(stream.data)
    split = sum(m.split_seconds for m in result.map_results)
    sort = sum(r.sort_seconds for r in result.shard_results)
    shuffle = split + busy["transfer"] + sort
    return {"replay_s": result.summary.seconds, "replay_map_s": result.map_seconds,
            "replay_shard_s": result.shard_seconds, "shards": result.shards,
            "shuffle_s": shuffle, "shuffle_share": shuffle / max(busy["compute"] + busy["transfer"], 1e-9),
            "split_s": split, "transfer_s": busy["transfer"], "sort_s": sort, "summary": result.summary}


def one_process_replay(engine, data: Path) -> tuple[float, object]:
    from flowsim.batch.replay import replay

    started = time.perf_counter()
    summary = replay(engine, str(data), threads=1)
    return time.perf_counter() - started, summary


def run(rounds: int = ROUNDS) -> dict:
    """`rounds` rounds, each timing query and replay on local:1 and local:2 and the one-process replay, the
    order alternating from round to round; both clusters stay started (idle between their commands), so
    the machine's drift falls on both sides alike."""
    import pyarrow.parquet as pq

    from flowsim.batch.distributed import query_dask, replay_dask
    from flowsim.batch.replay import replay
    from flowsim.engine.cache import load_engine

    logging.getLogger("distributed").setLevel(logging.ERROR)  # (closing clusters would log each step)
    config, data = dataset()
    load = os.getloadavg()
    warm = CACHE / "dask-warm"
    if not warm.exists():
        warm.mkdir(parents=True)
        pq.write_table(pq.read_table(data / "part-0.parquet").slice(0, 20_000), warm / "part-0.parquet")
    engine = load_engine(config)
    replay(engine, str(data / "part-0.parquet"), threads=1)  # warm
    clusters = {n: Cluster(n) for n in (1, 2)}
    try:
        for c in clusters.values():  # workers load flowsim and its compiled kernels
            query_dask(engine, str(config), str(warm), str(CACHE / f"dask-out-{os.getpid()}"), c.address)
            shutil.rmtree(CACHE / f"dask-out-{os.getpid()}", ignore_errors=True)
            replay_dask(engine, str(config), str(warm), None, c.address)
        times: dict = {"query": {1: [], 2: []}, "replay": {1: [], 2: []}, "one": []}
        replays: dict = {1: [], 2: []}
        one = None
        for r in range(rounds):
            order = (1, 2) if r % 2 == 0 else (2, 1)
            for n in order:
                times["query"][n].append(time_query(engine, config, data, clusters[n]))
            for n in order:
                replays[n].append(time_replay(engine, config, data, clusters[n]))
                times["replay"][n].append(replays[n][-1]["replay_s"])
            one_s, one = one_process_replay(engine, data)
            times["one"].append(one_s)
        starts = {n: c.start_seconds for n, c in clusters.items()}
    finally:
        for c in clusters.values():
            c.close()
    mine = one.to_dict()
    typical = {}
    for n, runs in replays.items():
        typical[n] = sorted(runs, key=lambda x: x["replay_s"])[len(runs) // 2]  # the median run's breakdown
        theirs = typical[n]["summary"].to_dict()
        typical[n]["differs"] = {k: (mine[k], theirs[k]) for k in mine
                                 if k not in ("seconds", "records_per_s") and mine[k] != theirs[k]}
    return {"times": times, "replays": typical, "starts": starts, "load": load, "rounds": rounds}


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}s (median; {min(values):.2f}–{max(values):.2f})"


def _ratios(a: list[float], b: list[float]) -> str:
    """a/b round by round (each pair timed minutes apart at most), and the ratio of the medians."""
    pairs = [x / y for x, y in zip(a, b)]
    return (f"{statistics.median(a) / statistics.median(b):.2f}x (medians; per round "
            f"{min(pairs):.2f}–{max(pairs):.2f}x, {sum(p >= 1.7 for p in pairs)} of {len(pairs)} rounds ≥ 1.7x)")


def report(r: dict) -> str:
    t, reps = r["times"], r["replays"]
    lines = [f"{RECORDS:,} records in {PARTS} Parquet parts; {r['rounds']} rounds, order alternating; load average "
             f"before {r['load'][0]:.2f}",
             f"cluster start: local:1 {r['starts'][1]:.2f}s, local:2 {r['starts'][2]:.2f}s"]
    for n in (1, 2):
        w = reps[n]
        lines.append(f"local:{n}: query {_spread(t['query'][n])}, replay {_spread(t['replay'][n])}; median replay: map "
                     f"{w['replay_map_s']:.2f}s, shards {w['replay_shard_s']:.2f}s, {w['shards']} shards, shuffle "
                     f"{w['shuffle_s']:.2f}s of worker time = {w['shuffle_share']:.0%} (split {w['split_s']:.2f}s, "
                     f"transfer {w['transfer_s']:.2f}s, sort {w['sort_s']:.2f}s)")
    lines.append(f"local:2 vs local:1: query {_ratios(t['query'][1], t['query'][2])}")
    lines.append(f"local:2 vs local:1: replay {_ratios(t['replay'][1], t['replay'][2])}")
    pairs = [x / y for x, y in zip(t["one"], t["replay"][2])]
    lines.append(f"one-process replay (1 thread) {_spread(t['one'])}; local:2 replay is "
                 f"{statistics.median(t['one']) / statistics.median(t['replay'][2]):.2f}x as fast (medians; per round "
                 f"{min(pairs):.2f}–{max(pairs):.2f}x)")
    for n in (1, 2):
        differs = reps[n]["differs"]
        if differs:
            lines.append(f"local:{n} summary differs from one process in: "
                         + "; ".join(f"{k}: {str(a)[:300]} vs {str(b)[:300]}" for k, (a, b) in differs.items()))
        else:
            lines.append(f"local:{n} summary equals the one-process summary")
    return "\n".join(lines)


@pytest.mark.slow
def bench_dask(benchmark):
    result = benchmark.pedantic(run, rounds=1, iterations=1)
    print(report(result))


if __name__ == "__main__":
    print(report(run()))
