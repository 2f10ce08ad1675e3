"""Native timestamped flow tables: CSV with a header row, or Parquet (docs/formats.md (flows) plus ``time``)."""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from . import PARQUET_MAGIC, TraceChunk, TraceReader
from .tables import ChunkBuilder, batch_chunks, csv_chunks, csv_header

MALFORMED = "malformed row"
REQUIRED = ("src_ip", "dst_ip", "protocol", "src_port", "dst_port")
NATIVE_FIELDS = {"src_ip": "src", "dst_ip": "dst", "protocol": "protocol", "src_port": "src_port",
                 "dst_port": "dst_port", "time": "time", "eni": "eni", "direction": "direction", "vpc": "vpc"}


class NativeReader(TraceReader):
    """Flow tables, read in path mode; rows that name an ENI carry it for endpoint mode.

    Records are numbered by Parquet row or by non-blank CSV line below the
    header (one with the wrong number of fields is a malformed record); skipped
    ones are quoted by Parquet row or by their line in the CSV file.
    """

    def _chunks(self) -> Iterator[TraceChunk]:
        if self.source.head[:4] == PARQUET_MAGIC:
            yield from batch_chunks(self, self._parquet(), self._builder)
        else:
            names = csv_header(self.source.head)
            yield from csv_chunks(self, names, MALFORMED, self._builder(names, "line"))

    def _builder(self, names: list[str], unit: str = "row") -> ChunkBuilder:
        """Fields of the table's columns; skipped records are quoted by `unit` (a CSV line, a Parquet row)."""
        keys = [key for name in names if (key := name.strip().lower()) in NATIVE_FIELDS]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise self.error(f"column {', '.join(twice)} appears more than once" if len(twice) == 1 else
                             f"columns {', '.join(twice)} appear more than once", line=1)
        mapping = {NATIVE_FIELDS[key]: name for name in names
                   if (key := name.strip().lower()) in NATIVE_FIELDS}
        missing = [c for c in REQUIRED if NATIVE_FIELDS[c] not in mapping]
        if missing:
            raise self.error(f"not a flow table: no {', '.join(missing)} column"
                             f"{'s' if len(missing) > 1 else ''}", line=1)
        return ChunkBuilder(mapping, self.skipped, MALFORMED, unit, endpoint=False)

    def _parquet(self) -> Iterator[pa.RecordBatch]:
        source = self.source.random_access()
        try:
            schema = pq.read_schema(source)
            self._builder(schema.names)
            for f in schema:
                kind = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
                if f.name.strip().lower() in NATIVE_FIELDS and pa.types.is_nested(kind):
                    raise self.error(f"column {f.name} holds {f.type}, not text or numbers")
            text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            # Text columns come dictionary-encoded, to be parsed once per distinct value.
            parquet = pq.ParquetFile(source, read_dictionary=text, pre_buffer=False)  # pre-buffering keeps every row group
            yield from parquet.iter_batches(batch_size=self.chunk_rows)
        except (pa.ArrowInvalid, OSError) as exc:
            raise self.error(f"unreadable Parquet file: {exc}") from None
