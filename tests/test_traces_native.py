"""Native flow tables (CSV and Parquet): round trips, malformed rows, bad files."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowsim.errors import InputError
from flowsim.io.arrays import format_ips
from flowsim.io.traces import TraceChunk, detect_format, open_trace

PROTOCOL_NAMES = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "gre": 47}


def read_all(path: Path, **kw):
    reader = open_trace(path, **kw)
    chunks = list(reader)
    return reader, (TraceChunk.concat(chunks) if chunks else None)


def write(table: pa.Table, path: Path, row_group_size: int | None = None) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(table, path, row_group_size=row_group_size)
    else:
        pcsv.write_csv(table, path)
    return path


def test_csv_table_with_names_numbers_and_empty_ports(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text(
        "time,src_ip,dst_ip,protocol,src_port,dst_port,eni,direction,vpc\n"
        "10.5,10.0.0.1,10.0.0.2,TCP,40000,443,eni-1,in,vpc-1\n"
        "11,10.0.0.1,10.0.0.2,icmp,,,eni-1,Egress,vpc-1\n"
        "12,2001:db8::1,2001:db8::2,17,53,53,,,\n"
        "13,10.0.0.1,10.0.0.2,gre,5,6,,OUT,vpc-2\n")
    assert detect_format(path) == "native"
    reader, chunk = read_all(path)
    assert reader.records_read == 4 and dict(reader.skipped) == {}
    assert chunk.protocol.tolist() == [6, 1, 17, 47]
    assert chunk.src_port.tolist() == [40000, 0, 53, 0]  # no ports where the protocol has none
    assert chunk.dst_port.tolist() == [443, 0, 53, 0]
    assert chunk.time.tolist() == [10.5, 11.0, 12.0, 13.0]
    assert chunk.eni.tolist() == ["eni-1", "eni-1", "", ""]
    assert chunk.direction.tolist() == [1, 2, 0, 2]
    assert chunk.vpc.tolist() == ["vpc-1", "vpc-1", "", "vpc-2"]
    assert chunk.action is None and chunk.packets is None
    assert format_ips(chunk.src_fam, chunk.src_hi, chunk.src_lo)[2] == "2001:db8::1"
    assert chunk.columns.column_names == ["time", "src_ip", "dst_ip", "protocol", "src_port", "dst_port",
                                          "eni", "direction", "vpc"]


def test_minimal_table_is_path_mode_without_times(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text("src_ip,dst_ip,protocol,src_port,dst_port\n1.1.1.1,2.2.2.2,6,1,2\n")
    _, chunk = read_all(path)
    assert chunk.eni is None and chunk.direction is None and chunk.vpc is None
    assert np.isnan(chunk.time).all()


def test_malformed_rows_are_counted_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text(
        "src_ip,dst_ip,protocol,src_port,dst_port,direction,time\n"
        "1.1.1.1,2.2.2.2,tcp,1,2,in,1\n"
        "1.1.1.300,2.2.2.2,tcp,1,2,in,1\n"      # bad address
        "1.1.1.1,2.2.2.2,tcp,1,70000,in,1\n"    # port out of range
        "1.1.1.1,2.2.2.2,xtp,1,2,in,1\n"        # unknown protocol
        "1.1.1.1,2.2.2.2,udp,,2,in,1\n"         # UDP without a port
        "1.1.1.1,2.2.2.2,tcp,1,2,sideways,1\n"  # bad direction
        "1.1.1.1,2.2.2.2,tcp,1,2,in,yesterday\n"
        "1.1.1.1,2.2.2.2\n"                     # too few fields
        "1.1.1.1,2.2.2.2,256,1,2,in,1\n"
        "3.3.3.3,4.4.4.4,udp,5,6,out,2\n")
    reader, chunk = read_all(path)
    assert reader.records_read == 10
    assert dict(reader.skipped) == {"malformed row": 8}
    assert reader.skipped.examples["malformed row"] == [
        "line 9: 2 of 7 fields", "line 3: src_ip", "line 4: dst_port", "line 5: protocol",
        "line 6: src_port"]
    assert chunk.record.tolist() == [0, 9]  # the short line is a record too
    assert format_ips(chunk.dst_fam, chunk.dst_hi, chunk.dst_lo) == ["2.2.2.2", "4.4.4.4"]


def test_parquet_with_typed_and_dictionary_columns(tmp_path: Path) -> None:
    table = pa.table({
        "src_ip": pa.array(["10.0.0.1", "10.0.0.1", "fe80::1"]).dictionary_encode(),
        "dst_ip": ["10.0.0.2", "10.0.0.3", "fe80::2"],
        "protocol": pa.array([6, 17, 58], pa.int8()),
        "src_port": pa.array([1, None, 0], pa.int32()),
        "dst_port": pa.array([80, 53, 0], pa.int64()),
        "time": [1.5, 2.5, 3.5],
        "ENI": ["eni-1", None, "eni-2"],
    })
    path = write(table, tmp_path / "flows.parquet")
    assert detect_format(path) == "native"
    reader, chunk = read_all(path)
    assert dict(reader.skipped) == {"malformed row": 1}
    assert reader.skipped.examples["malformed row"] == ["row 2: src_port"]
    assert chunk.protocol.tolist() == [6, 58]
    assert chunk.eni.tolist() == ["eni-1", "eni-2"]
    assert chunk.time.tolist() == [1.5, 3.5]


def test_not_a_flow_table(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text("src_ip,dst_ip,proto\n1.1.1.1,2.2.2.2,6\n")
    assert detect_format(path) == "native"
    with pytest.raises(InputError, match=r"flows.csv:1: not a flow table: no protocol, src_port, dst_port columns"):
        list(open_trace(path))
    parquet = write(pa.table({"a": [1]}), tmp_path / "x.parquet")
    with pytest.raises(InputError, match=r"x.parquet:1: not a flow table: no src_ip"):
        list(open_trace(parquet))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 50)
    with pytest.raises(InputError, match="broken.parquet: unreadable Parquet file"):
        list(open_trace(broken))


def test_chunks_are_bounded(tmp_path: Path) -> None:
    n = 2500
    table = pa.table({"src_ip": ["10.0.0.1"] * n, "dst_ip": ["10.0.0.2"] * n, "protocol": ["udp"] * n,
                      "src_port": list(range(n)), "dst_port": [53] * n})
    for suffix in (".csv", ".parquet"):
        reader = open_trace(write(table, tmp_path / f"big{suffix}"), chunk_rows=1000)
        chunks = list(reader)
        assert [len(c) for c in chunks] == [1000, 1000, 500]
        assert np.concatenate([c.record for c in chunks]).tolist() == list(range(n))
        assert np.concatenate([c.src_port for c in chunks]).tolist() == list(range(n))


# ---------------------------------------------------------------- property: rows round-trip

ipv4s = st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v)))
ipv6s = st.integers(0, 2**128 - 1).map(lambda v: str(ipaddress.IPv6Address(v)))
addresses = st.one_of(ipv4s, ipv6s)
protocols = st.one_of(st.sampled_from(sorted(PROTOCOL_NAMES) + [p.upper() for p in PROTOCOL_NAMES]),
                      st.integers(0, 255).map(str))
rows = st.fixed_dictionaries({
    "time": st.floats(0, 2e9, allow_nan=False).map(lambda t: round(t, 3)),
    "src_ip": addresses, "dst_ip": addresses, "protocol": protocols,
    "src_port": st.integers(0, 65535), "dst_port": st.integers(0, 65535),
    "eni": st.sampled_from(["", "eni-1", "eni-abc"]),
    "direction": st.sampled_from(["", "in", "out", "ingress", "egress", "IN"]),
})


def _number(protocol: str) -> int:
    return PROTOCOL_NAMES.get(protocol.lower(), int(protocol) if protocol.isdigit() else -1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(rows, min_size=1, max_size=40), st.sampled_from([".csv", ".parquet"]), st.integers(1, 50),
       st.integers(1, 50))
def test_random_rows_round_trip(tmp_path: Path, data: list[dict], suffix: str, chunk_rows: int,
                                row_group: int) -> None:
    # batches of one Parquet row group share its dictionaries (parsed once), those of the next differ
    table = pa.Table.from_pylist(data)
    path = write(table, tmp_path / f"rows{suffix}", row_group)
    reader, chunk = read_all(path, chunk_rows=chunk_rows)
    assert reader.records_read == len(data) and dict(reader.skipped) == {}
    assert chunk.record.tolist() == list(range(len(data)))
    ported = [_number(r["protocol"]) in (6, 17) for r in data]
    assert format_ips(chunk.src_fam, chunk.src_hi, chunk.src_lo) == [
        str(ipaddress.ip_address(r["src_ip"])) for r in data]
    assert format_ips(chunk.dst_fam, chunk.dst_hi, chunk.dst_lo) == [
        str(ipaddress.ip_address(r["dst_ip"])) for r in data]
    assert chunk.protocol.tolist() == [_number(r["protocol"]) for r in data]
    assert chunk.src_port.tolist() == [r["src_port"] if p else 0 for r, p in zip(data, ported)]
    assert chunk.dst_port.tolist() == [r["dst_port"] if p else 0 for r, p in zip(data, ported)]
    assert chunk.time.tolist() == [r["time"] for r in data]
    assert chunk.eni.tolist() == [r["eni"] for r in data]
    assert chunk.direction.tolist() == [{"": 0, "in": 1, "ingress": 1, "out": 2, "egress": 2}[r["direction"].lower()]
                                        for r in data]
    assert chunk.columns.num_rows == len(data)
