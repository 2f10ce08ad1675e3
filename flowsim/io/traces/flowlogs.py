"""VPC flow logs: AWS space-separated records and Alibaba Cloud Log Service exports.

AWS files hold the default version-2 layout without a header, or a custom
layout named by a header line (which may be repeated, or change, further
down). A block of lines at a time, whitespace is normalised and fields are
counted with numpy, the lines of each layout are parsed by Arrow's CSV reader,
and only header lines are looked at in Python. Alibaba exports are CSV with a
header row or JSON lines, with the fields of docs/formats.md (traces).
"""
from __future__ import annotations

import io
import json
import re
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pj

from . import SkipCounts, TraceChunk, TraceReader
from .tables import ChunkBuilder, check_utf8, csv_chunks, csv_header, sliced_chunks, text_blocks

TEXT_BLOCK_BYTES = 8 << 20
MALFORMED = "malformed line"

AWS_V2 = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
          "protocol", "packets", "bytes", "start", "end", "action", "log-status")
# Every VPC field of versions 2 to 5 in the documented order: what headerless
# exports with all fields hold (a prefix of it for versions 3 and 4).
AWS_V5 = AWS_V2 + ("vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr",
                   "pkt-dstaddr", "region", "az-id", "sublocation-type", "sublocation-id",
                   "pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path")
# Transit gateway flow logs: all fields, default order.
AWS_TGW = ("version", "resource-type", "account-id", "tgw-id", "tgw-attachment-id",
           "tgw-src-vpc-account-id", "tgw-dst-vpc-account-id", "tgw-src-vpc-id", "tgw-dst-vpc-id",
           "tgw-src-subnet-id", "tgw-dst-subnet-id", "tgw-src-eni", "tgw-dst-eni", "tgw-src-az-id",
           "tgw-dst-az-id", "tgw-pair-attachment-id", "srcaddr", "dstaddr", "srcport", "dstport",
           "protocol", "packets", "bytes", "start", "end", "log-status", "type",
           "packets-lost-no-route", "packets-lost-blackhole", "packets-lost-mtu-exceeded",
           "packets-lost-ttl-expired", "tcp-flags-count", "region", "flow-direction",
           "pkt-src-aws-service", "pkt-dst-aws-service")
HEADERLESS = {14: AWS_V2, 21: AWS_V5[:21], 25: AWS_V5[:25], 29: AWS_V5, 36: AWS_TGW}

# Source field name -> canonical field (flowsim.io.traces.fields.FIELDS).
AWS_FIELDS = {"srcaddr": "src", "dstaddr": "dst", "protocol": "protocol", "srcport": "src_port",
              "dstport": "dst_port", "start": "time", "interface-id": "eni", "flow-direction": "direction",
              "action": "action", "vpc-id": "vpc", "packets": "packets", "bytes": "bytes",
              "log-status": "log_status"}
ALIBABA_FIELDS = {"srcaddr": "src", "dstaddr": "dst", "protocol": "protocol", "srcport": "src_port",
                  "dstport": "dst_port", "start": "time", "eni-id": "eni", "direction": "direction",
                  "action": "action", "vpc-id": "vpc", "packets": "packets", "bytes": "bytes",
                  "log-status": "log_status"}
AWS_CORE = {"version", "srcaddr", "dstaddr", "interface-id", "log-status"}
FIELD_NAME = re.compile(r"^[a-z][a-z-]*$")


def is_aws_header(tokens: tuple[str, ...] | list[str]) -> bool:
    """Whether a line's tokens are an AWS flow-log header (field names, some of them core ones)."""
    return bool(tokens) and all(FIELD_NAME.match(t) for t in tokens) and bool(AWS_CORE & set(tokens))


def is_aws_line(line: str) -> bool:
    """Whether a line is an AWS flow-log header or a record of a headerless layout."""
    tokens = line.split()
    return is_aws_header(tokens) or (len(tokens) in HEADERLESS and tokens[0].isdigit())


def _mapping(names: list[str] | tuple[str, ...], fields: dict[str, str]) -> dict[str, str]:
    """Canonical field -> column name, matching names case-insensitively with _ and - alike."""
    out: dict[str, str] = {}
    for name in names:
        field = fields.get(name.strip().lower().replace("_", "-"))
        if field is not None and field not in out:
            out[field] = name
    return out


def _lines(block: bytes) -> pa.Array:
    """The lines of a block of UTF-8 text as an Arrow string array (zero-copy; each keeps its newline)."""
    buf = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    if len(buf) and buf[-1] != 10:
        ends = np.append(ends, len(buf))
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    return pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets.tobytes()), pa.py_buffer(block))


class AwsFlowLogReader(TraceReader):
    """AWS VPC (and transit gateway) flow logs, default or custom layout.

    A block whose lines all hold the current layout, one space apart, is
    parsed by Arrow's CSV reader; any other block (header lines, blank lines,
    odd spacing, mixed layouts) is split line by line by Arrow's string kernels.
    """

    def _chunks(self) -> Iterator[TraceChunk]:
        self._header: tuple[str, ...] | None = None
        self._layouts: dict[tuple[str, ...], ChunkBuilder] = {}
        self._checked = False
        for block, first_line in text_blocks(self.source, min(TEXT_BLOCK_BYTES, self.chunk_rows * 64)):
            check_utf8(self, block, first_line)
            table = self._plain_block(block) if self._checked else None
            if table is None:
                yield from self._mixed_block(_lines(block), first_line)
                continue
            layout = tuple(table.column_names)
            record = self.records_read + np.arange(table.num_rows)
            self.records_read += table.num_rows
            yield from sliced_chunks(self._builder(layout), table, record, first_line + record - record[0],
                                     self.chunk_rows)

    def _builder(self, layout: tuple[str, ...]) -> ChunkBuilder:
        if layout not in self._layouts:
            self._layouts[layout] = ChunkBuilder(_mapping(layout, AWS_FIELDS), self.skipped, MALFORMED,
                                                 "line", endpoint=True)
        return self._layouts[layout]

    def _plain_block(self, block: bytes) -> pa.Table | None:
        """The block as a table if every line is a record of one layout, one space apart; else None."""
        layout = self._header or HEADERLESS.get(len(block[:block.find(b"\n")].split()))
        if layout is None:
            return None
        odd = []
        table = pcsv.read_csv(
            io.BytesIO(block),
            read_options=pcsv.ReadOptions(column_names=list(layout), use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter=" ", quote_char=False, ignore_empty_lines=False,
                                            invalid_row_handler=lambda row: odd.append(row) or "skip"),
            convert_options=pcsv.ConvertOptions(column_types={name: pa.string() for name in layout}))
        # A first field that is empty (a blank line, leading space) or shaped like a field name
        # (maybe a header line) needs the line-by-line path.
        first = table.column(0)
        if odd or pc.any(pc.or_(pc.equal(first, ""), pc.match_substring_regex(first, FIELD_NAME.pattern))).as_py():
            return None
        return table

    def _mixed_block(self, lines: pa.Array, first_line: int) -> Iterator[TraceChunk]:
        trimmed = pc.utf8_trim_whitespace(lines)
        tokens = pc.utf8_split_whitespace(trimmed)
        blank = pc.equal(pc.binary_length(trimmed), 0).to_numpy(zero_copy_only=False)
        ntok = np.where(blank, 0, pc.list_value_length(tokens).to_numpy(zero_copy_only=False))
        lineno = first_line + np.arange(len(ntok))
        no_digit = ~pc.match_substring_regex(lines, "[0-9]").to_numpy(zero_copy_only=False)
        headers = {int(i): tuple(tokens[int(i)].as_py()) for i in np.flatnonzero((ntok > 0) & no_digit)}
        headers = {i: h for i, h in headers.items() if is_aws_header(h)}
        rows = ntok > 0
        rows[list(headers)] = False
        self._check_first(tokens, ntok, headers, lineno)

        # Layout of each line: the header above it, else the headerless layout of its length.
        segments = [self._header] + list(headers.values())
        self._header = segments[-1]
        layouts = list(dict.fromkeys(s for s in segments if s is not None)) + list(HEADERLESS.values())
        ids = {layout: n for n, layout in enumerate(layouts)}
        by_count = np.full(max(int(ntok.max(initial=0)), max(HEADERLESS)) + 1, -1)
        for count, layout in HEADERLESS.items():
            by_count[count] = ids[layout]
        seg_ids = np.array([ids[s] if s is not None else -1 for s in segments])
        layout_id = seg_ids[np.searchsorted(np.array(list(headers), dtype=np.int64), np.arange(len(ntok)), "right")]
        layout_id = np.where(layout_id < 0, by_count[ntok], layout_id)
        sizes = np.array([len(layout) for layout in layouts])
        good = rows & (layout_id >= 0) & (ntok == sizes[np.maximum(layout_id, 0)])

        record = self.records_read + np.cumsum(rows) - 1
        self.records_read += int(rows.sum())
        bad = np.flatnonzero(rows & ~good)
        self.skipped.add(MALFORMED, len(bad), (f"line {lineno[i]}: {ntok[i]} fields"
                                               for i in bad[:SkipCounts.EXAMPLES]))
        for lid in np.unique(layout_id[good]).tolist():
            at = np.flatnonzero(good & (layout_id == lid))
            part = tokens.take(pa.array(at))
            table = pa.Table.from_arrays([pc.list_element(part, j).cast(pa.string()) for j in range(sizes[lid])],
                                         names=list(layouts[lid]))
            yield from sliced_chunks(self._builder(layouts[lid]), table, record[at], lineno[at], self.chunk_rows)

    def _check_first(self, tokens: pa.Array, ntok: np.ndarray, headers: dict[int, tuple[str, ...]],
                     lineno: np.ndarray) -> None:
        """A file whose first line is neither a header nor a known record layout is not an AWS flow log."""
        if self._checked:
            return
        nonblank = np.flatnonzero(ntok > 0)
        if not len(nonblank):
            return
        self._checked = True
        i = int(nonblank[0])
        if i not in headers and not is_aws_line(" ".join(tokens[i].as_py())):
            raise self.error("not an AWS flow log: neither a header of field names nor a record of "
                             f"{'/'.join(map(str, HEADERLESS))} fields", line=int(lineno[i]))


class AlibabaFlowLogReader(TraceReader):
    """Alibaba Cloud VPC flow logs exported from Log Service as CSV (header row) or JSON lines.

    Records are numbered by non-blank line below the header (CSV) or non-blank
    line (JSON lines); skipped ones are quoted by their line in the file.
    """

    def _chunks(self) -> Iterator[TraceChunk]:
        first = self.source.head.lstrip()[:1]
        yield from (self._json() if first == b"{" else self._csv())

    def _builder(self, names: list[str], unit: str, line: int = 1) -> ChunkBuilder:
        mapping = _mapping(names, ALIBABA_FIELDS)
        if not {"src", "dst"} <= mapping.keys():
            raise self.error("not an Alibaba Cloud flow log: no srcaddr/dstaddr fields", line=line)
        return ChunkBuilder(mapping, self.skipped, MALFORMED, unit, endpoint=True)

    def _csv(self) -> Iterator[TraceChunk]:
        names = csv_header(self.source.head)
        yield from csv_chunks(self, names, MALFORMED, self._builder(names, "line"))

    def _json(self) -> Iterator[TraceChunk]:
        for block, first_line in text_blocks(self.source, TEXT_BLOCK_BYTES):
            check_utf8(self, block, first_line)
            lines = _lines(block)
            nonblank = pc.match_substring_regex(lines, r"\S").to_numpy(zero_copy_only=False)
            lineno = (first_line + np.arange(len(lines)))[nonblank]
            table = self._json_block(block, lines, nonblank, lineno)
            record = self.records_read + np.arange(len(lineno))
            self.records_read += len(lineno)
            if table is None or not table.num_rows:
                continue
            keep = np.asarray(table.column("__line__"))
            table = table.drop_columns(["__line__"])
            yield from sliced_chunks(self._builder(table.column_names, "line", int(lineno[0])), table,
                                     record[keep], lineno[keep], self.chunk_rows)

    def _json_block(self, block: bytes, lines: pa.Array, nonblank: np.ndarray,
                    lineno: np.ndarray) -> pa.Table | None:
        """The block's records as a table of text columns plus ``__line__`` (index among them)."""
        try:
            table = pj.read_json(io.BytesIO(block))
        except pa.ArrowInvalid:
            table = None
        if table is not None and table.num_rows == len(lineno):
            columns = [c.cast(pa.string()) if _scalar_type(c.type) else c for c in table.columns]
            table = pa.Table.from_arrays(columns, names=table.column_names)
            return table.append_column("__line__", pa.array(np.arange(len(lineno))))
        # Some line is not a JSON object: parse line by line to count the bad ones.
        rows, bad = [], []
        for k, text in enumerate(lines.filter(pa.array(nonblank)).to_pylist()):
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                bad.append(k)
                continue
            obj = {key: None if v is None else v if isinstance(v, str) else json.dumps(v) for key, v in obj.items()}
            obj["__line__"] = k
            rows.append(obj)
        self.skipped.add(MALFORMED, len(bad),
                         (f"line {lineno[k]}: not a JSON object" for k in bad[:SkipCounts.EXAMPLES]))
        if not rows:
            return None
        keys = dict.fromkeys(key for row in rows for key in row)
        return pa.table({key: [row.get(key) for row in rows] for key in keys})


def _scalar_type(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
