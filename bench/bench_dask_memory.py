"""Peak memory per Dask worker follows the partition size, not the dataset size (issue 21).

Datasets of the same 1.25 M-record partitions made from the 10 M-record benchmark dataset of
bench_dask.py (its 8 parts two, five and ten times over, each copy moved later in time by more than the
session timeout, so copies never share a session): 20 M, 50 M and 100 M records in 16, 40 and 80 parts.
Replay reads
and replays them a wave of files at a time (flowsim.batch.distributed.WAVE_FILES_PER_WORKER files per
worker), so a worker holds about two waves' records whatever the dataset's size. Each is replayed
(`replay --dask`, summary only) on a fresh LocalCluster of 2 worker processes; afterwards each worker
reports the peak resident set size of its process (getrusage).
Run: `python bench/bench_dask_memory.py` (FLOWSIM_BENCH_DIR picks where the datasets are kept).
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dask import CACHE, dataset  # noqa: E402

COPIES = 5


def larger(data: Path, copies: int = COPIES) -> Path:
    """`copies` times the dataset's parts, copy k moved k x (span + a day) later."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parts = sorted(data.glob("part-*.parquet"))
    folder = CACHE / f"{data.name}-x{copies}"
    if (folder / f"part-{copies * len(parts) - 1}.parquet").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    span = max(pc.max(pq.read_table(p, columns=["time"]).column("time")).as_py() for p in parts) + 86_400.0
    for k in range(copies):
        for i, p in enumerate(parts):
            table = pq.read_table(p)
            shifted = pc.add(table.column("time"), pa.scalar(k * span))
            table = table.set_column(table.column_names.index("time"), "time", shifted)
            pq.write_table(table, folder / f"part-{k * len(parts) + i}.parquet", row_group_size=1 << 20)
    return folder


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(config: Path, data: Path) -> dict:
    from distributed import Client, LocalCluster

    from flowsim.batch.distributed import replay_dask
    from flowsim.engine.cache import load_engine

    engine = load_engine(config)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        started = time.perf_counter()
        result = replay_dask(engine, str(config), str(data), None, cluster.scheduler_address)
        seconds = time.perf_counter() - started
        peaks = sorted(client.run(_peak_rss_mib).values())
        return {"records": result.summary.records, "files": len(list(data.glob("part-*.parquet"))),
                "shards": result.shards, "waves": result.waves, "seconds": seconds, "worker_peaks_mib": peaks}
    finally:
        client.close()
        cluster.close()


def main() -> None:
    config, data = dataset()
    for folder in (larger(data, 2), larger(data, 5), larger(data, 10)):
        m = measure(config, folder)
        print(f"{m['records']:,} records in {m['files']} parts, {m['shards']} shards, {m['waves']} waves: "
              f"replay --dask local:2 {m['seconds']:.1f}s, worker peak RSS "
              + ", ".join(f"{p:,.0f} MiB" for p in m["worker_peaks_mib"]))


if __name__ == "__main__":
    main()
