"""Flow tables (interfaces.md §2) into the numeric arrays the kernels take.

Conversion is vectorised (pyarrow compute and numba parsers); rows that cannot
be evaluated are marked invalid with a reason instead of stopping the batch.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .addresses import parse_int_array, parse_ip_array
from .errors import InputError, Problem

REQUIRED = ("src_ip", "dst_ip", "protocol")
OPTIONAL = ("src_port", "dst_port", "vpc", "eni", "direction", "time")
DIRECTION_CODES = {"in": 1, "ingress": 1, "inbound": 1, "out": 2, "egress": 2, "outbound": 2}
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
    vpc: pa.Array | None
    eni: pa.Array | None
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


def check_columns(names: list[str], source: str = "") -> None:
    """Refuse a table that lacks a required column, naming what it has."""
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise InputError(Problem(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                                 f"(found: {', '.join(names) or 'none'}; expected {', '.join(REQUIRED + OPTIONAL)})",
                                 source=source))


def _text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column


def _map_values(column: pa.Array, mapper) -> tuple[np.ndarray, np.ndarray]:
    """Apply a Python function to each distinct value; returns (values, ok)."""
    encoded = pc.dictionary_encode(column).combine_chunks() if isinstance(column, pa.ChunkedArray) else pc.dictionary_encode(column)
    uniques = encoded.dictionary.to_pylist()
    mapped = [mapper(u) for u in uniques]
    values = np.array([m if m is not None else 0 for m in mapped] + [0], dtype=np.int64)
    ok_u = np.array([m is not None for m in mapped] + [False], dtype=np.bool_)
    idx = encoded.indices.fill_null(len(uniques)).to_numpy(zero_copy_only=False)
    return values[idx], ok_u[idx]


def _protocol_number(value: Any) -> int | None:
    from .config import _Bad, parse_protocol

    try:
        number = parse_protocol(value.strip() if isinstance(value, str) else value)
    except _Bad:
        return None
    return None if number < 0 else number


def prepare_flows(table: pa.Table) -> FlowArrays:
    """Parse addresses, protocols, ports and directions of a flow table."""
    check_columns(table.column_names)
    n = table.num_rows
    sfam, shi, slo = parse_ip_array(_text(table.column("src_ip")))
    dfam, dhi, dlo = parse_ip_array(_text(table.column("dst_ip")))
    proto_col = _text(table.column("protocol"))
    if pa.types.is_integer(proto_col.type):
        proto_vals = proto_col.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        proto_ok = (proto_vals >= 0) & (proto_vals <= 255)
    else:
        proto_vals, proto_ok = _map_values(proto_col, _protocol_number)
    ported = (proto_vals == 6) | (proto_vals == 17)
    ports = {}
    for name in ("src_port", "dst_port"):
        if name in table.column_names:
            col = _text(table.column(name))
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                col = pc.if_else(pc.equal(pc.utf8_trim_whitespace(col), ""), pa.scalar(None, col.type), col)
            vals, ok = parse_int_array(col, 0, 65535)
            present = col.is_valid().to_numpy(zero_copy_only=False)
        else:
            vals, ok, present = np.zeros(n, np.int64), np.zeros(n, np.bool_), np.zeros(n, np.bool_)
        ports[name] = (vals, ok, present)
    out = FlowArrays(sfam, shi, slo, dfam, dhi, dlo, proto_vals.astype(np.int16),
                     np.where(ported, ports["src_port"][0], 0).astype(np.int32),
                     np.where(ported, ports["dst_port"][0], 0).astype(np.int32),
                     np.zeros(n, np.int8), None, None, np.zeros(n, np.bool_))
    out.mark(sfam == 0, "src_ip is not an IPv4 or IPv6 address")
    out.mark(dfam == 0, "dst_ip is not an IPv4 or IPv6 address")
    out.mark((sfam != dfam), "src_ip and dst_ip are of different IP versions")
    out.mark(~proto_ok, "protocol is not a name (tcp, udp, icmp, icmpv6, gre) or a number 0..255")
    out.mark(ported & ~ports["dst_port"][2], "a tcp or udp flow needs a dst_port")
    out.mark(ported & ports["dst_port"][2] & ~ports["dst_port"][1], "dst_port is not a number 0..65535")
    out.mark(ported & ports["src_port"][2] & ~ports["src_port"][1], "src_port is not a number 0..65535")
    if "eni" in table.column_names:
        eni = _text(table.column("eni"))
        if not (pa.types.is_string(eni.type) or pa.types.is_large_string(eni.type)):
            eni = eni.cast(pa.string())
        eni = pc.if_else(pc.equal(pc.utf8_trim_whitespace(eni), ""), pa.scalar(None, eni.type), eni)
        out.eni = eni
        has_eni = eni.is_valid().to_numpy(zero_copy_only=False)
        if "direction" in table.column_names:
            dirs, dir_ok = _map_values(_text(table.column("direction")),
                                       lambda v: DIRECTION_CODES.get(str(v).strip().lower()) if v is not None else None)
        else:
            dirs, dir_ok = np.zeros(n, np.int64), np.zeros(n, np.bool_)
        out.direction = np.where(has_eni & dir_ok, dirs, 0).astype(np.int8)
        out.mark(has_eni & ~dir_ok, "a row with an eni needs a direction (in, out, ingress or egress)")
    if "vpc" in table.column_names:
        vpc = _text(table.column("vpc"))
        if not (pa.types.is_string(vpc.type) or pa.types.is_large_string(vpc.type)):
            vpc = vpc.cast(pa.string())
        out.vpc = pc.if_else(pc.equal(pc.utf8_trim_whitespace(vpc), ""), pa.scalar(None, vpc.type), vpc)
    return out


def name_indices(column: pa.Array | None, index: dict[str, int], n: int, missing: int, unknown: int) -> np.ndarray:
    """Map a column of names to table indices: `missing` for null, `unknown` for names not in `index`."""
    if column is None:
        return np.full(n, missing, dtype=np.int32)
    encoded = pc.dictionary_encode(column)
    lookup = np.array([index.get(str(v).strip(), unknown) for v in encoded.dictionary.to_pylist()] + [missing], dtype=np.int32)
    return lookup[encoded.indices.fill_null(len(lookup) - 1).to_numpy(zero_copy_only=False)]
