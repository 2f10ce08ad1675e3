"""`query --dask` and `replay --dask` (issue 21): a 10 M-record Parquet dataset in 8 parts, on local:1 and local:2.

The dataset is the replay benchmark's timestamped trace (bench_replay.timestamped_trace: synthetic flows
aimed at a configuration of 1,000 ENIs with 100 rules each, a third of them replies) cut into 8 files of
consecutive times, generated once into FLOWSIM_BENCH_DIR. For each cluster size a LocalCluster of N
worker processes (one thread each) is started and its start time reported on its own; the commands then
reach it by its address. Each command is run once on a small dataset first (workers load flowsim and its
compiled kernels), then timed from its first task to its last (the client's connection excluded):
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


def measure(workers: int, config: Path, data: Path, warm: Path) -> dict:
    from distributed import Client, LocalCluster, get_task_stream

    from flowsim.batch.distributed import query_dask, replay_dask
    from flowsim.engine.cache import load_engine

    engine = load_engine(config)
    started = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR)
    client = Client(cluster)
    start_seconds = time.perf_counter() - started
    out = CACHE / f"dask-out-{os.getpid()}"
    try:
        query_dask(engine, str(config), str(warm), str(out), cluster.scheduler_address)
        replay_dask(engine, str(config), str(warm), None, cluster.scheduler_address)
        stats, _ = query_dask(engine, str(config), str(data), str(out), cluster.scheduler_address)
        assert stats.rows == RECORDS
        with get_task_stream(client=client) as stream:
            result = replay_dask(engine, str(config), str(data), None, cluster.scheduler_address)
        busy = _busy(stream.data)
        split = sum(m.split_seconds for m in result.map_results)
        sort = sum(r.sort_seconds for r in result.shard_results)
        shuffle = split + busy["transfer"] + sort
        return {"workers": workers, "cluster_start_s": start_seconds, "query_s": stats.seconds,
                "replay_s": result.summary.seconds, "replay_map_s": result.map_seconds,
                "replay_shard_s": result.shard_seconds, "shards": result.shards,
                "shuffle_s": shuffle, "shuffle_share": shuffle / max(busy["compute"] + busy["transfer"], 1e-9),
                "split_s": split, "transfer_s": busy["transfer"], "sort_s": sort, "summary": result.summary}
    finally:
        shutil.rmtree(out, ignore_errors=True)
        client.close()
        cluster.close()


def one_process_replay(config: Path, data: Path) -> tuple[float, object]:
    from flowsim.batch.replay import replay
    from flowsim.engine.cache import load_engine

    engine = load_engine(config)
    replay(engine, str(data / "part-0.parquet"), threads=1)  # warm
    started = time.perf_counter()
    summary = replay(engine, str(data), threads=1)
    return time.perf_counter() - started, summary


def run() -> dict:
    import pyarrow.parquet as pq

    config, data = dataset()
    load = os.getloadavg()
    warm = CACHE / "dask-warm"
    if not warm.exists():
        warm.mkdir(parents=True)
        pq.write_table(pq.read_table(data / "part-0.parquet").slice(0, 20_000), warm / "part-0.parquet")
    one_s, one = one_process_replay(config, data)
    results = {n: measure(n, config, data, warm) for n in (1, 2)}
    mine = one.to_dict()
    for r in results.values():
        theirs = r["summary"].to_dict()
        r["differs"] = {k: (mine[k], theirs[k]) for k in mine if k not in ("seconds", "records_per_s") and mine[k] != theirs[k]}
    return {"one_process_replay_s": one_s, "local": results, "load": load}


def report(r: dict) -> str:
    one, two = r["local"][1], r["local"][2]
    lines = [f"{RECORDS:,} records in {PARTS} Parquet parts; load average before {r['load'][0]:.2f} (shared machine)",
             f"cluster start: local:1 {one['cluster_start_s']:.2f}s, local:2 {two['cluster_start_s']:.2f}s"]
    for w in (one, two):
        lines.append(f"local:{w['workers']}: query {w['query_s']:.2f}s ({RECORDS / w['query_s'] / 1e6:.2f} M/s), replay "
                     f"{w['replay_s']:.2f}s ({RECORDS / w['replay_s'] / 1e6:.2f} M/s; map {w['replay_map_s']:.2f}s, shards "
                     f"{w['replay_shard_s']:.2f}s, {w['shards']} shards); shuffle {w['shuffle_s']:.2f}s of worker time "
                     f"= {w['shuffle_share']:.0%} (split {w['split_s']:.2f}s, transfer {w['transfer_s']:.2f}s, "
                     f"sort {w['sort_s']:.2f}s)")
    lines.append(f"local:2 vs local:1: query {one['query_s'] / two['query_s']:.2f}x, replay "
                 f"{one['replay_s'] / two['replay_s']:.2f}x")
    lines.append(f"one-process replay (1 thread) {r['one_process_replay_s']:.2f}s "
                 f"({RECORDS / r['one_process_replay_s'] / 1e6:.2f} M/s); local:2 replay is "
                 f"{r['one_process_replay_s'] / two['replay_s']:.2f}x that")
    for w in (one, two):
        if w["differs"]:
            lines.append(f"local:{w['workers']} summary differs from one process in: "
                         + "; ".join(f"{k}: {str(a)[:300]} vs {str(b)[:300]}" for k, (a, b) in w["differs"].items()))
        else:
            lines.append(f"local:{w['workers']} summary equals the one-process summary")
    return "\n".join(lines)


@pytest.mark.slow
def bench_dask(benchmark):
    result = benchmark.pedantic(run, rounds=1, iterations=1)
    print(report(result))


if __name__ == "__main__":
    print(report(run()))
