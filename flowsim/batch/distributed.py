"""`query --dask` and `replay --dask`: the same answers as one process, computed on a Dask cluster.

`--dask local[:N]` starts a LocalCluster of N worker processes (default: the machine's cores), one thread
each, and closes it at the end; `--dask ADDRESS` connects to a running scheduler, whose workers must have
flowsim installed and read the dataset's files at the same paths (a shared file system).

The compiled configuration reaches the workers as the result of one task, which loads it from flowsim's
content-keyed cache of compiled tables (the configuration file must be readable at the same path, and is
checked to be the same file); every task names that result, so the tables are never pickled per task,
each worker receives them once, and Dask loads them again should every worker holding them die. Each
worker process keeps one Engine per table set.

query: one task per file evaluates it as one-process `query` would and writes its Parquet part
(`part-NNNNN.parquet`, NNNNN the file's place in the dataset's natural order, and `_manifest.json`
naming each part's file) into a temporary folder beside the target, renamed onto the target only when
every task has succeeded. Without `-o`, the parts come back to the client and go to standard output as
CSV, in file order.

replay: sessions belong to an ENI and a 5-tuple in either orientation (docs/semantics.md §5), so every
record that can touch a session shares its canonical 5-tuple (the two endpoints sorted; protocols
without ports have ports 0). A map task per file reads it and splits its records into shards by a hash
of that 5-tuple; a task per shard sorts its records by (time, file in replay order, record) -- the order
in which one process replays a dataset that is in time order -- and replays them with a session table of
its own (flowsim.batch.replay.Replayer). The VPC and ENI are left out of the hash: a record that names no
VPC may resolve to the same ENI as one that does, and path-mode and endpoint-mode records of one ENI
share sessions; the 5-tuple alone can never split a session.

What one shard's result could owe to other shards' records, and why the merge is exact:
- the session table's room: it grows with the live sessions and drops only sessions expired at the
  earliest time of the records about to come, which no later record can find live;
- rule hits, counts, sessions opened and agreement with recorded actions add;
- the disagreements kept are the first in (file, record) order in both modes (20 at most);
- top denied flows (keyed without the source port, so a flow spans shards) are merged from each shard's
  exact counts; exact, like one process, while at most 131,072 distinct flows are denied (past that one
  process counts approximately, and both say so);
- `out_of_order`: shards are replayed in exact time order, so it is 0; one process gives the same
  answer where it also reports 0 (files in time order, or out of order by less than a chunk).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..engine.engine import Engine
from ..errors import InputError, Problem
from ..io.datasets import dataset_files, dataset_root, is_dataset, relative_name
from ..io.outputs import TEMP_SUFFIX, Output
from ..io.progress import Progress
from ..kernels.counting import TALLIES
from .query import QueryStats, arrow_settings, evaluate_file
from .replay import DISAGREEMENTS_KEPT, SESSION_TIMEOUT, FlowCounter, Replayer, ReplaySummary, verdict_table

LOCAL = "local"
PART = "part-{:05d}.parquet"
MANIFEST = "_manifest.json"
MAX_SHARDS = 256
WAVE_FILES_PER_WORKER = 4  # files read per worker before their records replay (memory: about two waves)


# ---------------------------------------------------------------- the cluster
def parse_spec(spec: str) -> tuple[str, int | str | None]:
    """("local", N or None) for `local[:N]`, else ("address", the scheduler's address)."""
    text = spec.strip()
    if text == LOCAL or text.startswith(LOCAL + ":"):
        count = text[len(LOCAL) + 1:]
        if not count:
            return LOCAL, None
        if not count.isdigit() or not 1 <= int(count) <= 1024:
            raise InputError(Problem(f"local:N needs N, a number of workers from 1 to 1024, not {count!r}", subject="--dask"))
        return LOCAL, int(count)
    if not text:
        raise InputError(Problem("needs local, local:N or a scheduler address (tcp://HOST:8786)", subject="--dask"))
    return "address", text


def _need_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError(Problem("needs dask.distributed: pip install 'flowsim[dask]'", subject="--dask")) from None


@dataclass
class Cluster:
    """A connected client, and how long it took to get it (a local cluster's start included)."""

    client: Any
    local: bool
    workers: int
    start_seconds: float


@contextlib.contextmanager
def cluster(spec: str) -> Iterator[Cluster]:
    """A client of the cluster `spec` names; a local cluster is started here and closed on leaving."""
    _need_dask()
    import logging

    from distributed import Client, LocalCluster

    kind, value = parse_spec(spec)
    started = time.perf_counter()
    local = None
    try:
        if kind == LOCAL:
            n = value or os.cpu_count() or 1
            # no dashboard; the scheduler's HTTP server (health checks) on a free port, not 8787
            local = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                 scheduler_kwargs={"dashboard": False}, silence_logs=logging.ERROR)
            client = Client(local)
        else:
            try:
                client = Client(value, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise InputError(Problem(f"cannot reach the Dask scheduler {value}: {exc}", subject="--dask")) from None
        try:
            workers = len(client.scheduler_info().get("workers", {}))
            yield Cluster(client, local is not None, workers, time.perf_counter() - started)
        finally:
            client.close()
    finally:
        if local is not None:
            local.close()


def _finish(futures: Sequence[Any], meter: Progress, stage: str, unit: str) -> None:
    """Wait for every future, showing progress; the first task that fails raises its error here."""
    from distributed import as_completed

    done = 0
    meter.stage(stage, 0, len(futures), unit)
    for future in as_completed(futures):
        future.result()  # a task's InputError comes back as it was raised
        done += 1
        meter.stage(stage, done, len(futures), unit)


# ---------------------------------------------------------------- the engine on the workers
_ENGINES: dict[int, tuple[Any, Engine]] = {}


def _engine(tables: Any, config: str) -> Engine:
    """This worker's Engine over the configuration's tables (made once per table set)."""
    from ..config.loader import load_config

    held = _ENGINES.get(id(tables))
    if held is None or held[0] is not tables:
        _ENGINES.clear()
        held = (tables, Engine(functools.partial(load_config, config), tables))
        _ENGINES[id(tables)] = held
    return held[1]


def _load_tables(config: str, digest: str) -> Any:
    """The compiled tables of the configuration file, loaded on a worker from flowsim's content-keyed cache
    (compiled there once where the worker's cache lacks them); refused when the worker's file is not the
    client's (another machine's copy that differs)."""
    from ..engine.cache import load_engine

    try:
        mine = hashlib.sha256(Path(config).read_bytes()).hexdigest()
    except OSError as exc:
        raise InputError(Problem(f"a Dask worker cannot read the configuration: {exc.strerror or exc}",
                                 source=config)) from None
    if mine != digest:
        raise InputError(Problem("a Dask worker reads another configuration at this path than the client",
                                 source=config))
    return load_engine(config).tables


def _tables_task(client: Any, config: str, token: str) -> Any:
    """A task whose result is the compiled tables: every task names it, so the tables are never pickled
    per task; each worker gets them once (from the worker that loaded them), and Dask loads them again
    if every worker holding them dies (scattered data would be lost)."""
    digest = hashlib.sha256(Path(config).read_bytes()).hexdigest()
    return client.submit(_load_tables, config, digest, key=f"flowsim-config-{token}")


# ---------------------------------------------------------------- committed output folders
class PartsFolder:
    """A folder of parts written to a temporary folder beside `target` and renamed onto it by `commit`.
    A target that exists must be a folder holding nothing but an earlier run's parts."""

    def __init__(self, target: str, inputs: Sequence[str]) -> None:
        self.target = target
        real = os.path.realpath(target)
        for path in inputs:
            inside = os.path.realpath(path)
            if real == inside or inside.startswith(real + os.sep) or real.startswith(inside + os.sep):
                raise InputError(Problem(f"is the input {path} or holds it or lies inside it: refusing to write there",
                                         "-o", target))
        if os.path.exists(real):
            if not os.path.isdir(real):
                raise InputError(Problem("must be a folder (with --dask, -o writes a folder of Parquet parts)", "-o",
                                         target))
            foreign = [n for n in os.listdir(real) if not _ours(n)]
            if foreign:
                raise InputError(Problem(f"holds files that are not flowsim's parts ({foreign[0]}, ...): refusing to "
                                         "replace it", "-o", target))
        parent, name = os.path.split(real)
        try:
            self.path = tempfile.mkdtemp(prefix=f".{name[:100]}.", suffix=TEMP_SUFFIX, dir=parent or ".")
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(self.path, 0o777 & ~mask)  # as a folder made by mkdir
        except OSError as exc:
            raise InputError(Problem(f"cannot write output: {exc.strerror or exc}", "-o", target)) from None

    def part(self, name: str) -> str:
        return os.path.join(self.path, name)

    def commit(self) -> None:
        real = os.path.realpath(self.target)
        old = None
        try:
            if os.path.exists(real):
                old = tempfile.mkdtemp(prefix=f".{os.path.basename(real)[:100]}.old.", suffix=TEMP_SUFFIX,
                                       dir=os.path.dirname(real) or ".")
                os.rename(real, os.path.join(old, "parts"))
            os.rename(self.path, real)
        except OSError as exc:
            raise InputError(Problem(f"cannot write output: {exc.strerror or exc}", "-o", self.target)) from None
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _ours(name: str) -> bool:
    return (name.startswith("part-") and name.endswith(".parquet")) or name == MANIFEST


@contextlib.contextmanager
def parts_folder(target: str | None, inputs: Sequence[str]) -> Iterator[PartsFolder | None]:
    """A PartsFolder committed when the block succeeds and removed when it fails or is interrupted."""
    if target is None:
        yield None
        return
    folder = PartsFolder(target, inputs)
    try:
        yield folder
    except BaseException:
        folder.discard()
        raise
    folder.commit()


def _write_part(path: str, fill: Any) -> None:
    """Write a part to a file of its own, then rename it to `path`: a task run again (its worker died)
    replaces the part whole. Nothing is written once the run's folder is gone (a cancelled run).
    `fill(writer)` writes its tables to a TableWriter; the part is kept only when it returns."""
    from ..io.writer import TableWriter

    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise InputError(Problem("the run's output folder is gone (the run was cancelled)", source=folder))
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
        output = Output("-o", path)
        output.path = temporary
        writer = TableWriter(output)
        done = False
        try:
            fill(writer)
            done = True
        finally:
            writer.close(keep=done)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


# ---------------------------------------------------------------- query
class _Collected:
    """A TableWriter's face for evaluate_file that keeps the tables (a part that goes back to the client)."""

    parquet = True

    def __init__(self) -> None:
        self.tables: list[Any] = []

    @property
    def empty(self) -> bool:
        return not self.tables

    def write(self, table: Any) -> None:
        self.tables.append(table)


def _query_task(tables: Any, config: str, path: str, part: str | None, skip_invalid: bool,
                threads: int | None) -> tuple[QueryStats, Any]:
    """Evaluate one file; write its part (returns no table) or return its table."""
    import pyarrow as pa


    engine = _engine(tables, config)
    stats = QueryStats()
    with arrow_settings(threads):
        if part is None:
            collected = _Collected()
            evaluate_file(engine, path, collected, stats, threads, skip_invalid)  # type: ignore[arg-type]
            return stats, pa.concat_tables(collected.tables)
        _write_part(part, lambda writer: evaluate_file(engine, path, writer, stats, threads, skip_invalid))
    return stats, None


def query_dask(engine: Engine, config: str, flows: str, output: str | None, spec: str, threads: int | None = None,
               skip_invalid: bool = False, progress: bool = False) -> tuple[QueryStats, float]:
    """`flowsim query --dask`: (the stats of every file together, the cluster's start in seconds)."""
    files = dataset_files(flows, "flow table")
    root = dataset_root(flows) if is_dataset(flows) else os.path.dirname(flows) or "."
    threads = 1 if threads is None else threads
    stats = QueryStats()
    meter = Progress(progress, None)
    try:
        with parts_folder(output, [flows, *files]) as folder, cluster(spec) as c:
            started = time.perf_counter()
            token = uuid.uuid4().hex[:8]
            handle = _tables_task(c.client, config, token)
            parts = [None if folder is None else folder.part(PART.format(i)) for i in range(len(files))]
            futures = [c.client.submit(_query_task, handle, config, path, part, skip_invalid, threads,
                                       key=f"flowsim-query-{i}-{token}")
                       for i, (path, part) in enumerate(zip(files, parts))]
            try:
                if folder is None:
                    _stream_csv(futures, files, meter)
                else:
                    _finish(futures, meter, "evaluating", "files")
                results = c.client.gather(futures)
            except BaseException:
                c.client.cancel([*futures, handle])
                raise
            for path, (part_stats, _) in zip(files, results):
                _add_stats(stats, part_stats, path)
            if folder is not None:
                manifest = {"flowsim": "query parts", "parts": [
                    {"part": PART.format(i), "file": relative_name(path, root), "rows": s.rows, "skipped": s.skipped}
                    for i, (path, (s, _)) in enumerate(zip(files, results))]}
                with open(folder.part(MANIFEST), "w", encoding="utf-8") as fh:
                    json.dump(manifest, fh, indent=1)
            stats.seconds = time.perf_counter() - started
            return stats, c.start_seconds
    finally:
        meter.close()


def _add_stats(total: QueryStats, part: QueryStats, path: str) -> None:
    total.rows += part.rows
    total.skipped += part.skipped
    total.counts.update(part.counts)
    if part.skipped:
        total.skipped_by_file[path] = part.skipped


def _stream_csv(futures: Sequence[Any], files: Sequence[str], meter: Progress) -> None:
    """The parts as CSV on standard output, in file order, as they come (the first file's columns)."""
    from ..io.writer import TableWriter
    from .query import Conformer

    writer = TableWriter(Output("-o", None))
    conform = Conformer()
    done = False
    try:
        for i, future in enumerate(futures):
            _, table = future.result()
            if table.num_rows or (writer.empty and i == len(futures) - 1):
                writer.write(conform(table, files[i]))
            meter.stage("evaluating", i + 1, len(futures), "files")
        done = True
    finally:
        writer.close(keep=done)


# ---------------------------------------------------------------- replay
def shard_of(chunk: Any, shards: int) -> np.ndarray:
    """Each record's shard: a hash of its canonical 5-tuple (address family, protocol, and the two
    endpoints (address, port) in sorted order), the same for a packet and its reply."""
    from ..kernels.shards import shard_ids

    out = np.empty(len(chunk), np.int64)
    shard_ids(chunk.src_fam, chunk.protocol, chunk.src_hi, chunk.src_lo, chunk.dst_hi, chunk.dst_lo, chunk.src_port,
              chunk.dst_port, np.int64(shards), out)
    return out


def _by_shard(chunk: Any, shards: int) -> tuple[np.ndarray, np.ndarray]:
    """The chunk's record indices grouped by shard (record order kept within each) and each shard's bounds."""
    from ..kernels.shards import group_by_shard

    order, bounds = np.empty(len(chunk), np.int64), np.empty(shards + 1, np.int64)
    group_by_shard(shard_of(chunk, shards), np.int64(shards), order, bounds)
    return order, bounds


@dataclass
class FileShards:
    """A map task's result: what its file tells (start, format, fields, records read, skips) and its
    records split by shard."""

    start: float
    format: str
    fields: frozenset[str]
    records_read: int
    skipped: Any
    pieces: list[Any]
    seconds: float = 0.0
    split_seconds: float = 0.0  # of which hashing and splitting (the shuffle's part in the map task)
    low: float = math.inf  # its earliest record time
    end: float = -math.inf  # its latest record time
    untimed: bool = False  # some record has no time (those replay after every timed record)


def _map_task(path: str, position: int, fmt: str | None, shards: int, chunk_rows: int) -> FileShards:
    """Read a file and split its records into shards."""
    from ..io.traces import TraceChunk, open_trace
    from ..io.traces.dataset import first_time

    started = time.perf_counter()
    reader = open_trace(path, fmt, chunk_rows=chunk_rows)
    pieces: list[list[Any]] = [[] for _ in range(shards)]
    start, fields = math.inf, None
    splitting = 0.0
    low, end, untimed = math.inf, -math.inf, False
    for chunk in reader:
        fields = chunk.carried() if fields is None else fields
        if start == math.inf:
            t = first_time(chunk)
            start = start if math.isnan(t) else t
        timed = ~np.isnan(chunk.time)
        untimed = untimed or not timed.all()
        if timed.any():
            low, end = min(low, float(chunk.time[timed].min())), max(end, float(chunk.time[timed].max()))
        chunk.columns = None  # a dataset's output has the decoded fields (flowsim.io.traces.dataset)
        chunk.file = np.full(len(chunk), position, np.int32)
        split = time.perf_counter()
        order, bounds = _by_shard(chunk, shards)
        grouped = _rows(chunk, order)
        for s in range(shards):
            if bounds[s + 1] > bounds[s]:
                pieces[s].append(_rows(grouped, slice(bounds[s], bounds[s + 1])))
        splitting += time.perf_counter() - split
    if fields is None:
        fields = reader.layout.carried() if reader.layout is not None else frozenset()
    split = time.perf_counter()
    joined = [TraceChunk.concat(p) if p else None for p in pieces]
    splitting += time.perf_counter() - split
    return FileShards(start, reader.format, fields, reader.records_read, reader.skipped, joined,
                      time.perf_counter() - started, splitting, low, end, untimed)


def _rows(chunk: Any, index: np.ndarray | slice) -> Any:
    """The chunk's records at `index`: copies for an index array, views for a slice."""
    from dataclasses import fields as dataclass_fields

    picked = {}
    for f in dataclass_fields(chunk):
        value = getattr(chunk, f.name)
        if value is None:
            picked[f.name] = None
        elif f.name != "columns":
            picked[f.name] = value[index]
        elif isinstance(index, slice):  # the columns are a pyarrow table
            picked[f.name] = value.slice(index.start, index.stop - index.start)
        else:
            picked[f.name] = value.take(index)
    return type(chunk)(**picked)


def _meta(result: FileShards) -> FileShards:
    """A map result without its records (what the client needs to order the files)."""
    return FileShards(result.start, result.format, result.fields, result.records_read, result.skipped, [],
                      result.seconds, result.split_seconds, result.low, result.end, result.untimed)


def _piece(result: FileShards, shard: int) -> Any:
    return result.pieces[shard]


@dataclass
class ShardResult:
    """What a shard's replay adds to the summary."""

    counts: dict[str, int]
    hits: np.ndarray
    denied: np.ndarray
    denied_exact: bool
    disagreements: list[tuple[tuple[int, int], dict[str, Any]]]
    invalid: Counter
    records: int
    seconds: float = 0.0
    sort_seconds: float = 0.0


_SUMMED = (*TALLIES, "sessions", "compared", "agree", "out_of_order")
_INVALID = "invalid record (address, direction or VPC)"


@dataclass
class ShardState:
    """A shard's replay between two waves of files: its session table and counts so far (the replayer, without
    its engine) and what its tasks measured."""

    replayer: Replayer
    invalid: Counter
    records: int
    seconds: float
    sort_seconds: float


def _reduce_task(tables: Any, config: str, state: ShardState | None, pieces: Sequence[Any], ranks: np.ndarray,
                 fields: frozenset[str], files: Sequence[str], name_files: bool, part: str | None, chunk_rows: int,
                 threads: int | None, timeout: float, last: bool) -> ShardState | ShardResult:
    """Replay one shard's records of a wave of files in (time, file, record) order, on from `state` (the shard's
    replay of the waves before; None for the first); the last wave's task returns the shard's result."""
    import copy

    from ..io.traces import TraceChunk

    started = time.perf_counter()
    engine = _engine(tables, config)
    chunks = []
    for piece in pieces:
        if piece is None or not len(piece):
            continue
        piece = piece.conform(fields)
        piece.file = ranks[piece.file].astype(np.int32)
        chunks.append(piece)
    if chunks:
        # a piece holds one file's records in record order: joined in the files' order, a stable sort by
        # time alone gives (time, file, record) order, NaN times last (mostly presorted runs: timsort merges them)
        chunks.sort(key=lambda piece: int(piece.file[0]))
        records = TraceChunk.concat(chunks)
        times = records.time
        if not bool(np.all(times[1:] >= times[:-1])):  # time-ordered files come joined in order already
            records = _rows(records, np.argsort(times, kind="stable"))
    else:
        records = TraceChunk.empty().conform(fields)
        records.file = np.zeros(0, np.int32)
    sorted_at = time.perf_counter()
    if state is None:
        state = ShardState(Replayer(engine, ReplaySummary(trace="", format=""), threads, timeout), Counter(), 0, 0.0, 0.0)
    else:  # a copy: the state handed in is a task's result, which a rerun of this task must find unchanged
        state = copy.deepcopy(state)
        state.replayer.attach(engine)
    replayer = state.replayer
    replayer.file_names = files if name_files else None
    invalid = state.invalid

    def run(writer: Any) -> None:
        for at in range(0, len(records), chunk_rows):
            chunk = _rows(records, slice(at, min(at + chunk_rows, len(records))))
            for piece, raw, stateful, valid in replayer.steps(chunk):
                if (~valid).any():
                    invalid[_INVALID] += int((~valid).sum())
                if writer is not None:
                    writer.write(verdict_table(replayer.engine, piece, raw, stateful, valid, files))
        if writer is not None and writer.empty:
            from .replay import flow_arrays

            raw = engine.evaluate_arrays(flow_arrays(records), threads)
            writer.write(verdict_table(engine, records, raw, np.zeros(0, bool), np.ones(0, bool), files))

    with arrow_settings(threads):
        if part is None:
            run(None)
        else:
            _write_part(part, run)
    state.records += len(records)
    state.seconds += time.perf_counter() - started
    state.sort_seconds += sorted_at - started
    if not last:
        return state
    s = replayer.summary
    return ShardResult({name: getattr(s, name) for name in _SUMMED}, replayer.hits, replayer.denied.counted(),
                       replayer.denied.exact, list(zip(replayer.disagreement_keys, s.disagreements)), invalid,
                       state.records, state.seconds, state.sort_seconds)


@dataclass
class DaskReplay:
    """A replay's summary and how its time went: the cluster's start, the map stage (reading, hashing and
    splitting the files), the shard stage (moving the pieces, sorting, replaying)."""

    summary: ReplaySummary
    start_seconds: float
    map_seconds: float
    shard_seconds: float
    shards: int
    workers: int
    map_results: list[FileShards] = field(default_factory=list)
    shard_results: list[ShardResult] = field(default_factory=list)
    waves: int = 1  # groups of files replayed one after another (their records held in turn)


def replay_dask(engine: Engine, config: str, trace: str, output: str | None, spec: str, fmt: str | None = None,
                threads: int | None = None, progress: bool = False, chunk_rows: int = 1 << 18,
                timeout: float = SESSION_TIMEOUT, shards: int | None = None,
                wave_files: int | None = None) -> DaskReplay:
    """`flowsim replay --dask`: the one-process replay's summary (and per-record parts, one per shard, in
    `output`), computed on the cluster `spec` names."""
    from ..io.traces import SkipCounts
    from ..io.traces.dataset import formats_of, probe

    files = dataset_files(trace, "trace")
    dataset = is_dataset(trace)
    root = dataset_root(trace) if dataset else os.path.dirname(trace) or "."
    threads = 1 if threads is None else threads
    meter = Progress(progress, None)
    try:
        with parts_folder(output, [trace, *files]) as folder, cluster(spec) as c:
            client = c.client
            wave = wave_files or WAVE_FILES_PER_WORKER * max(c.workers, 1)
            count = shards or min(MAX_SHARDS, max(2 * max(c.workers, 1), min(wave, len(files))))
            started = time.perf_counter()
            token = uuid.uuid4().hex[:8]
            handle = _tables_task(client, config, token)
            futures: list[Any] = [handle]
            try:
                starts = None  # one wave: the files' starts come with their records
                if len(files) > wave:  # waves go in replay order: each file's start first
                    probes = [client.submit(probe, path, fmt, key=f"flowsim-probe-{i}-{token}")
                              for i, path in enumerate(files)]
                    futures += probes
                    starts = client.gather(probes)
                results, heads, mapped, waves, order = _replay_waves(
                    client, handle, config, files, root, fmt, count, wave, chunk_rows, dataset, folder, threads, timeout,
                    meter, token, futures, starts)
            except BaseException:
                client.cancel(futures)
                raise
            finished = time.perf_counter()
            summary = ReplaySummary(trace=trace, format=formats_of(order))
            skipped = SkipCounts()
            head_of = {path: head for path, head in zip(files, heads)}
            for s in order:
                skipped.merge(head_of[s.path].skipped, s.path if dataset else "")
            _merge(engine, summary, results, skipped, sum(h.records_read for h in heads), timeout)
            summary.seconds = finished - started
            return DaskReplay(summary, c.start_seconds, mapped - started, finished - mapped, count, c.workers,
                              heads, results, waves)
    finally:
        meter.close()


def _replay_waves(client: Any, handle: Any, config: str, files: Sequence[str], root: str, fmt: str | None,
                  count: int, wave: int, chunk_rows: int, dataset: bool, folder: PartsFolder | None, threads: int,
                  timeout: float, meter: Progress, token: str, held: list[Any], starts: list[Any] | None,
                  ) -> tuple[list[ShardResult], list[FileShards], float, int, list[Any]]:
    """Replay the files wave by wave (`wave` files each, in replay order by `starts`; None: all of them in one
    wave, their starts read with their records), so that a worker holds the records of about two waves, not
    of the whole dataset; each shard's replay goes on from its state after the wave before. A wave is
    replayed once the next one is read: should a record of the next one come before one of this wave in
    (time, file, record) order, or this wave hold records without a time, the two waves are replayed as
    one instead. Returns the shards' results, every file's map result (without records), when the first
    wave was read, how many waves were replayed and the files in replay order. `held`: the futures a
    failure must cancel, kept current (holding every future would hold every record until the end)."""
    from distributed import wait

    from ..io.traces.dataset import FileStart, ordered

    heads: dict[int, FileShards] = {}
    maps: dict[int, Any] = {}

    def read(wave: list[int]) -> None:
        for i in wave:
            maps[i] = client.submit(_map_task, files[i], i, fmt, count, chunk_rows, key=f"flowsim-read-{i}-{token}")
        metas = [client.submit(_meta, maps[i], key=f"flowsim-meta-{i}-{token}") for i in wave]
        held.extend(metas)
        _finish(metas, meter, "reading and splitting", "files")
        heads.update(zip(wave, client.gather(metas)))

    position = {path: i for i, path in enumerate(files)}
    if starts is None:
        waves = [list(range(len(files)))]
        read(waves[0])
        order = ordered([FileStart(path, heads[i].start, heads[i].format, heads[i].fields)
                         for i, path in enumerate(files)])
    else:
        order = ordered(starts)
        replay_order = [position[s.path] for s in order]
        waves = [replay_order[at:at + wave] for at in range(0, len(files), wave)] or [[]]
        read(waves[0])
    mapped = time.perf_counter()
    ranks = np.zeros(len(files), np.int64)
    ranks[[position[s.path] for s in order]] = np.arange(len(order))
    names = [relative_name(s.path, root) for s in order]
    fields = frozenset().union(*(s.fields for s in order))
    states: list[Any] = [None] * count
    running: list[Any] = []
    latest = -math.inf
    number = 0
    while waves:
        current = waves.pop(0)
        if running:
            wait(running)  # the wave before has replayed: this wave's records and the next one's are all held
        while waves:
            read(waves[0])
            latest = max([latest] + [heads[i].end for i in current])
            earliest = min([math.inf] + [heads[i].low for i in waves[0]])
            if latest <= earliest and not any(heads[i].untimed for i in current):
                break
            current += waves.pop(0)  # they interleave: one wave
        last = not waves
        pieces = [[client.submit(_piece, maps[i], s, key=f"flowsim-piece-{i}-{s}-{token}") for i in current]
                  for s in range(count)]
        reduces = [client.submit(_reduce_task, handle, config, states[s], pieces[s], ranks, fields, names, dataset,
                                 None if folder is None else folder.part(PART.format(number * count + s)), chunk_rows,
                                 threads, timeout, last, key=f"flowsim-shard-{number}-{s}-{token}")
                   for s in range(count)]
        for i in current:  # held by the tasks that need them, no longer here
            del maps[i]
        del pieces
        running = states = reduces
        held[:] = [*states, *maps.values()]  # what a failure cancels (and, upstream, what they wait for)
        number += 1
    _finish(states, meter, "replaying", "shards")
    return client.gather(states), [heads[i] for i in range(len(files))], mapped, number, order


def _merge(engine: Engine, summary: ReplaySummary, results: Sequence[ShardResult], skipped: Any, records_read: int,
           timeout: float) -> None:
    """The shards' results as one summary, as one process would have made it."""
    replayer = Replayer(engine, summary, None, timeout)
    invalid: Counter = Counter()
    kept: list[tuple[tuple[int, int], dict[str, Any]]] = []
    for r in results:
        for name, value in r.counts.items():
            setattr(summary, name, getattr(summary, name) + value)
        replayer.hits += r.hits
        invalid.update(r.invalid)
        kept += r.disagreements
    kept.sort(key=lambda kd: kd[0])
    summary.disagreements = [d for _, d in kept[:DISAGREEMENTS_KEPT]]
    replayer.denied = FlowCounter.merged([(r.denied, r.denied_exact) for r in results])
    summary.records = max(records_read, summary.evaluated + sum(skipped.values()) + sum(invalid.values()))
    summary.skipped = dict(skipped)
    summary.skipped_examples = {k: list(v) for k, v in skipped.examples.items()}
    replayer.finish(invalid)


__all__ = ["DaskReplay", "parse_spec", "query_dask", "replay_dask", "shard_of"]
