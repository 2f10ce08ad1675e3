"""Trace readers: packet captures, VPC flow logs and flow tables as a stream of chunks.

Every reader yields :class:`TraceChunk` objects of at most ``chunk_rows``
records, reading the file in bounded memory. Records that cannot be replayed
(``NODATA``/``SKIPDATA`` flow-log records, truncated packets, non-IP frames,
malformed lines) are counted by reason in ``reader.skipped``; only a file that
is not the format at all raises :class:`~flowsim.errors.InputError`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from ...errors import InputError, Problem
from ..inputs import Input

FORMATS = ("native", "alibaba-flowlog", "aws-flowlog", "pcap", "pcapng")

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
PARQUET_MAGIC = b"PAR1"


@dataclass
class TraceChunk:
    """Records of one chunk, column-wise.

    Addresses are (family 4/6, high 64 bits, low 64 bits). ``time`` is unix
    seconds, NaN where a record has none. ``eni``/``direction``/``action`` are
    None for path-mode traces; ``direction`` is 1 in (ingress), 2 out (egress),
    0 unknown; ``action`` is 1 ACCEPT, 2 REJECT, 0 not recorded. ``record`` is
    the 0-based record (packet, line or row) number in the file; outputs show it 1-based.
    """

    OPTIONAL = ("eni", "direction", "action", "vpc", "packets", "bytes")  # fields a format may lack

    time: np.ndarray
    src_fam: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_fam: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    protocol: np.ndarray
    src_port: np.ndarray
    dst_port: np.ndarray
    record: np.ndarray
    eni: np.ndarray | None = None
    direction: np.ndarray | None = None
    action: np.ndarray | None = None
    vpc: np.ndarray | None = None
    packets: np.ndarray | None = None
    bytes: np.ndarray | None = None
    columns: pa.Table | None = None
    file: np.ndarray | None = None  # a dataset's records: the position of each one's file (flowsim.io.traces.dataset)

    def __len__(self) -> int:
        return len(self.record)

    @classmethod
    def empty(cls, n: int = 0) -> TraceChunk:
        """No records (or n all-zero ones), with only the fields every trace has (a capture's)."""
        types = {"time": np.float64, "src_fam": np.uint8, "src_hi": np.uint64, "src_lo": np.uint64,
                 "dst_fam": np.uint8, "dst_hi": np.uint64, "dst_lo": np.uint64, "protocol": np.int16,
                 "src_port": np.int32, "dst_port": np.int32, "record": np.int64}
        return cls(**{name: np.zeros(n, t) for name, t in types.items()})

    def carried(self) -> frozenset[str]:
        """The optional fields (OPTIONAL) this chunk carries."""
        return frozenset(name for name in self.OPTIONAL if getattr(self, name) is not None)

    def conform(self, fields: frozenset[str] | set[str]) -> TraceChunk:
        """This chunk with every optional field of `fields` present (absent ones as "none": no ENI or VPC,
        no direction or action, no counts), so that chunks of files of different formats concatenate."""
        missing = {name: _absent_field(name, len(self)) for name in fields if getattr(self, name) is None}
        if not missing:
            return self
        return replace(self, **missing)

    def take(self, mask: np.ndarray) -> TraceChunk:
        """The records where ``mask`` is true."""
        picked = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                picked[f.name] = None
            elif f.name == "columns":
                picked[f.name] = value.filter(pa.array(mask))
            else:
                picked[f.name] = value[mask]
        return type(self)(**picked)

    @classmethod
    def concat(cls, chunks: list[TraceChunk]) -> TraceChunk:
        """One chunk holding the records of several (which must carry the same fields)."""
        if len(chunks) == 1:
            return chunks[0]
        joined = {}
        for f in fields(cls):
            parts = [getattr(c, f.name) for c in chunks]
            if parts[0] is None:
                joined[f.name] = None
            elif f.name == "columns":
                joined[f.name] = pa.concat_tables(parts, promote_options="permissive")
            else:
                joined[f.name] = np.concatenate(parts)
        return cls(**joined)


def _absent_field(name: str, n: int) -> np.ndarray:
    if name in ("eni", "vpc"):
        return np.full(n, "", dtype=object)
    if name in ("direction", "action"):
        return np.zeros(n, np.int8)
    return np.zeros(n, np.int64)


class SkipCounts(dict):
    """Records skipped, by reason (reason -> count), with where the first few of each were."""

    EXAMPLES = 5

    def __init__(self) -> None:
        super().__init__()
        self.examples: dict[str, list[str]] = {}

    def add(self, reason: str, count: int, places: Iterable[str] = ()) -> None:
        """Count ``count`` records skipped for ``reason``; ``places`` names the first of them."""
        if count <= 0:
            return
        self[reason] = self.get(reason, 0) + count
        kept = self.examples.setdefault(reason, [])
        for place in places:
            if len(kept) >= self.EXAMPLES:
                break
            kept.append(place)

    def merge(self, other: SkipCounts, prefix: str = "") -> None:
        """Add another file's counts, naming its places with `prefix` (the file) in front."""
        for reason, count in other.items():
            self.add(reason, count, (f"{prefix} {place}" if prefix else place for place in other.examples.get(reason, [])))

    def problems(self, source: str) -> list[Problem]:
        """One line per reason, naming the file and the first records skipped for it."""
        out = []
        for reason, count in sorted(self.items(), key=lambda kv: -kv[1]):
            where = ", ".join(self.examples.get(reason, []))
            more = ", ..." if count > len(self.examples.get(reason, [])) and where else ""
            detail = f" ({where}{more})" if where else ""
            out.append(Problem(f"{count} record{'s' if count != 1 else ''} skipped{detail}", reason, source))
        return out


class TraceReader:
    """Iterable of :class:`TraceChunk`; ``skipped`` and ``records_read`` are complete after iteration, and
    ``layout`` holds a chunk of no records with the fields of the first chunk read (None if there was none)."""

    format: str = ""

    def __init__(self, path: str | Path | Input, chunk_rows: int = 1_000_000) -> None:
        """``path``: a file, ``-`` (standard input), a pipe or FIFO, gzip-compressed or not."""
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        self.source = path if isinstance(path, Input) else Input(path, "trace file")
        self.path = Path(self.source.name)
        self.chunk_rows = chunk_rows
        self.skipped = SkipCounts()
        self.records_read = 0
        self.layout: TraceChunk | None = None

    def __iter__(self) -> Iterator[TraceChunk]:
        self.skipped = SkipCounts()
        self.records_read = 0
        for chunk in self._chunks():
            if self.layout is None:
                self.layout = chunk.take(np.zeros(len(chunk), bool))
            if len(chunk):
                yield chunk

    def _chunks(self) -> Iterator[TraceChunk]:
        raise NotImplementedError

    def error(self, message: str, line: int | None = None, subject: str = "") -> InputError:
        """An InputError about this reader's file."""
        return InputError(Problem(message, subject, str(self.path), line))


def _first_line(head: bytes) -> tuple[int, str]:
    """(1-based number, text) of the first non-blank line of the file's first bytes."""
    text = head.decode("utf-8-sig", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            return number, line.strip()
    return 1, ""


def detect_format(path: str | Path | Input) -> str:
    """The trace format of a file, judged by its content (magic numbers, header line)."""
    from .flowlogs import is_aws_line

    source = path if isinstance(path, Input) else Input(path, "trace file")
    head = source.head
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    if head[:4] == PARQUET_MAGIC:
        return "native"
    number, line = _first_line(head)
    if line.startswith("{") and re.search(r'"srcaddr"\s*:', line):
        return "alibaba-flowlog"
    if "," in line:
        names = {name.strip().strip('"').lower() for name in line.split(",")}
        if {"srcaddr", "dstaddr"} <= names:
            return "alibaba-flowlog"
        if {"src_ip", "dst_ip"} <= names:
            return "native"
    if is_aws_line(line):
        return "aws-flowlog"
    what = "an empty file" if not line else "not a packet capture, flow log or flow table"
    raise InputError(Problem(what, "cannot detect trace format", source.name, number))


def open_trace(path: str | Path, format: str | None = None, chunk_rows: int = 1_000_000) -> TraceReader:
    """A reader for the trace at ``path`` (a file, ``-`` for standard input, a pipe or FIFO, gzip-compressed
    or not); ``format`` (one of FORMATS) overrides detection."""
    from .flowlogs import AlibabaFlowLogReader, AwsFlowLogReader
    from .native import NativeReader
    from .pcap import CaptureReader

    readers = {"native": NativeReader, "alibaba-flowlog": AlibabaFlowLogReader,
               "aws-flowlog": AwsFlowLogReader, "pcap": CaptureReader, "pcapng": CaptureReader}
    if format is not None and format not in readers:
        raise InputError(Problem(f"unknown trace format {format!r} (expected one of {', '.join(FORMATS)})",
                                 source=str(path)))
    source = Input(path, "trace file")
    fmt = format or detect_format(source)
    reader = readers[fmt](source, chunk_rows)
    reader.format = fmt
    return reader


__all__ = ["FORMATS", "SkipCounts", "TraceChunk", "TraceReader", "detect_format", "open_trace"]
