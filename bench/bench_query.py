"""`flowsim query` end to end (issue 3): 10 M flows Parquet→Parquet ≥ 3 M/s, CSV→CSV ≥ 1 M/s, bounded memory.

Each run is a separate `flowsim query` process (reading, parsing, evaluating,
writing); its wall time and peak resident memory are reported. Input files are
generated once into a cache folder (FLOWSIM_BENCH_DIR, default a temp folder).
Run: `python -m pytest bench/bench_query.py --benchmark-only -s` or `python bench/bench_query.py`.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_workloads import shape_for  # noqa: E402

from flowsim.randomconfig import random_config  # noqa: E402

CACHE = Path(os.environ.get("FLOWSIM_BENCH_DIR", Path(tempfile.gettempdir()) / "flowsim-bench"))


def inputs(n: int) -> tuple[Path, Path, Path]:
    """Configuration (100 rules per ENI, 1,000 ENIs) and n synthetic flows as Parquet and CSV."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    import flowsim
    from flowsim.synth import synthesize

    CACHE.mkdir(parents=True, exist_ok=True)
    config_path = CACHE / "config-100.yaml"
    if not config_path.exists():
        config_path.write_text(yaml.safe_dump(random_config(1, shape_for(100)), sort_keys=False))
    parquet, csv = CACHE / f"flows-{n}.parquet", CACHE / f"flows-{n}.csv"
    if not parquet.exists() or not csv.exists():
        table = synthesize(flowsim.load_config(config_path), n, seed=2)
        pq.write_table(table, parquet)
        pacsv.write_csv(table, csv)
    return config_path, parquet, csv


def run_query(config: Path, flows: Path, out: Path, threads: int | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one `flowsim query` process."""
    cmd = [sys.executable, "-m", "flowsim", "query", str(config), str(flows), "-o", str(out), "-q"]
    if threads:
        cmd += ["--threads", str(threads)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, peak


def _measure(n: int, fmt: str, threads: int | None = None) -> dict:
    config, parquet, csv = inputs(n)
    src = parquet if fmt == "parquet" else csv
    out = CACHE / f"out-{n}.{fmt}"
    run_query(config, src, out, threads)  # warm the JIT cache and the page cache
    seconds, peak = min(run_query(config, src, out, threads) for _ in range(2))
    return {"flows": n, "format": fmt, "seconds": seconds, "flows_per_s": n / seconds, "peak_rss_mib": peak,
            "threads": threads or os.cpu_count()}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("n", [1_000_000, 10_000_000])
def bench_query_end_to_end(benchmark, n, fmt):
    result = benchmark.pedantic(_measure, args=(n, fmt), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(result)


if __name__ == "__main__":
    for n in (1_000_000, 10_000_000):
        for fmt in ("parquet", "csv"):
            r = _measure(n, fmt)
            print(f"{fmt:>8} {n:>10,} flows: {r['seconds']:.2f}s {r['flows_per_s'] / 1e6:.2f} M flows/s, "
                  f"peak RSS (largest run so far) {r['peak_rss_mib']:.0f} MiB, threads {r['threads']}")
