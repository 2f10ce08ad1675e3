"""Flow tables (docs/formats.md (flows)) into the numeric arrays the kernels take.

Conversion is vectorised (pyarrow compute and numba parsers); rows that cannot
be evaluated are marked invalid with a reason instead of stopping the batch.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, Problem
from ..kernels.codes import DIR_EGRESS, DIR_INGRESS, TCP, UDP
from ..model.network import DIRECTIONS, INGRESS, flow_protocol_number
from .arrays import parse_int_array, parse_ip_array

REQUIRED = ("src_ip", "dst_ip", "protocol")
OPTIONAL = ("src_port", "dst_port", "vpc", "eni", "direction", "time")
DIRECTION_CODES = {word: DIR_INGRESS if side == INGRESS else DIR_EGRESS for word, side in DIRECTIONS.items()}
_MAX_REASONS = 10


@dataclass
class FlowArrays:
    """One batch of flows as numbers; `invalid` marks rows that cannot be evaluated."""

    sfam: np.ndarray
    shi: np.ndarray
    slo: np.ndarray
    dfam: np.ndarray
    dhi: np.ndarray
    dlo: np.ndarray
    proto: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    direction: np.ndarray
    vpc: "Names | None"
    eni: "Names | None"
    invalid: np.ndarray
    reasons: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sfam)

    def mark(self, mask: np.ndarray, reason: str) -> None:
        """Mark rows invalid, remembering the first few row numbers and why."""
        new = mask & ~self.invalid
        if new.any():
            for row in np.flatnonzero(new)[: max(0, _MAX_REASONS - len(self.reasons))]:
                self.reasons.append((int(row), reason))
            self.invalid |= new


def to_table(flows: Any) -> pa.Table:
    """Accept a pyarrow Table/RecordBatch, a pandas DataFrame or a mapping of columns."""
    if isinstance(flows, pa.Table):
        return flows
    if isinstance(flows, pa.RecordBatch):
        return pa.Table.from_batches([flows])
    if isinstance(flows, Mapping):
        return pa.table({k: (v if isinstance(v, (pa.Array, pa.ChunkedArray)) else pa.array(v.tolist() if isinstance(v, np.ndarray) and v.dtype == object else v))
                         for k, v in flows.items()})
    if hasattr(flows, "to_dict") and hasattr(flows, "columns"):  # pandas, without importing it
        return pa.Table.from_pandas(flows, preserve_index=False)
    raise InputError(f"flows must be a table (pyarrow, pandas) or a mapping of columns, not {type(flows).__name__}")


def check_columns(schema: pa.Schema | list[str], source: str = "") -> None:
    """Refuse a table that lacks a required column, names a column twice, or holds a flow column of a
    type that is not text or numbers (a list, a struct), naming the column."""
    try:
        names = list(schema.names if isinstance(schema, pa.Schema) else schema)
    except UnicodeDecodeError:
        raise InputError(Problem("the header row is not UTF-8 text", source=source, line=1)) from None
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(Problem(f"column {', '.join(twice)} appears more than once" if len(twice) == 1 else
                                 f"columns {', '.join(twice)} appear more than once",
                                 source=source))
    if isinstance(schema, pa.Schema):
        for field in schema:
            kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
            if field.name in REQUIRED + OPTIONAL and not (pa.types.is_string(kind) or pa.types.is_large_string(kind)
                                                          or pa.types.is_integer(kind) or pa.types.is_floating(kind)
                                                          or pa.types.is_null(kind)):
                raise InputError(Problem(f"column {field.name} holds {field.type}, not text or numbers", source=source))
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise InputError(Problem(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                                 f"(found: {', '.join(names) or 'none'}; expected {', '.join(REQUIRED + OPTIONAL)})",
                                 source=source))


def _combined(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _distinct(column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(distinct values, index of each row's value or -1 for null): the reader's dictionary, or one made here."""
    column = _combined(column)
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    indices = column.indices.fill_null(-1) if column.indices.null_count else column.indices
    return column.dictionary, indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _gather(values: np.ndarray, index: np.ndarray, fill) -> np.ndarray:
    """values[index] with `fill` where the index is -1 (null)."""
    return np.take(np.append(values, np.array([fill], dtype=values.dtype)), index)


def by_value(column: pa.ChunkedArray | pa.Array, parse: Callable[[pa.Array], tuple[np.ndarray, ...]],
             null: tuple, memo: dict | None = None) -> tuple[np.ndarray, ...]:
    """Apply `parse` to the distinct values of a column and spread its results over the rows.

    `null` holds the results for a null row. Traffic repeats its addresses, labels and ports,
    so this parses far fewer values than rows. A `memo` kept across the batches of one column
    holds the last values parsed: a Parquet reader hands every batch of a row group the same
    dictionary, which is then parsed once."""
    values, index = _distinct(column)
    if memo and memo["values"].equals(values):
        parsed = memo["parsed"]
    else:
        parsed = parse(values)
        if memo is not None:
            memo["values"], memo["parsed"] = values, parsed
    return tuple(_gather(part, index, fill) for part, fill in zip(parsed, null))


def _parse_ips(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Address columns; a dictionary-encoded column is parsed once per distinct value."""
    column = _combined(column)
    if not pa.types.is_dictionary(column.type):
        return parse_ip_array(column)
    return by_value(column, parse_ip_array, (0, 0, 0))


def _parse_ports(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(port, ok, present) of a port column; empty text counts as absent."""
    column = _combined(column)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        vals, ok = parse_int_array(column, 0, 65535)
        present = np.ones(len(column), np.bool_) if column.null_count == 0 else column.is_valid().to_numpy(zero_copy_only=False)
        return vals, ok, present

    def parse(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            values = values.cast(pa.string())
        vals, ok = parse_int_array(values, 0, 65535)
        return vals, ok, np.array([v is not None and v.strip() != "" for v in values.to_pylist()], dtype=np.bool_)

    return by_value(column, parse, (0, False, False))


def _map_values(column: pa.ChunkedArray | pa.Array, mapper) -> tuple[np.ndarray, np.ndarray]:
    """Apply a Python function to each distinct value; returns (values, ok) per row."""
    def parse(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        mapped = [mapper(u) for u in values.to_pylist()]
        return (np.array([0 if m is None else m for m in mapped], dtype=np.int64),
                np.array([m is not None for m in mapped], dtype=np.bool_))

    return by_value(column, parse, (0, False))


@dataclass
class Names:
    """A column of names (ENI or VPC ids) as distinct values and one index per row (-1: none)."""

    values: list[str | None]
    index: np.ndarray

    @classmethod
    def of(cls, column: pa.ChunkedArray | pa.Array) -> "Names":
        values, index = _distinct(column)
        names = [None if v is None or str(v).strip() == "" else str(v).strip() for v in values.to_pylist()]
        return cls(names, index)

    def present(self) -> np.ndarray:
        """Rows that name something."""
        return _gather(np.array([v is not None for v in self.values], dtype=np.bool_), self.index, False)

    def lookup(self, table: dict[str, int], missing: int, unknown: int) -> np.ndarray:
        """Each row's position in `table`: `missing` where the row names nothing, `unknown` where the name is not there."""
        codes = np.array([missing if v is None else table.get(v, unknown) for v in self.values], dtype=np.int32)
        return _gather(codes, self.index, missing)


def _protocol_number(value: Any) -> int | None:
    return None if value is None else flow_protocol_number(str(value))


def prepare_flows(table: pa.Table) -> FlowArrays:
    """Parse addresses, protocols, ports and directions of a flow table."""
    check_columns(table.schema)
    n = table.num_rows
    sfam, shi, slo = _parse_ips(table.column("src_ip"))
    dfam, dhi, dlo = _parse_ips(table.column("dst_ip"))
    proto_col = _combined(table.column("protocol"))
    if pa.types.is_integer(proto_col.type):
        proto_vals = proto_col.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        proto_ok = (proto_vals >= 0) & (proto_vals <= 255)
    else:
        proto_vals, proto_ok = _map_values(proto_col, _protocol_number)
    ported = (proto_vals == TCP) | (proto_vals == UDP)
    absent = (np.zeros(n, np.int64), np.zeros(n, np.bool_), np.zeros(n, np.bool_))
    sport, sport_ok, sport_present = _parse_ports(table.column("src_port")) if "src_port" in table.column_names else absent
    dport, dport_ok, dport_present = _parse_ports(table.column("dst_port")) if "dst_port" in table.column_names else absent
    out = FlowArrays(sfam, shi, slo, dfam, dhi, dlo, proto_vals.astype(np.int16),
                     np.where(ported, sport, 0).astype(np.int32), np.where(ported, dport, 0).astype(np.int32),
                     np.zeros(n, np.int8), None, None, np.zeros(n, np.bool_))
    out.mark(sfam == 0, "src_ip is not an IPv4 or IPv6 address")
    out.mark(dfam == 0, "dst_ip is not an IPv4 or IPv6 address")
    out.mark((sfam != dfam), "src_ip and dst_ip are of different IP versions")
    out.mark(~proto_ok, "protocol is not a name (tcp, udp, icmp, icmpv6, gre) or a number 0..255")
    out.mark(ported & ~dport_present, "a tcp or udp flow needs a dst_port")
    out.mark(ported & dport_present & ~dport_ok, "dst_port is not a number 0..65535")
    out.mark(ported & sport_present & ~sport_ok, "src_port is not a number 0..65535")
    if "eni" in table.column_names:
        out.eni = Names.of(table.column("eni"))
        has_eni = out.eni.present()
        if "direction" in table.column_names:
            dirs, dir_ok = _map_values(table.column("direction"),
                                       lambda v: DIRECTION_CODES.get(str(v).strip().lower()) if v is not None else None)
        else:
            dirs, dir_ok = np.zeros(n, np.int64), np.zeros(n, np.bool_)
        out.direction = np.where(has_eni & dir_ok, dirs, 0).astype(np.int8)
        out.mark(has_eni & ~dir_ok, "a row with an eni needs a direction (in, out, ingress or egress)")
    if "vpc" in table.column_names:
        out.vpc = Names.of(table.column("vpc"))
    return out
