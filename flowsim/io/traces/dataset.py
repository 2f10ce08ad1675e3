"""A trace dataset (flowsim.io.datasets) read as one trace, file after file in time order.

Files are replayed in the order of their start, the time of their first record (in file order) that
has one, ties and files without times in natural order of their paths after them. Within a file the
records come as its reader gives them; the replay's reorder window (flowsim.batch.replay.in_time_order)
then puts records out of order by up to a chunk back in time order, across a file boundary as well.
Files whose times overlap by more are replayed as they come and counted as out of order.

Every chunk carries the optional fields that any file of the dataset has (TraceChunk.conform) and
`file`, the position of its file in that order; the files' own columns are left out (formats differ),
so a dataset's per-record output has the decoded fields. Skipped records are counted per dataset and
their places name the file.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from ..datasets import dataset_files, dataset_root, natural_key, relative_name
from ..inputs import Input
from . import SkipCounts, TraceChunk, open_trace

PROBE_ROWS = 4096  # records read at a time while looking for a file's first time


@dataclass
class FileStart:
    """What a file's first records tell: its start (inf: no timed record), its format and its fields."""

    path: str
    start: float
    format: str
    fields: frozenset[str]

    def order_key(self) -> tuple:
        return (self.start, natural_key(self.path))


def first_time(chunk: TraceChunk) -> float:
    """The time of the chunk's first timed record (in file order), NaN if none."""
    timed = np.flatnonzero(~np.isnan(chunk.time))
    if not len(timed):
        return math.nan
    return float(chunk.time[timed[np.argmin(chunk.record[timed])]])


def probe(path: str, fmt: str | None = None) -> FileStart:
    """Read a file until its first timed record (flow tables without times: to its end)."""
    reader = open_trace(path, fmt, chunk_rows=PROBE_ROWS)
    start, fields = math.inf, None
    for chunk in reader:
        fields = chunk.carried() if fields is None else fields
        t = first_time(chunk)
        if not math.isnan(t):
            start = t
            break
    if fields is None:
        fields = reader.layout.carried() if reader.layout is not None else frozenset()
    return FileStart(path, start, reader.format, fields)


def ordered(starts: list[FileStart]) -> list[FileStart]:
    """Files in replay order: by start, then by natural order of their paths."""
    return sorted(starts, key=FileStart.order_key)


def formats_of(starts: list[FileStart]) -> str:
    kinds = sorted({s.format for s in starts})
    return "+".join(kinds) if kinds else "none"


@dataclass
class DatasetTrace:
    """A dataset of trace files read as one trace (a TraceReader's interface): chunks of each file in
    turn, `skipped` and `records_read` over every file, `layout` a chunk of no records."""

    name: str
    starts: list[FileStart]
    root: str
    fmt: str | None = None
    chunk_rows: int = 1_000_000
    skipped: SkipCounts = field(default_factory=SkipCounts)
    records_read: int = 0
    layout: TraceChunk | None = None

    @property
    def source(self) -> Input | _Named:
        return _Named(self.name)

    @property
    def format(self) -> str:
        return formats_of(self.starts)

    @property
    def fields(self) -> frozenset[str]:
        """The optional fields some file has: every chunk carries them."""
        return frozenset().union(*(s.fields for s in self.starts))

    @property
    def files(self) -> list[str]:
        """The files' names relative to the dataset's root, in replay order (a chunk's `file` indexes them)."""
        return [relative_name(s.path, self.root) for s in self.starts]

    def __iter__(self) -> Iterator[TraceChunk]:
        self.skipped, self.records_read = SkipCounts(), 0
        fields = self.fields
        self.layout = TraceChunk.empty().conform(fields)
        self.layout.file = np.zeros(0, np.int32)
        for position, start in enumerate(self.starts):
            reader = open_trace(start.path, self.fmt, chunk_rows=self.chunk_rows)
            try:
                for chunk in reader:
                    yield labelled(chunk, position, fields)
            finally:
                self.records_read += reader.records_read
                self.skipped.merge(reader.skipped, start.path)


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name


def labelled(chunk: TraceChunk, position: int, fields: frozenset[str]) -> TraceChunk:
    """A file's chunk as a dataset's: its own columns left out, the dataset's fields, its file's position."""
    chunk = chunk.conform(fields)
    chunk.columns = None
    chunk.file = np.full(len(chunk), position, np.int32)
    return chunk


def open_dataset(path: str, fmt: str | None = None, chunk_rows: int = 1_000_000) -> DatasetTrace:
    """The dataset at `path` (a directory or a glob), its files probed for their starts and put in order."""
    starts = ordered([probe(p, fmt) for p in dataset_files(path, "trace")])
    return DatasetTrace(path, starts, dataset_root(path), fmt, chunk_rows)


__all__ = ["DatasetTrace", "FileStart", "first_time", "formats_of", "labelled", "open_dataset", "ordered", "probe"]
