"""Tables of records (flow logs, flow tables) into TraceChunks, vectorised.

Flow logs and flow tables name their fields differently; each reader maps its
column names onto the canonical fields below and hands Arrow tables here.
Values that cannot be parsed make the record malformed (counted, never fatal).
"""
from __future__ import annotations

import csv
import io
from typing import Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ...kernels.codes import ACTION_ACCEPT, ACTION_REJECT, DIR_EGRESS, DIR_INGRESS, PORTED
from ...model.network import flow_protocol_number as _protocol_number
from ...model.network import protocol_name
from ..arrays import parse_int_array, parse_ip_array
from ..flows import by_value as _by_value
from ..inputs import Input
from . import SkipCounts, TraceChunk, TraceReader

REQUIRED = ("src", "dst", "protocol")

DIRECTIONS = {"in": DIR_INGRESS, "ingress": DIR_INGRESS, "out": DIR_EGRESS, "egress": DIR_EGRESS}
ACTIONS = {"accept": ACTION_ACCEPT, "reject": ACTION_REJECT}
STATUSES = {"ok": 0, "nodata": 1, "skipdata": 2}
STATUS_REASONS = {1: "NODATA", 2: "SKIPDATA"}
ABSENT = ("", "-")  # text that means "no value"
MAX_COUNT = (1 << 62) - 1
CSV_BLOCK_BYTES = 4 << 20  # CSV is read and parsed a block of lines at a time
TEXT = pa.dictionary(pa.int32(), pa.string())  # how text columns are read: parsed once per distinct value


def _array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def _is_number(arr: pa.Array) -> bool:
    return pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)


def _absent(values: pa.Array) -> np.ndarray:
    """Text that means "no value": null, empty or "-"."""
    text = pc.utf8_trim_whitespace(values.cast(pa.large_string()))
    return pc.or_(values.is_null(), pc.is_in(text, pa.array(ABSENT))).to_numpy(zero_copy_only=False)


# Parsed integer columns hold these where a row has no value or a bad one.
ABSENT_VALUE = -1
BAD_VALUE = -2


def _lookup(arr: pa.Array, parse: Callable[[str], int | None]) -> np.ndarray:
    """Each row's text mapped through ``parse`` (applied once per distinct text), or ABSENT/BAD_VALUE."""

    def per_value(values: pa.Array) -> tuple[np.ndarray]:
        out = []
        for v in values.to_pylist():
            text = None if v is None else str(v).strip()
            parsed = None if text is None or text in ABSENT else parse(text)
            out.append(ABSENT_VALUE if text is None or text in ABSENT else BAD_VALUE if parsed is None else parsed)
        return (np.array(out, np.int64),)

    return _by_value(arr, per_value, (ABSENT_VALUE,))[0]


def _label(table: dict[str, int]) -> Callable[[str], int | None]:
    return lambda text: table.get(text.lower())


def _integers(arr: pa.Array, hi: int) -> np.ndarray:
    """Integers in 0..hi given as numbers or text, or ABSENT/BAD_VALUE."""

    def parse(values: pa.Array) -> tuple[np.ndarray]:
        parsed, ok = parse_int_array(values, 0, hi)
        absent = values.is_null().to_numpy(zero_copy_only=False) if _is_number(values) else _absent(values)
        return (np.where(absent, ABSENT_VALUE, np.where(ok, parsed, BAD_VALUE)),)

    if pa.types.is_integer(arr.type) and not arr.null_count:
        values = arr.to_numpy().astype(np.int64, copy=False)
        if not len(values) or (values.min() >= 0 and values.max() <= hi):
            return values
    return parse(arr)[0] if _is_number(arr) else _by_value(arr, parse, (ABSENT_VALUE,))[0]


def _times(arr: pa.Array) -> np.ndarray:
    """Unix seconds: NaN where absent, negative where the text is not a number."""
    if _is_number(arr):
        return arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)

    def per_value(values: pa.Array) -> tuple[np.ndarray]:
        text = pc.utf8_trim_whitespace(values.cast(pa.large_string()))
        number = pc.match_substring_regex(text, r"^[0-9]+(\.[0-9]*)?$").fill_null(False)
        seconds = pc.if_else(number, text, pa.scalar(None, pa.large_string())).cast(pa.float64())
        seconds = seconds.fill_null(np.nan).to_numpy(zero_copy_only=False)
        return (np.where(number.to_numpy(zero_copy_only=False) | _absent(values), seconds, -1.0),)

    return _by_value(arr, per_value, (np.nan,))[0]


def _ids(arr: pa.Array) -> np.ndarray:
    """Object array of identifiers; "" where absent."""

    def per_value(values: pa.Array) -> tuple[np.ndarray]:
        texts = ["" if v is None or str(v).strip() in ABSENT else str(v).strip() for v in values.to_pylist()]
        return (np.array(texts, dtype=object),)

    return _by_value(arr, per_value, ("",))[0]


PROTOCOL_TEXTS = pa.array([protocol_name(number) for number in range(256)], pa.string())


def protocol_names(numbers: np.ndarray) -> pa.DictionaryArray:
    """Protocol numbers 0..255 as per-record output writes them, as `flowsim query` passes on a flow table's:
    by name where there is one (tcp, udp, icmp, icmpv6, gre), else the number, as text in CSV and Parquet alike."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(numbers, np.int32)), PROTOCOL_TEXTS)


def _addresses(arr: pa.Array, memo: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _by_value(arr, parse_ip_array, (0, 0, 0), memo)


class ChunkBuilder:
    """Builds chunks from tables whose columns ``names`` maps onto canonical fields.

    The canonical fields are src, dst, protocol (required), src_port, dst_port,
    time, eni, direction, action, vpc, packets, bytes and log_status. ``unit``
    words the places of skipped records ("line" or "row"); ``endpoint`` gives
    every chunk ENI, direction and action arrays even where the format lacks
    them (flow logs), otherwise only the fields present are filled, and (flow
    logs again, whose protocol field is a number by format) names the protocols
    of the chunk's columns as a flow table would (``protocol_names``).
    """

    def __init__(self, names: dict[str, str], skipped: SkipCounts, malformed: str, unit: str,
                 endpoint: bool) -> None:
        self.names = names
        self.skipped = skipped
        self.malformed = malformed
        self.unit = unit
        self.endpoint = endpoint
        self.parsed: dict[str, dict] = {"src": {}, "dst": {}}  # by_value's memo per address column

    def _col(self, table: pa.Table, field: str) -> pa.Array | None:
        name = self.names.get(field)
        return _array(table.column(name)) if name is not None else None

    def _skip(self, keep: np.ndarray, mask: np.ndarray, reason: str, where: np.ndarray) -> None:
        hit = keep & mask
        at = where[hit]
        self.skipped.add(reason, len(at), (f"{self.unit} {w}" for w in at[:SkipCounts.EXAMPLES]))
        keep &= ~mask

    def build(self, table: pa.Table, record: np.ndarray, where: np.ndarray) -> TraceChunk | None:
        """The chunk of the table's replayable records; the others are counted as skipped.

        ``record`` numbers each row in the file (0-based); ``where`` is the
        1-based line or row number quoted for skipped ones.
        """
        n = table.num_rows
        keep = np.ones(n, bool)
        status = self._col(table, "log_status")
        if status is not None:
            code = _lookup(status, _label(STATUSES))
            for value, reason in STATUS_REASONS.items():
                self._skip(keep, code == value, reason, where)
        missing = [f for f in REQUIRED if f not in self.names]
        if missing:
            self._skip(keep, np.ones(n, bool), f"no {missing[0]} field in the log format", where)
            return None

        bad: list[tuple[str, np.ndarray]] = []
        sfam, shi, slo = _addresses(self._col(table, "src"), self.parsed["src"])
        dfam, dhi, dlo = _addresses(self._col(table, "dst"), self.parsed["dst"])
        bad += [(self.names["src"], sfam == 0), (self.names["dst"], dfam == 0)]
        proto_arr = self._col(table, "protocol")
        proto = _integers(proto_arr, 255) if _is_number(proto_arr) else _lookup(proto_arr, _protocol_number)
        bad.append((self.names["protocol"], proto < 0))
        ported = np.isin(proto, PORTED)
        ports = []
        for field in ("src_port", "dst_port"):
            col = self._col(table, field)
            port = np.full(n, ABSENT_VALUE) if col is None else _integers(col, 65535)
            bad.append((self.names.get(field, field), (port == BAD_VALUE) | (ported & (port == ABSENT_VALUE))))
            ports.append(np.where(ported, port, 0).astype(np.int32))
            if col is not None and not pa.types.is_integer(col.type):  # text ports are written as numbers
                table = table.set_column(table.column_names.index(self.names[field]), self.names[field],
                                         pa.array(np.maximum(port, 0).astype(np.int32), mask=port < 0))

        out: dict[str, np.ndarray | None] = {}
        time = self._col(table, "time")
        out["time"] = np.full(n, np.nan) if time is None else _times(time)
        if time is not None:
            bad.append((self.names["time"], out["time"] < 0))
        for field, labels in (("direction", DIRECTIONS), ("action", ACTIONS)):
            col = self._col(table, field)
            if col is not None:
                values = _lookup(col, _label(labels))
                bad.append((self.names[field], values == BAD_VALUE))
                out[field] = np.maximum(values, 0).astype(np.int8)
            elif self.endpoint:
                out[field] = np.zeros(n, np.int8)
        for field in ("eni", "vpc"):
            col = self._col(table, field)
            if col is not None:
                out[field] = _ids(col)
            elif field == "eni" and self.endpoint:
                out[field] = np.full(n, "", dtype=object)
        for field in ("packets", "bytes"):
            col = self._col(table, field)
            if col is not None:
                out[field] = np.maximum(_integers(col, MAX_COUNT), 0)

        self._skip_malformed(keep, bad, where)
        if self.endpoint:
            at = table.column_names.index(self.names["protocol"])
            table = table.set_column(at, self.names["protocol"], protocol_names(np.maximum(proto, 0)))
        chunk = TraceChunk(
            src_fam=sfam, src_hi=shi, src_lo=slo, dst_fam=dfam, dst_hi=dhi, dst_lo=dlo,
            protocol=np.maximum(proto, 0).astype(np.int16), src_port=ports[0], dst_port=ports[1], record=record,
            columns=table, **out)
        if keep.all():
            return chunk
        for name, value in vars(chunk).items():
            if isinstance(value, np.ndarray):
                setattr(chunk, name, value[keep])
        chunk.columns = table.filter(pa.array(keep))
        return chunk

    def _skip_malformed(self, keep: np.ndarray, bad: list[tuple[str, np.ndarray]], where: np.ndarray) -> None:
        """Count rows with any bad field, naming the first bad field of the first few."""
        any_bad = np.zeros(len(keep), bool)
        for _, mask in bad:
            any_bad |= mask
        rows = np.flatnonzero(keep & any_bad)
        places = [f"{self.unit} {where[r]}: {next(name for name, mask in bad if mask[r])}"
                  for r in rows[:SkipCounts.EXAMPLES]]
        self.skipped.add(self.malformed, len(rows), places)
        keep &= ~any_bad


def csv_header(head: bytes) -> list[str]:
    """Column names from the header row (the first non-blank line) of a CSV file's first bytes."""
    text = head.decode("utf-8-sig", errors="replace")
    line = next((line for line in text.split("\n") if line.strip()), "").rstrip("\r")
    try:
        return next(csv.reader([line]), [])
    except csv.Error:  # a stray carriage return or NUL: no header a flow table could have
        return []


def text_blocks(source: Input, block_bytes: int) -> Iterator[tuple[bytes, int]]:
    """Line-aligned blocks of a text file, each with the 1-based number of its first line."""
    line = 1
    rest = b""
    with source.open() as f:
        while True:
            data = f.read(block_bytes)
            if not data:
                if rest:
                    yield rest, line
                return
            data = rest + data
            cut = data.rfind(b"\n") + 1
            block, rest = data[:cut], data[cut:]
            if block:
                yield block, line
                line += block.count(b"\n")


def check_utf8(reader: TraceReader, block: bytes, first_line: int) -> None:
    """A flow log is text: bytes that are not UTF-8 make the file unreadable."""
    try:
        block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise reader.error("not UTF-8 text", line=first_line + block.count(b"\n", 0, exc.start)) from None


def _empty_lines(block: bytes, lines: int) -> np.ndarray:
    """Which of the block's lines hold nothing but their line end."""
    if not (block.startswith((b"\n", b"\r\n")) or b"\n\n" in block or b"\n\r\n" in block):
        return np.zeros(lines, bool)
    buf = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(ends) < lines:  # the last line has no line end
        ends = np.append(ends, len(buf))
    starts = np.concatenate([[0], ends[:-1] + 1])
    length = ends - starts
    return (length == 0) | ((length == 1) & (buf[np.minimum(starts, len(buf) - 1)] == 13))


def _after_header(block: bytes, first_line: int) -> tuple[bytes, int, bool]:
    """The block less a byte-order mark, the blank lines before the header and the header itself, the
    number of its first line left, and whether the header was found in it."""
    if first_line == 1 and block.startswith(b"\xef\xbb\xbf"):
        block = block[3:]
    pos = 0
    while pos < len(block):
        end = block.find(b"\n", pos)
        end = len(block) if end < 0 else end + 1
        if block[pos:end].strip():
            return block[end:], first_line + 1, True
        pos, first_line = end, first_line + 1
    return b"", first_line, False


def csv_chunks(reader: TraceReader, names: list[str], malformed: str, builder: ChunkBuilder) -> Iterator[TraceChunk]:
    """Stream a CSV file with a header row as chunks, a block of lines at a time.

    Records are the non-blank lines below the header, numbered from 0 in file order; a line with the
    wrong number of fields is a record counted as ``malformed``. Skipped records are quoted by their line
    in the file (blank lines count there and nowhere else), so what comes before never shifts them.
    """
    types = {n: TEXT for n in names}
    header = False
    for block, first_line in text_blocks(reader.source, CSV_BLOCK_BYTES):
        if not header:
            block, first_line, header = _after_header(block, first_line)
        if not block:
            continue
        odd: list[tuple[int, int, int, str]] = []  # (line in the block from 0, fields, fields expected, text)

        def invalid(row: pcsv.InvalidRow) -> str:
            if row.number is None:  # pyarrow numbers the rows it reads on one thread
                raise RuntimeError("pyarrow did not number an invalid CSV row")
            odd.append((row.number - 1, row.actual_columns, row.expected_columns, row.text))
            return "skip"

        try:
            table = pcsv.read_csv(
                io.BytesIO(block), read_options=pcsv.ReadOptions(column_names=names, use_threads=False),
                parse_options=pcsv.ParseOptions(invalid_row_handler=invalid, ignore_empty_lines=False),
                convert_options=pcsv.ConvertOptions(column_types=types))
        except pa.ArrowInvalid as exc:
            raise reader.error(f"unreadable CSV: {exc}") from None
        lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        blank = _empty_lines(block, lines)
        for at, _, _, text in odd:
            blank[at] |= not text.strip()
        wrong = [(at, got, want) for at, got, want, text in odd if text.strip()]
        reader.skipped.add(malformed, len(wrong), (f"line {first_line + at}: {got} of {want} fields"
                                                   for at, got, want in wrong[:SkipCounts.EXAMPLES]))
        parsed = np.delete(np.arange(lines), [at for at, *_ in odd])  # the line of each row read
        if len(parsed) != table.num_rows:
            raise RuntimeError(f"read {table.num_rows} CSV rows from {len(parsed)} lines")
        record = reader.records_read + np.cumsum(~blank) - 1
        reader.records_read += int(lines - blank.sum())
        if blank[parsed].any():
            table = table.filter(pa.array(~blank[parsed]))
            parsed = parsed[~blank[parsed]]
        yield from sliced_chunks(builder, table, record[parsed], first_line + parsed, reader.chunk_rows)


def sliced_chunks(builder: ChunkBuilder, table: pa.Table, record: np.ndarray, where: np.ndarray,
                  chunk_rows: int) -> Iterator[TraceChunk]:
    """Build the table's chunks, at most ``chunk_rows`` rows each."""
    for start in range(0, table.num_rows, chunk_rows):
        end = start + chunk_rows
        chunk = builder.build(table.slice(start, chunk_rows), record[start:end], where[start:end])
        if chunk is not None:
            yield chunk


def batch_chunks(reader: TraceReader, batches: Iterable[pa.RecordBatch],
                 builder: Callable[[list[str]], ChunkBuilder]) -> Iterator[TraceChunk]:
    """Chunks of at most ``reader.chunk_rows`` rows (of a Parquet file); records are numbered by row, from 0.

    ``builder`` makes the ChunkBuilder from the first batch's column names.
    """
    rows = 0
    build: ChunkBuilder | None = None
    for batch in batches:
        build = build or builder(batch.schema.names)
        record = rows + np.arange(batch.num_rows)
        rows += batch.num_rows
        reader.records_read += batch.num_rows
        yield from sliced_chunks(build, pa.Table.from_batches([batch]), record, record + 1, reader.chunk_rows)
