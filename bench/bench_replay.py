"""Replay throughput (issue 4): a 10 M-record native Parquet trace at ≥ 3 M records/s on one core, a pcap at
≥ 1 M packets/s, peak memory bounded independently of the trace length.

Traces are generated once into a cache folder (FLOWSIM_BENCH_DIR). Two figures per trace, both on one thread,
so both are records per second per core:
- in process: `replay(engine, trace, threads=1)` timed after a warm-up replay (JIT compiled), with the
  configuration loaded and compiled outside the timed region; the time covers reading and decoding the
  trace, evaluating, the stateful pass and the summary (best of three);
- end to end: one `flowsim replay --threads 1` process, including its start, loading the configuration
  from the cache and JIT code from numba's cache; its peak RSS is reported beside it.
Run: `python -m pytest bench/bench_replay.py --benchmark-only -s` or `python bench/bench_replay.py`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_query import CACHE, inputs, run_flowsim  # noqa: E402


def timestamped_trace(n: int) -> tuple[Path, Path]:
    """The query benchmark's flows with increasing timestamps and replies mixed in, as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    config, parquet, _ = inputs(n)
    path = CACHE / f"trace-{n}.parquet"
    if not path.exists():
        table = pq.read_table(parquet)
        rng = np.random.default_rng(3)
        swap = rng.random(n) < 0.3  # a third of the records answer an earlier one
        cols = {name: table.column(name) for name in table.column_names}
        src, dst = cols["src_ip"], cols["dst_ip"]
        sport, dport = cols["src_port"], cols["dst_port"]
        mask = pa.array(swap)
        import pyarrow.compute as pc

        cols["src_ip"], cols["dst_ip"] = pc.if_else(mask, dst, src), pc.if_else(mask, src, dst)
        cols["src_port"], cols["dst_port"] = pc.if_else(mask, dport, sport), pc.if_else(mask, sport, dport)
        cols["time"] = pa.array(np.sort(rng.uniform(0, n / 1000.0, n)))
        pq.write_table(pa.table(cols), path)
    return config, path


def synthetic_pcap(n: int) -> Path:
    """n Ethernet/IPv4/TCP packets among the configuration's addresses, written with numpy."""
    path = CACHE / f"capture-{n}.pcap"
    if path.exists():
        return path
    rng = np.random.default_rng(4)
    frame = np.zeros((n, 16 + 54), np.uint8)
    header = np.zeros(n, dtype=[("sec", "<u4"), ("usec", "<u4"), ("incl", "<u4"), ("orig", "<u4")])
    header["sec"] = 1_764_547_200 + np.arange(n) // 100_000
    header["usec"] = np.arange(n) % 100_000 * 10
    header["incl"] = header["orig"] = 54
    frame[:, :16] = header.view(np.uint8).reshape(n, 16)
    eth = frame[:, 16:]
    eth[:, 12:14] = (0x08, 0x00)
    eth[:, 14] = 0x45
    eth[:, 16:18] = (0, 40)
    eth[:, 22] = 64
    eth[:, 23] = 6
    src = (10 << 24) + rng.integers(0, 4, n) * 256 + rng.integers(1, 251, n)
    dst = (10 << 24) + rng.integers(0, 4, n) * 256 + rng.integers(1, 251, n)
    for k in range(4):
        eth[:, 26 + k] = (src >> (24 - 8 * k)) & 0xFF
        eth[:, 30 + k] = (dst >> (24 - 8 * k)) & 0xFF
    sport, dport = rng.integers(1024, 65535, n), rng.choice([22, 80, 443, 3306, 8080], n)
    eth[:, 34], eth[:, 35], eth[:, 36], eth[:, 37] = sport >> 8, sport & 255, dport >> 8, dport & 255
    eth[:, 46] = 0x50
    with open(path, "wb") as out:
        out.write(np.array([0xA1B2C3D4], "<u4").tobytes() + np.array([2, 4], "<u2").tobytes()
                  + np.array([0, 0, 65535, 1], "<u4").tobytes())
        out.write(frame.tobytes())
    return path


def run_replay(config: Path, trace: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one single-threaded `flowsim replay` process."""
    return run_flowsim(["replay", str(config), str(trace), "-q", "--threads", "1"])


def replay_in_process(config: Path, trace: Path, rounds: int = 3) -> float:
    """Best seconds of `rounds` single-threaded in-process replays, after a warm-up replay of the same trace."""
    import time

    import flowsim
    from flowsim.batch.replay import replay

    engine = flowsim.compile(flowsim.load_config(config))
    replay(engine, str(trace), threads=1)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        summary = replay(engine, str(trace), threads=1)
        best = min(best, time.perf_counter() - started)
        assert summary.records == summary.evaluated + sum(summary.skipped.values())
    return best


def _measure(kind: str, n: int) -> dict:
    config, _, _ = inputs(min(n, 10_000_000))
    trace = timestamped_trace(n)[1] if kind == "parquet" else synthetic_pcap(n)
    inside = replay_in_process(config, trace)
    run_replay(config, trace)  # warm caches
    seconds, peak = min(run_replay(config, trace) for _ in range(2))
    return {"kind": kind, "records": n, "threads": 1, "in_process_seconds": inside, "in_process_per_s": n / inside,
            "seconds": seconds, "records_per_s": n / seconds, "peak_rss_mib": peak}


@pytest.mark.parametrize("kind,n", [("parquet", 1_000_000), ("parquet", 10_000_000), ("pcap", 1_000_000),
                                    ("pcap", 10_000_000)])
def bench_replay(benchmark, kind, n):
    result = benchmark.pedantic(_measure, args=(kind, n), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(result)


if __name__ == "__main__":
    for kind, n in (("parquet", 1_000_000), ("parquet", 10_000_000), ("pcap", 1_000_000), ("pcap", 10_000_000)):
        r = _measure(kind, n)
        print(f"{kind:>8} {n:>11,} records, 1 thread: in process {r['in_process_seconds']:.2f}s = "
              f"{r['in_process_per_s'] / 1e6:.2f} M records/s; process {r['seconds']:.2f}s = "
              f"{r['records_per_s'] / 1e6:.2f} M records/s, peak RSS {r['peak_rss_mib']:.0f} MiB")
