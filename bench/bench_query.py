"""`flowsim query` end to end (issue 3): 10 M flows Parquet→Parquet ≥ 3 M/s, CSV→CSV ≥ 1 M/s, bounded memory.

Each run is a separate `flowsim query` process (reading, parsing, evaluating,
writing); its wall time and peak resident memory are reported. Input files are
generated once into a cache folder (FLOWSIM_BENCH_DIR, default a temp folder).
Run: `python -m pytest bench/bench_query.py --benchmark-only -s` or `python bench/bench_query.py`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_workloads import shape_for  # noqa: E402

from flowsim.testing.randomconfig import random_config  # noqa: E402

CACHE = Path(os.environ.get("FLOWSIM_BENCH_DIR", Path(tempfile.gettempdir()) / "flowsim-bench"))


def inputs(n: int) -> tuple[Path, Path, Path]:
    """Configuration (100 rules per ENI, 1,000 ENIs) and n synthetic flows as Parquet and CSV."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    import flowsim
    from flowsim.tools.synth import synthesize

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


# The child reports its own peak RSS as it exits: VmHWM belongs to the process image, while ru_maxrss would
# also count the parent's RSS at the fork (Linux keeps it across exec), and RUSAGE_CHILDREN the largest of all runs.
_CHILD = ("import atexit, resource, sys\n"
          "def peak():\n"
          "    try:\n"
          "        with open('/proc/self/status') as status:\n"
          "            return next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))\n"
          "    except (OSError, StopIteration):\n"
          "        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
          "atexit.register(lambda: print('peak-rss-kib', peak(), file=sys.stderr))\n"
          "sys.argv[0] = 'flowsim'\n"
          "from flowsim.cli import run\n"
          "run()\n")


def run_flowsim(args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one `flowsim ARGS...` process."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    peak = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("peak-rss-kib ")]
    return seconds, int(peak[-1]) / 1024


def run_query(config: Path, flows: Path, out: Path, threads: int | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one `flowsim query` process."""
    args = ["query", str(config), str(flows), "-o", str(out), "-q"]
    return run_flowsim(args + (["--threads", str(threads)] if threads else []))


def scaled_parquet(n: int) -> Path:
    """The 10 M-flow Parquet input cut or repeated to n rows (to show memory does not follow the file size)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = CACHE / f"flows-{n}.parquet"
    if not path.exists():
        base = pq.read_table(inputs(10_000_000)[1])
        table = pa.concat_tables([base] * (n // len(base) + 1)).slice(0, n)
        pq.write_table(table, path)
    return path


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


def bench_query_memory(benchmark):
    """Peak RSS at 3, 10 and 30 M flows (Parquet): it must not follow the file size."""
    config = inputs(10_000_000)[0]
    peaks = {n: run_query(config, scaled_parquet(n), CACHE / "out-memory.parquet")[1] for n in (3_000_000, 10_000_000, 30_000_000)}
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update({f"peak_rss_mib_{n}": peak for n, peak in peaks.items()})
    print(peaks)


if __name__ == "__main__":
    for n in (1_000_000, 10_000_000):
        for fmt in ("parquet", "csv"):
            r = _measure(n, fmt)
            print(f"{fmt:>8} {n:>10,} flows: {r['seconds']:.2f}s {r['flows_per_s'] / 1e6:.2f} M flows/s, "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB, threads {r['threads']}")
    config = inputs(10_000_000)[0]
    for n in (3_000_000, 10_000_000, 30_000_000):
        seconds, peak = run_query(config, scaled_parquet(n), CACHE / "out-memory.parquet")
        print(f"memory  {n:>10,} flows (Parquet): {seconds:.2f}s, peak RSS {peak:.0f} MiB")
