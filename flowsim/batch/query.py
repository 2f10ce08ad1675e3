"""`flowsim query`: stream a flow table through the engine in bounded-memory chunks.

CSV and Parquet in, CSV or Parquet out (by suffix), input columns kept and the
verdict columns added. A file with invalid rows fails with their line numbers
(no partial output left behind) unless the user asks to skip and count them.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa

from ..engine.engine import VERDICT_NAMES, Engine, invalid_row_problems, set_threads
from ..errors import InputError, Problem
from ..io.datasets import dataset_files, is_dataset
from ..io.flows import check_columns, prepare_flows
from ..io.inputs import Input
from ..io.outputs import Output, writing
from ..io.progress import Progress
from ..io.writer import TableWriter

CHUNK_ROWS = 1 << 20
# Arrow's CSV reader reads up to 32 blocks ahead: 4 MiB blocks bound that to 128 MiB and parse as fast
# as larger ones (32 MiB blocks made a 400 MB file's whole text resident).
CSV_BLOCK_BYTES = 4 << 20
_TEXT_COLUMNS = ("src_ip", "dst_ip", "protocol", "src_port", "dst_port", "vpc", "eni", "direction")


@dataclass
class QueryStats:
    """What a query did: rows in, verdict counts, rows skipped."""

    rows: int = 0
    skipped: int = 0
    counts: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    skipped_by_file: dict[str, int] = field(default_factory=dict)  # a dataset's files that had rows skipped


@dataclass
class FlowTable:
    """An open flow table: its kind, its columns, its row count when known, and its batches."""

    source: str
    parquet: bool
    total_rows: int | None
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    malformed: list[str] = field(default_factory=list)  # CSV lines with the wrong number of fields, skipped
    input: Input | None = None


def open_flow_table(path: str | os.PathLike, chunk_rows: int = CHUNK_ROWS, skip_invalid: bool = False) -> FlowTable:
    """Open a CSV (with header) or Parquet flow table for streaming: a file, ``-`` (standard input), a pipe
    or FIFO, gzip-compressed or not; errors name the file. A CSV line with the wrong number of fields
    fails naming it, or with `skip_invalid` is skipped and listed in `malformed`."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    flows = Input(path, "flow table")
    source = flows.name
    parquet = flows.head[:4] == b"PAR1"
    kind = "Parquet" if parquet else "CSV"

    malformed: list[str] = []
    wrong: list[Problem] = []

    def bad_row(row) -> str:
        malformed.append(row.text)
        if not skip_invalid and not wrong:
            line = row.number if row.number is not None else _line_holding(flows, row.text)
            wrong.append(Problem(f"expected {row.expected_columns} fields, found {row.actual_columns}", source=source,
                                 line=line))
        return "skip"

    def guarded(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        try:
            for batch in batches:
                if wrong:
                    raise InputError(wrong)
                for start in range(0, batch.num_rows, chunk_rows):
                    yield batch.slice(start, chunk_rows)
            if wrong:
                raise InputError(wrong)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(Problem(f"not a readable {kind} flow table: {exc}", source=source)) from None

    try:
        if parquet:
            data = flows.random_access()
            schema = pq.read_schema(data)
            check_columns(schema, source)
            names = schema.names
            # text columns come dictionary-encoded: each distinct address or name is parsed once;
            # pre-buffering would keep every row group read so far in memory
            pf = pq.ParquetFile(data, read_dictionary=[c for c in _TEXT_COLUMNS if c in names], pre_buffer=False)
            return FlowTable(source, True, pf.metadata.num_rows, pf.schema_arrow,
                             guarded(pf.iter_batches(batch_size=chunk_rows)), input=flows)
        types = {c: pa.dictionary(pa.int32(), pa.string()) for c in _TEXT_COLUMNS}
        reader = pacsv.open_csv(flows.arrow(), read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                                parse_options=pacsv.ParseOptions(invalid_row_handler=bad_row),
                                convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True))
        check_columns(reader.schema, source)
        return FlowTable(source, False, None, reader.schema, guarded(iter(reader)), malformed, flows)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(Problem(f"not a readable {kind} flow table: {exc}", source=source)) from None


def _line_holding(flows: Input, text: str) -> int | None:
    """The first line of a plain file that is `text` (pyarrow's streaming reader does not number the rows
    it cannot parse); None for a stream or a compressed file, which cannot be read again."""
    if not flows.regular or flows.compressed:
        return None
    with open(flows.path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.rstrip(b"\r\n").decode("utf-8", "replace") == text:
                return number
    return None


def _data_lines(flows: Input | None, rows: list[int]) -> dict[int, int]:
    """The file lines of data rows (numbered from 0 as Arrow's reader yields them: below the header, blank
    lines left out) of a plain or compressed file, read again; none for a stream, which cannot be."""
    if flows is None or not flows.regular or not rows:
        return {}
    wanted, found, row, header = set(rows), {}, -1, False
    with flows.open() as fh:
        for number, line in enumerate(fh, 1):
            if not line.rstrip(b"\r\n"):
                continue  # Arrow skips empty lines
            if not header:
                header = True
                continue
            row += 1
            if row in wanted:
                found[row] = number
                if len(found) == len(wanted):
                    break
    return found


@contextmanager
def arrow_settings(threads: int | None) -> Iterator[None]:
    """Arrow as a command wants it while inside: at most `threads` decoding threads (None: as it is), so
    that --threads bounds the reading as well as the evaluation; and the system allocator for what is
    opened inside. Arrow's default (mimalloc) hands freed chunk buffers back to the kernel and faults
    them in again for the next chunk; page faults are dear on virtual machines."""
    if threads is not None:
        set_threads(threads)  # checks the number, and numba follows it too
    previous_threads, previous_pool = pa.cpu_count(), pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    if threads is not None:
        pa.set_cpu_count(threads)
    try:
        yield
    finally:
        pa.set_cpu_count(previous_threads)
        pa.set_memory_pool(previous_pool)


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A batch of no rows with the table's columns: an empty table still gives its output a header (schema)."""
    return pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in schema], schema=schema)


def run_query(engine: Engine, flows_path: str, output: str | Output | None, threads: int | None = None,
              skip_invalid: bool = False, progress: bool = False) -> QueryStats:
    """Evaluate every flow of a file, or of every file of a dataset (flowsim.io.datasets) one after the
    other, and write input columns plus verdicts (``output`` None: stdout).

    The output appears at its path only when the whole run succeeded (flowsim.io.outputs). A dataset's
    tables go to the one output with the columns of its first file (ports as integers); a file whose
    columns differ fails, naming it."""
    files = dataset_files(flows_path, "flow table") if is_dataset(flows_path) else [flows_path]
    with writing(output, inputs=[("flow table", flows_path)]) as target, arrow_settings(threads):
        stats, writer = QueryStats(), TableWriter(target)
        meter = Progress(progress, None)
        started, done = time.perf_counter(), False
        conform = Conformer() if len(files) > 1 or files[0] != flows_path else None
        try:
            for path in files:
                skipped = stats.skipped
                evaluate_file(engine, path, writer, stats, threads, skip_invalid, meter, conform, last=path == files[-1])
                if stats.skipped > skipped:
                    stats.skipped_by_file[path] = stats.skipped - skipped
            done = True
        finally:
            meter.close()
            writer.close(keep=done)
    stats.seconds = time.perf_counter() - started
    return stats


def evaluate_file(engine: Engine, path: str, writer: TableWriter, stats: QueryStats, threads: int | None,
                  skip_invalid: bool, meter: Progress | None = None, conform: Conformer | None = None,
                  last: bool = True) -> None:
    """Evaluate the flows of one file into `writer`, adding to `stats`; when nothing has been written by
    the `last` file, its columns still reach the output (an empty table keeps its header)."""
    flows = open_flow_table(path, skip_invalid=skip_invalid)
    if meter is not None and conform is None:
        meter.total = flows.total_rows
    write = writer.write if conform is None else (lambda table: writer.write(conform(table, flows.source)))
    for batch in flows.batches:
        _evaluate_batch(engine, flows, batch, write, writer.parquet or conform is not None, stats, threads, skip_invalid)
        if meter is not None:
            meter.update(stats.rows + stats.skipped)
    if writer.empty and last:
        _evaluate_batch(engine, flows, _empty_batch(flows.schema), write, writer.parquet or conform is not None, stats,
                        threads, skip_invalid)
    stats.skipped += len(flows.malformed)


class Conformer:
    """Tables of a dataset's files made to fit one output: the columns (names, order and types) of the
    first file that has rows, ports as integers."""

    def __init__(self) -> None:
        self.schema: pa.Schema | None = None
        self.first = ""

    def __call__(self, table: pa.Table, source: str) -> pa.Table:
        if self.schema is None:
            self.schema, self.first = table.schema, source
            return table
        if set(table.column_names) != set(self.schema.names):
            raise InputError(Problem(f"its columns ({', '.join(table.column_names)}) differ from those of {self.first} "
                                     f"({', '.join(self.schema.names)}): one output cannot hold both", source=source))
        try:
            return table.select(self.schema.names).cast(self.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(Problem(f"its columns cannot take the types of those of {self.first}: {exc}",
                                     source=source)) from None


def _integer_ports(table: pa.Table) -> pa.Table:
    """Port columns read as text (from CSV) as int32 for Parquet output: blank is null; a column holding
    anything else that is not a number stays text, as it came."""
    import pyarrow.compute as pc

    for name in ("src_port", "dst_port"):
        if name not in table.column_names:
            continue
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        text = pc.utf8_trim_whitespace(column)
        try:
            ports = pc.cast(pc.if_else(pc.equal(text, ""), pa.scalar(None, text.type), text), pa.int32())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        table = table.set_column(table.column_names.index(name), name, ports)
    return table


def _evaluate_batch(engine: Engine, flows: FlowTable, batch: pa.RecordBatch, write: Callable[[pa.Table], None],
                    integer_ports: bool, stats: QueryStats, threads: int | None, skip_invalid: bool) -> None:
    table = pa.Table.from_batches([batch])
    prepared = prepare_flows(table)
    raw = engine.evaluate_arrays(prepared, threads)
    if prepared.invalid.any():
        if not skip_invalid:
            before = stats.rows + stats.skipped  # the data rows read before this batch
            if flows.parquet:
                raise InputError(invalid_row_problems(prepared, flows.source, first_row=before))
            lines = _data_lines(flows.input, [before + row for row, _ in prepared.reasons])
            # a stream's line is the row's number after the header, right unless blank lines came before it
            raise InputError(invalid_row_problems(prepared, flows.source,
                                                  lambda row: lines.get(before + row, before + row + 2)))
        keep = ~prepared.invalid
        stats.skipped += int((~keep).sum())
        table = table.filter(pa.array(keep))
        raw = raw.take(keep)
    table = engine.with_verdicts(table, raw)
    if integer_ports:
        table = _integer_ports(table)
    write(table)
    stats.rows += table.num_rows
    counts = np.bincount(raw.verdict, minlength=len(VERDICT_NAMES))
    for code, name in enumerate(VERDICT_NAMES):
        stats.counts[name] += int(counts[code])
