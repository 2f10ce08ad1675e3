"""query and replay on a real Dask cluster (flowsim.batch.distributed) give the one-process answers exactly.

One LocalCluster of 2 worker processes serves the module; the commands reach it by its address (the
`--dask ADDRESS` path), one test starts a `local:1` cluster of its own. The worker-killing test runs
last: it leaves the cluster with a restarted worker.
"""
from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

pytest.importorskip("distributed")

from flowsim.batch.distributed import parse_spec, query_dask, replay_dask, shard_of  # noqa: E402
from flowsim.batch.query import run_query  # noqa: E402
from flowsim.batch.replay import replay  # noqa: E402
from flowsim.cli import main  # noqa: E402
from flowsim.engine.cache import load_engine  # noqa: E402
from flowsim.errors import InputError  # noqa: E402
from flowsim.io.outputs import TEMP_SUFFIX  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "traces" / "example.yaml"
ADDRESSES = ["10.0.1.10", "10.0.1.11", "10.0.1.12", "10.0.2.10", "10.0.2.70", "10.0.3.10", "100.100.2.136",
             "198.51.100.7", "192.0.2.50", "8.8.8.8", "10.0.1.66"]
PORTS = [22, 25, 53, 443, 3306, 8080, 9090]
ENIS = {"10.0.1.10": "eni-web-1", "10.0.1.11": "eni-web-1", "10.0.1.12": "eni-web-2", "10.0.2.10": "eni-app-1",
        "10.0.3.10": "eni-db-1"}


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR)
    try:
        from distributed import Client

        import flowsim

        with Client(cluster) as client:  # the workers run this checkout's flowsim, not another installed one
            assert set(client.run(lambda: __import__("flowsim").__file__).values()) == {flowsim.__file__}
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def engine():
    return load_engine(EXAMPLE)


# ---------------------------------------------------------------- data
def path_rows(n: int, seed: int, start: float = 1_000.0) -> list[dict]:
    """Timestamped path-mode records among the example's addresses; four in ten answer an earlier one,
    some after the session expired."""
    rng = random.Random(seed)
    rows: list[dict] = []
    t = start
    for _ in range(n):
        t += rng.expovariate(1 / 3.0) + (1000.0 if rng.random() < 0.02 else 0.0)
        if rows and rng.random() < 0.4:
            r = rng.choice(rows[-60:])
            rows.append({"time": round(t, 3), "src_ip": r["dst_ip"], "dst_ip": r["src_ip"], "protocol": r["protocol"],
                         "src_port": r["dst_port"], "dst_port": r["src_port"]})
            continue
        src, dst = rng.sample(ADDRESSES, 2)
        proto = rng.choice(["tcp", "tcp", "udp", "icmp"])
        ported = proto != "icmp"
        rows.append({"time": round(t, 3), "src_ip": src, "dst_ip": dst, "protocol": proto,
                     "src_port": rng.randint(40000, 40100) if ported else None,
                     "dst_port": rng.choice(PORTS) if ported else None})
    return rows


def flowlog_rows(n: int, seed: int) -> list[dict]:
    """Alibaba flow-log records of the example's ENIs (endpoint mode) with recorded actions, replies and
    NODATA records among them."""
    rng = random.Random(seed)
    rows: list[dict] = []
    t = 1_764_547_200
    for _ in range(n):
        t += rng.randint(0, 4)
        if rng.random() < 0.03:
            rows.append({"eni-id": rng.choice(list(ENIS.values())), "srcaddr": "", "srcport": "", "dstaddr": "",
                         "dstport": "", "protocol": "", "direction": "", "start": t, "log-status": "NODATA", "action": ""})
            continue
        if rows and rng.random() < 0.4 and rows[-1]["srcaddr"]:
            r = rng.choice([r for r in rows[-30:] if r["srcaddr"]])
            src, dst, sport, dport, proto = r["dstaddr"], r["srcaddr"], r["dstport"], r["srcport"], r["protocol"]
        else:
            src, dst = rng.sample(ADDRESSES, 2)
            proto = rng.choice([6, 6, 17])
            sport, dport = rng.randint(40000, 40050), rng.choice(PORTS)
        own = [(a, d) for a, d in ((src, "out"), (dst, "in")) if a in ENIS]
        if not own:
            src, dst = "198.51.100.7", "10.0.1.10"
            own = [(dst, "in")]
        address, direction = rng.choice(own)
        rows.append({"eni-id": ENIS[address], "srcaddr": src, "srcport": sport, "dstaddr": dst, "dstport": dport,
                     "protocol": proto, "direction": direction, "start": t, "log-status": "OK",
                     "action": rng.choice(["ACCEPT", "ACCEPT", "REJECT"])})
    return rows


def write_table(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or list(rows[0])
    table = pa.table({c: [r.get(c) for r in rows] for c in columns})
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path


PATH_COLUMNS = ["time", "src_ip", "dst_ip", "protocol", "src_port", "dst_port"]


def path_dataset(folder: Path, n: int = 1500, seed: int = 1) -> Path:
    """Five files, CSV and Parquet in hive-style folders, consecutive in time (sessions cross files); the
    earliest file's name sorts last, so only ordering by time gets the replay right."""
    rows = path_rows(n, seed)
    cuts = [0, 300, 650, 700, 1100, n]
    names = ["day=1/z-first.parquet", "day=1/a-second.csv", "day=2/third.csv", "day=10/fourth.parquet", "day=10/fifth.csv"]
    for name, lo, hi in zip(names, cuts, cuts[1:]):
        write_table(folder / name, rows[lo:hi], PATH_COLUMNS)
    return folder


FLOWLOG_COLUMNS = ["version", "eni-id", "srcaddr", "srcport", "dstaddr", "dstport", "protocol", "direction", "packets",
                   "bytes", "start", "end", "log-status", "action"]


def flowlog_dataset(folder: Path, n: int = 900, seed: int = 2) -> Path:
    rows = flowlog_rows(n, seed)
    for r in rows:
        r.update({"version": 2, "packets": 1, "bytes": 60, "end": r["start"] + 5})
        r.update({k: str(v) for k, v in r.items()})
    for k, lo in enumerate(range(0, n, 300)):
        write_table(folder / f"flowlog-{k}.csv", rows[lo:lo + 300], FLOWLOG_COLUMNS)
    return folder


# ---------------------------------------------------------------- comparisons
def summary_of(summary) -> dict:
    d = summary.to_dict()
    for k in ("seconds", "records_per_s", "trace"):
        d.pop(k)
    return d


def rows_of(path: Path) -> list[dict]:
    rows = pq.read_table(path).to_pylist() if path.is_dir() or path.suffix == ".parquet" else \
        pacsv.read_csv(path).to_pylist()
    return sorted(rows, key=lambda r: (r.get("file") or "", r["record"]))


def one_process_replay(engine, trace: Path, tmp_path: Path, fmt: str | None = None):
    out = tmp_path / "one.parquet"
    summary = replay(engine, str(trace), str(out), fmt=fmt)
    return summary, rows_of(out)


def dask_replay(engine, trace: Path, scheduler: str, tmp_path: Path, shards: int | None = None,
                wave_files: int | None = None):
    out = tmp_path / "parts"
    result = replay_dask(engine, str(EXAMPLE), str(trace), str(out), scheduler, chunk_rows=256, shards=shards,
                         wave_files=wave_files)
    return result, rows_of(out)


def assert_same_replay(one, many) -> None:
    (summary, rows), (result, parts) = one, many
    assert summary_of(result.summary) == summary_of(summary)
    assert len(parts) == len(rows)
    assert parts == rows


# ---------------------------------------------------------------- tests
def test_spec_is_local_with_a_count_or_an_address():
    assert parse_spec("local") == ("local", None) and parse_spec("local:3") == ("local", 3)
    assert parse_spec("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    with pytest.raises(InputError):
        parse_spec("local:many")


def test_a_packet_and_its_reply_share_a_shard():
    from flowsim.io.traces import open_trace

    chunk = next(iter(open_trace(str(write_table(Path(os.environ.get("TMPDIR", "/tmp")) / f"shard-{os.getpid()}.csv",
                                                 path_rows(400, 5), PATH_COLUMNS)))))
    ids = shard_of(chunk, 7)
    key = {}
    for i in range(len(chunk)):
        a = (int(chunk.src_hi[i]), int(chunk.src_lo[i]), int(chunk.src_port[i]))
        b = (int(chunk.dst_hi[i]), int(chunk.dst_lo[i]), int(chunk.dst_port[i]))
        k = (int(chunk.protocol[i]), min(a, b), max(a, b))
        assert key.setdefault(k, ids[i]) == ids[i]
    assert len(set(ids.tolist())) > 3


def test_the_shard_kernels_equal_their_obvious_versions():
    """shard_ids against the hash written out per record in Python; group_by_shard against a stable argsort."""
    from flowsim.kernels.shards import MIX, group_by_shard, shard_ids

    rng = np.random.default_rng(5)
    n, shards = 3000, 7
    fam = rng.choice(np.array([4, 6], np.uint8), n)
    proto = rng.choice(np.array([1, 6, 17, 47], np.int16), n)
    shi, slo, dhi, dlo = (rng.integers(0, 4, n, dtype=np.uint64) for _ in range(4))  # many ties
    sport, dport = (rng.integers(0, 3, n).astype(np.int32) for _ in range(2))
    ids = np.empty(n, np.int64)
    shard_ids(fam, proto, shi, slo, dhi, dlo, sport, dport, np.int64(shards), ids)
    mask = (1 << 64) - 1

    def mixed(h: int, v: int) -> int:
        h = ((h ^ v) * int(MIX)) & mask
        return h ^ (h >> 29)

    for i in range(n):
        a, b = sorted([(int(shi[i]), int(slo[i]), int(sport[i])), (int(dhi[i]), int(dlo[i]), int(dport[i]))])
        h = int(fam[i]) << 8 | int(proto[i])
        for v in (*a, *b):
            h = mixed(h, v)
        assert ids[i] == h % shards
    order, bounds = np.empty(n, np.int64), np.empty(shards + 1, np.int64)
    group_by_shard(ids, np.int64(shards), order, bounds)
    assert np.array_equal(order, np.argsort(ids, kind="stable"))
    assert np.array_equal(bounds, np.searchsorted(ids[order], np.arange(shards + 1)))


def test_query_over_a_dataset_equals_one_process(tmp_path, engine, scheduler):
    data = path_dataset(tmp_path / "flows")
    (data / "day=3").mkdir()
    (data / "day=3" / "empty.csv").write_text(",".join(PATH_COLUMNS) + "\n")  # an empty partition
    one = tmp_path / "one.parquet"
    stats = run_query(engine, str(data), str(one))
    parts = tmp_path / "parts"
    dstats, _ = query_dask(engine, str(EXAMPLE), str(data), str(parts), scheduler)
    assert (dstats.rows, dict(dstats.counts)) == (stats.rows, dict(stats.counts)) and stats.rows == 1500
    names = sorted(p.name for p in parts.iterdir())
    assert names == ["_manifest.json"] + [f"part-{i:05d}.parquet" for i in range(6)]
    assert pq.read_table(parts / "part-00003.parquet").num_rows == 0  # the empty file keeps its columns
    together = [row for n in names[1:] for row in pq.read_table(parts / n).to_pylist()]
    assert together == pq.read_table(one).to_pylist()
    assert not list(tmp_path.glob(f".*{TEMP_SUFFIX}"))


def test_query_without_output_streams_csv_in_file_order(tmp_path, scheduler, capsys):
    data = path_dataset(tmp_path / "flows", n=1200)
    assert main(["query", str(EXAMPLE), str(data), "-q"]) == 0
    one = capsys.readouterr().out
    assert main(["query", str(EXAMPLE), str(data), "--dask", scheduler, "-q"]) == 0
    assert capsys.readouterr().out == one and one.count("\n") == 1201


def test_replay_over_a_dataset_equals_one_process(tmp_path, engine, scheduler):
    data = path_dataset(tmp_path / "trace")
    one = one_process_replay(engine, data, tmp_path)
    assert one[0].stateful > 50 and one[0].out_of_order == 0
    # sessions cross files: some stateful replies sit in a later file than their request
    assert {r["file"] for r in one[1] if r["stateful"]} >= {"day=1/a-second.csv", "day=2/third.csv"}
    many = dask_replay(engine, data, scheduler, tmp_path, shards=5)
    assert_same_replay(one, many)
    assert many[0].shards == 5


def test_replay_in_waves_of_files_carries_each_shard_on(tmp_path, engine, scheduler):
    """One file per wave (a worker holds the records of about two waves, not the dataset's): the shards' sessions
    and counts go on from wave to wave, so replies in a later file than their request still pass by state."""
    data = path_dataset(tmp_path / "trace")
    one = one_process_replay(engine, data, tmp_path)
    many = dask_replay(engine, data, scheduler, tmp_path, shards=3, wave_files=1)
    assert many[0].waves == 5
    assert_same_replay(one, many)


def test_files_that_interleave_in_time_replay_as_one_wave(tmp_path, engine, scheduler):
    """Records dealt round-robin into three files (each spans the whole time): no file can replay before the
    others are read, so the waves join into one and the answer stays the one-process replay's."""
    data = tmp_path / "dealt"
    rows = path_rows(900, 4)
    for k in range(3):
        write_table(data / f"dealt-{k}.csv", rows[k::3], PATH_COLUMNS)
    one = one_process_replay(engine, data, tmp_path)
    many = dask_replay(engine, data, scheduler, tmp_path, wave_files=1)
    assert many[0].waves == 1
    assert summary_of(many[0].summary) == summary_of(one[0])


def test_replay_of_flow_logs_in_endpoint_mode_with_recorded_actions(tmp_path, engine, scheduler):
    data = flowlog_dataset(tmp_path / "logs")
    one = one_process_replay(engine, data, tmp_path)
    s = one[0]
    assert s.compared > 500 and 0 < s.agree < s.compared and len(s.disagreements) == 20 and s.stateful > 20
    assert s.skipped.get("NODATA", 0) > 5
    assert_same_replay(one, dask_replay(engine, data, scheduler, tmp_path))


def test_replay_of_the_bundled_capture(tmp_path, engine, scheduler):
    capture = ROOT / "traces" / "example.pcap"
    summary = replay(engine, str(capture))
    result = replay_dask(engine, str(EXAMPLE), str(capture), None, scheduler)
    assert summary_of(result.summary) == summary_of(summary) and summary.records > 0


def test_a_dataset_of_one_file_and_an_empty_partition(tmp_path, engine, scheduler):
    data = tmp_path / "one"
    write_table(data / "only.csv", path_rows(400, 9), PATH_COLUMNS)
    assert_same_replay(one_process_replay(engine, data, tmp_path), dask_replay(engine, data, scheduler, tmp_path))
    (data / "empty.csv").write_text(",".join(PATH_COLUMNS) + "\n")
    pq.write_table(pa.table({c: pa.array([], pa.string()) for c in PATH_COLUMNS}), data / "empty.parquet")
    out = tmp_path / "again"
    out.mkdir()
    one = one_process_replay(engine, data, out)
    many = dask_replay(engine, data, scheduler, out, shards=9)  # more shards than records' 5-tuples need
    assert_same_replay(one, many)


def test_a_malformed_file_among_good_ones_names_its_file_and_line(tmp_path, scheduler, capsys):
    data = path_dataset(tmp_path / "flows", n=1200)
    bad = data / "day=2" / "third.csv"
    lines = bad.read_text().splitlines()
    lines[7] = lines[7].replace("10.0.", "10.0.999.", 1) if "10.0." in lines[7] else "1,not-an-ip,10.0.1.10,tcp,1,2"
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "parts"
    assert main(["query", str(EXAMPLE), str(data), "--dask", scheduler, "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:8" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(f".*{TEMP_SUFFIX}"))
    assert main(["query", str(EXAMPLE), str(data), "--dask", scheduler, "-o", str(out), "--skip-invalid"]) == 0
    err = capsys.readouterr().err
    assert f"{bad}: 1 invalid row skipped" in err and out.is_dir()
    # replay: a file that is no trace at all
    (data / "day=2" / "notes.txt").write_text("these are not flows\n")
    assert main(["replay", str(EXAMPLE), str(data), "--dask", scheduler, "-q"]) == 2
    err = capsys.readouterr().err
    assert "notes.txt:1" in err and "cannot detect trace format" in err


def test_local_spec_starts_and_closes_its_cluster(tmp_path, capsys):
    out = tmp_path / "parts"
    assert main(["replay", str(EXAMPLE), str(ROOT / "traces" / "example-flowlog.csv"), "--dask", "local:1", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "agreement with the recorded action: 7 of 8" in printed
    assert sorted(p.name for p in out.iterdir())[0] == "part-00000.parquet"


def big_dataset(folder: Path, files: int = 8, per_file: int = 60_000) -> Path:
    """Path-mode Parquet files with replies, made with numpy (large enough for tasks to take a while)."""
    rng = np.random.default_rng(11)
    n = files * per_file
    src = rng.integers(0, len(ADDRESSES), n)
    dst = (src + rng.integers(1, len(ADDRESSES), n)) % len(ADDRESSES)
    sport, dport = rng.integers(40000, 41000, n), rng.choice(PORTS, n)
    swap = rng.random(n) < 0.4
    names = np.array(ADDRESSES)
    table = pa.table({"time": np.sort(rng.uniform(0, n / 50.0, n)),
                      "src_ip": names[np.where(swap, dst, src)], "dst_ip": names[np.where(swap, src, dst)],
                      "protocol": np.where(rng.random(n) < 0.8, "tcp", "udp"),
                      "src_port": np.where(swap, dport, sport), "dst_port": np.where(swap, sport, dport)})
    folder.mkdir(parents=True)
    for k in range(files):
        pq.write_table(table.slice(k * per_file, per_file), folder / f"part-{k}.parquet")
    return folder


def test_ctrl_c_leaves_no_complete_looking_output(tmp_path, scheduler):
    data = big_dataset(tmp_path / "big", files=8, per_file=40_000)
    out = tmp_path / "parts"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "flowsim", "replay", str(EXAMPLE), str(data), "--dask", scheduler,
                             "-o", str(out), "-q"], stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(f".parts.*{TEMP_SUFFIX}")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(1.0)  # connected, tasks under way
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode()
    assert code == 130, err
    assert "Traceback" not in err and not out.exists()
    time.sleep(0.5)
    assert not list(tmp_path.glob(f".*{TEMP_SUFFIX}"))


def test_a_worker_killed_mid_run_is_survived(tmp_path, engine, scheduler):
    """Runs last: one of the module's two workers is killed while the replay runs; Dask runs its tasks
    again on the other (and on the worker its nanny restarts), and the result stays exact."""
    from distributed import Client

    data = big_dataset(tmp_path / "big")
    one = replay(engine, str(data))
    killed: list[int] = []

    def kill_when_busy() -> None:
        with Client(scheduler, timeout=30) as watcher:
            pids = watcher.run(os.getpid)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                busy = [addr for addr, keys in watcher.processing().items()
                        if any("flowsim-shard" in str(k) for k in keys)]
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(pids[busy[0]])
                    return
                time.sleep(0.01)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    try:
        result = replay_dask(engine, str(EXAMPLE), str(data), None, scheduler, chunk_rows=1 << 14)
    finally:
        killer.join()
    assert killed, "no worker was busy with a shard to kill"
    assert summary_of(result.summary) == summary_of(one) and one.records == 480_000
