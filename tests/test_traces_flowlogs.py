"""Flow-log readers: AWS (default, custom header, v5, transit gateway) and Alibaba Cloud (CSV, JSON lines)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from flowsim.errors import InputError
from flowsim.io.arrays import format_ips
from flowsim.io.traces import TraceChunk, detect_format, open_trace

FLOWLOGS = Path(__file__).parents[1].parent / "shared" / "data" / "real" / "flowlogs"
AWS = FLOWLOGS / "aws"
ALIBABA = FLOWLOGS / "alicloud"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real flow-log data {path} is absent (shared/data not laid out beside the repository)")
    return path


def read_all(path: Path, **kw):
    reader = open_trace(path, **kw)
    chunks = list(reader)
    return reader, (TraceChunk.concat(chunks) if chunks else None)


def first_record(chunk: TraceChunk) -> dict:
    return {
        "src": format_ips(chunk.src_fam[:1], chunk.src_hi[:1], chunk.src_lo[:1])[0],
        "dst": format_ips(chunk.dst_fam[:1], chunk.dst_hi[:1], chunk.dst_lo[:1])[0],
        "protocol": int(chunk.protocol[0]), "src_port": int(chunk.src_port[0]),
        "dst_port": int(chunk.dst_port[0]), "time": float(chunk.time[0]), "eni": chunk.eni[0],
        "direction": int(chunk.direction[0]), "action": int(chunk.action[0]), "record": int(chunk.record[0]),
    }


# ---------------------------------------------------------------- real AWS files

# file: (records read, records kept, skipped, first kept record)
REAL_AWS = {
    "elastic-beats_vpcflow_accept-reject-traffic.log": (4, 4, {}, dict(
        src="78.24.182.42", dst="158.109.0.1", protocol=6, src_port=20641, dst_port=22, time=1418530010.0,
        eni="eni-1235b8ca123456789", direction=0, action=1, record=0)),
    "elastic-beats_vpcflow_custom-nat-gateway.log": (2, 0, {"no protocol field in the log format": 2}, None),
    "elastic-integrations_vpcflow_test-extra-samples.log": (7, 5, {"NODATA": 1, "SKIPDATA": 1}, dict(
        src="2001:db8:1234:a100:8d6e:3477:df66:f105", dst="2001:db8:1234:a102:3304:8879:34cf:4071",
        protocol=6, src_port=34892, dst_port=22, time=1477913708.0, eni="eni-1235b8ca123456789",
        direction=0, action=1, record=0)),
    "elastic-integrations_vpcflow_test-tcp-flag-sequence.log": (3, 1, {"NODATA": 1, "SKIPDATA": 1}, dict(
        src="52.213.180.42", dst="10.0.0.62", protocol=6, src_port=43416, dst_port=5001, time=1566848875.0,
        eni="eni-1235b8ca123456789", direction=0, action=1, record=0)),
    "elastic-integrations_vpcflow_test-tgw-samples.log": (10, 3, {"NODATA": 1, "SKIPDATA": 6}, dict(
        src="216.160.83.56", dst="89.160.20.128", protocol=17, src_port=36721, dst_port=8080,
        time=1755592553.0, eni="", direction=1, action=0, record=2)),
    "elastic-integrations_vpcflow_test-v5-all-fields.log": (1, 1, {}, dict(
        src="89.160.20.156", dst="10.200.0.0", protocol=17, src_port=50041, dst_port=33004, time=164000066.0,
        eni="eni-069xxxxxb7a490", direction=1, action=2, record=0)),
}


@pytest.mark.parametrize("name", sorted(REAL_AWS))
def test_real_aws_flow_logs(name: str) -> None:
    path = _need(AWS / name)
    records, kept, skipped, first = REAL_AWS[name]
    assert detect_format(path) == "aws-flowlog"
    reader, chunk = read_all(path)
    assert reader.records_read == records
    assert dict(reader.skipped) == skipped
    assert (len(chunk) if chunk else 0) == kept
    if first:
        assert first_record(chunk) == first


def test_every_real_flow_log_is_covered() -> None:
    logs = {p.name for p in _need(AWS).glob("*.log")}
    assert logs == set(REAL_AWS)


def test_real_aws_fields_beyond_the_five_tuple() -> None:
    _, v5 = read_all(_need(AWS / "elastic-integrations_vpcflow_test-v5-all-fields.log"))
    assert v5.vpc.tolist() == ["vpc-09676f97xxxxxb8a7"]
    assert (v5.packets.tolist(), v5.bytes.tolist()) == ([52], [1])
    assert v5.columns.column("traffic-path").to_pylist() == ["1"]
    _, extra = read_all(AWS / "elastic-integrations_vpcflow_test-extra-samples.log")
    assert extra.record.tolist() == [0, 3, 4, 5, 6]
    icmp = extra.protocol == 1
    assert icmp.sum() == 2 and not extra.src_port[icmp].any()
    assert extra.action.tolist() == [1, 1, 2, 1, 2]
    assert extra.vpc is None and extra.columns.num_columns == 14


def test_real_tgw_layout_and_skip_places() -> None:
    reader, chunk = read_all(_need(AWS / "elastic-integrations_vpcflow_test-tgw-samples.log"))
    assert chunk.record.tolist() == [2, 6, 8]
    assert chunk.columns.column("tgw-id").to_pylist() == ["tgw-0a12bc34de56f7890"] * 3
    assert reader.skipped.examples["NODATA"] == ["line 2"]
    assert reader.skipped.examples["SKIPDATA"][:3] == ["line 1", "line 4", "line 5"]


# ---------------------------------------------------------------- records quoted in the AWS docs

def doc_code_blocks(path: Path) -> list[list[str]]:
    text = path.read_text()
    return [[re.sub(r"\s+#.*$", "", line) for line in block.strip().splitlines()]
            for block in re.findall(r"```\n(.*?)```", text, re.S)]


def test_records_from_aws_docs(tmp_path: Path) -> None:
    """Each example of the AWS record-examples page parses, with its header where it has one."""
    blocks = doc_code_blocks(_need(AWS / "awsdocs-vpc-user-guide_flow-logs-records-examples.md"))
    header = None
    files = []
    for lines in blocks:
        if len(lines) == 1 and not re.search(r"\d", lines[0]):
            header = lines[0]
            continue
        default = len(lines[0].split()) == 14 and lines[0][0].isdigit()
        files.append(("\n".join(lines if default else [header] + lines)) + "\n")
    default = tmp_path / "default.log"
    default.write_text("".join(f for f in files if not f.startswith(("version", "instance-id"))))
    reader, chunk = read_all(default)
    assert reader.records_read == 7
    assert dict(reader.skipped) == {"NODATA": 1, "SKIPDATA": 1}
    assert len(chunk) == 5
    assert first_record(chunk)["dst_port"] == 22

    results = []
    for k, text in enumerate(f for f in files if f.startswith(("version", "instance-id"))):
        path = tmp_path / f"custom{k}.log"
        path.write_text(text)
        reader, chunk = read_all(path)
        results.append((reader.records_read, len(chunk) if chunk else 0, dict(reader.skipped)))
    tcp_flags = [(4, 4, {}), (2, 2, {}), (2, 2, {})]
    nat = [(1, 0, {"no protocol field in the log format": 1}), (2, 0, {"no protocol field in the log format": 2}),
           (1, 0, {"no protocol field in the log format": 1}), (2, 0, {"no protocol field in the log format": 2})]
    tgw = [(3, 2, {"malformed line": 1}), (1, 1, {}), (1, 1, {})]  # the "..." line is counted
    traffic_path = [(2, 2, {})]
    assert results == tcp_flags + nat + tgw + traffic_path


def test_v5_custom_order_from_docs_decodes_direction(tmp_path: Path) -> None:
    blocks = doc_code_blocks(_need(AWS / "awsdocs-vpc-user-guide_flow-logs-records-examples.md"))
    header = next(b[0] for b in blocks if b[0].startswith("version srcaddr dstaddr"))
    records = next(b for b in blocks if b[0].startswith("5 "))
    path = tmp_path / "v5.log"
    path.write_text("\n".join([header] + records))
    _, chunk = read_all(path)
    assert chunk.direction.tolist() == [1, 2]
    assert chunk.eni.tolist() == ["eni-1235b8ca123456789"] * 2
    assert chunk.src_port.tolist() == [80, 34210]
    assert chunk.packets.tolist() == [14, 7]


# ---------------------------------------------------------------- synthetic AWS

AWS_HEADER = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
              "packets", "bytes", "start", "end", "action", "log-status")
V2_LINE = "2 123456789010 eni-1 10.0.0.{i} 10.0.1.1 {sport} 443 6 3 180 1600000000 1600000060 ACCEPT OK"


def test_malformed_lines_inside_a_valid_log_are_counted(tmp_path: Path) -> None:
    lines = [V2_LINE.format(i=1, sport=1000),
             V2_LINE.format(i=2, sport=99999),                 # port out of range
             "2 123456789010 eni-1 10.0.0.300 10.0.1.1 1 443 6 3 180 1600000000 1600000060 ACCEPT OK",
             "2 123456789010 eni-1 10.0.0.3 10.0.1.1 1 443 xyz 3 180 1600000000 1600000060 ACCEPT OK",
             "2 123456789010 eni-1 10.0.0.3 10.0.1.1 - - 6 3 180 1600000000 1600000060 ACCEPT OK",  # TCP, no ports
             "2 123456789010 eni-1 10.0.0.3 10.0.1.1 1 443 6 3 180 soon 1600000060 ACCEPT OK",
             "2 123456789010 eni-1 10.0.0.3 10.0.1.1 1 443 6 3 180 1600000000 1600000060 MAYBE OK",
             "truncated line",
             "",
             V2_LINE.format(i=9, sport=2000)]
    path = tmp_path / "v2.log"
    path.write_text("\r\n".join(lines))
    reader, chunk = read_all(path)
    assert reader.records_read == 9
    assert dict(reader.skipped) == {"malformed line": 7}
    assert reader.skipped.examples["malformed line"] == [
        "line 8: 2 fields", "line 2: srcport", "line 3: srcaddr",
        "line 4: protocol", "line 5: srcport"]
    assert chunk.record.tolist() == [0, 8]
    assert chunk.src_port.tolist() == [1000, 2000]
    problems = [str(p) for p in reader.skipped.problems(str(path))]
    assert problems == [f"{path}: malformed line: 7 records skipped (line 8: 2 fields, line 2: srcport, "
                        f"line 3: srcaddr, line 4: protocol, line 5: srcport, ...)"]


def test_header_changes_mid_file_and_chunking(tmp_path: Path) -> None:
    text = "\n".join([
        "srcaddr dstaddr protocol srcport dstport start flow-direction interface-id",
        "10.0.0.1 10.0.0.2 17 53 5353 100 ingress eni-a",
        "10.0.0.1 10.0.0.2 17 53 5354 101 egress eni-a",
        "srcaddr dstaddr protocol srcport dstport start flow-direction interface-id",  # repeated
        "10.0.0.1 10.0.0.2 17 53 5355 102 - eni-a",
        "interface-id protocol dstaddr srcaddr",  # a different layout from here on
        "eni-b 1 192.0.2.1 192.0.2.2",
        "eni-b 1 192.0.2.1 192.0.2.3",
    ]) + "\n"
    path = tmp_path / "custom.log"
    path.write_text(text)
    assert detect_format(path) == "aws-flowlog"
    reader = open_trace(path, chunk_rows=2)
    chunks = list(reader)
    assert reader.records_read == 5 and dict(reader.skipped) == {}
    chunk = TraceChunk.concat([c for c in chunks if c.columns.num_columns == 8])
    assert chunk.direction.tolist() == [1, 2, 0]
    assert chunk.time.tolist() == [100.0, 101.0, 102.0]
    later = [c for c in chunks if c.columns.num_columns == 4]
    assert [c.record.tolist() for c in later] == [[3, 4]]
    assert np.isnan(np.concatenate([c.time for c in later])).all()
    assert format_ips(later[0].src_fam, later[0].src_hi, later[0].src_lo)[0] == "192.0.2.2"


def test_garbage_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.log"
    garbage.write_text("\n\nhello world, this is not a flow log\n1 2 3\n")
    with pytest.raises(InputError, match="garbage.log:3: cannot detect trace format"):
        detect_format(garbage)
    with pytest.raises(InputError, match="garbage.log:3: not an AWS flow log"):
        list(open_trace(garbage, format="aws-flowlog"))
    with pytest.raises(InputError, match="garbage.log:1: not an Alibaba Cloud flow log"):
        list(open_trace(garbage, format="alibaba-flowlog"))
    binary = tmp_path / "binary.log"
    binary.write_bytes(V2_LINE.format(i=1, sport=1).encode() + b"\n2 \xff\xfe\n")
    with pytest.raises(InputError, match="binary.log:2: not UTF-8 text"):
        list(open_trace(binary))
    empty = tmp_path / "empty.log"
    empty.write_text("")
    with pytest.raises(InputError, match="empty.log:1: cannot detect trace format: an empty file"):
        open_trace(empty)
    assert list(open_trace(empty, format="aws-flowlog")) == []


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothere.log: no such trace file"):
        open_trace(tmp_path / "nothere.log")
    with pytest.raises(InputError, match="nothere.log: no such trace file"):
        open_trace(tmp_path / "nothere.log", format="aws-flowlog")
    with pytest.raises(InputError, match="unknown trace format 'netflow'"):
        open_trace(tmp_path / "nothere.log", format="netflow")


# ---------------------------------------------------------------- Alibaba Cloud

def alibaba_fields() -> list[str]:
    """The field names of the Alibaba docs' table (without __topic__)."""
    text = _need(ALIBABA / "AlibabaCloudDocs-sls_VPC-flow-log_fields_en.md").read_text()
    names = [name.replace("\\", "") for name in re.findall(r"^\|([a-z_\\-]+)\|", text, re.M)]
    return [n for n in names if not n.startswith("__")]


def alibaba_records() -> list[dict]:
    base = {"version": "1", "vswitch-id": "vsw-1", "vm-id": "i-1", "vpc-id": "vpc-1", "account-id": "1234",
            "eni-id": "eni-a", "packets": "5", "bytes": "300", "end": "1700000060", "log-status": "OK"}
    return [
        dict(base, srcaddr="10.0.0.5", srcport="51000", dstaddr="10.0.0.9", dstport="22", protocol="6",
             direction="in", start="1700000000", action="ACCEPT"),
        dict(base, srcaddr="-", srcport="-", dstaddr="-", dstport="-", protocol="-", direction="-",
             start="1700000000", action="-", **{"log-status": "NODATA"}),
        dict(base, srcaddr="2001:db8::5", srcport="0", dstaddr="2001:db8::9", dstport="0", protocol="58",
             direction="out", start="1700000001", action="REJECT"),
        dict(base, srcaddr="10.0.0.5", srcport="1", dstaddr="10.0.0.9", dstport="2", protocol="17",
             direction="out", start="1700000002", action="ACCEPT", **{"log-status": "SKIPDATA"}),
        dict(base, srcaddr="10.0.0.5", srcport="53", dstaddr="10.0.0.999", dstport="53", protocol="17",
             direction="out", start="1700000003", action="ACCEPT"),
    ]


def check_alibaba(reader, chunk: TraceChunk) -> None:
    assert reader.records_read == 5
    assert dict(reader.skipped) == {"NODATA": 1, "SKIPDATA": 1, "malformed line": 1}
    assert chunk.record.tolist() == [0, 2]
    assert first_record(chunk) == dict(src="10.0.0.5", dst="10.0.0.9", protocol=6, src_port=51000, dst_port=22,
                                       time=1700000000.0, eni="eni-a", direction=1, action=1, record=0)
    assert chunk.direction.tolist() == [1, 2] and chunk.action.tolist() == [1, 2]
    assert chunk.vpc.tolist() == ["vpc-1", "vpc-1"]
    assert chunk.protocol.tolist() == [6, 58] and chunk.src_port.tolist() == [51000, 0]
    assert chunk.packets.tolist() == [5, 5]


def test_alibaba_csv_export(tmp_path: Path) -> None:
    names = alibaba_fields()
    assert names[:3] == ["version", "vswitch-id", "vm-id"] and names[-1] == "action"
    columns = ["__time__", "__topic__"] + names + ["tcp-flags", "traffic_path"]
    rows = [",".join(r.get(c, "flow_log" if c == "__topic__" else "") for c in columns) for r in alibaba_records()]
    path = tmp_path / "alibaba.csv"
    path.write_text("\n".join([",".join(columns)] + rows) + "\n")
    assert detect_format(path) == "alibaba-flowlog"
    reader, chunk = read_all(path)
    check_alibaba(reader, chunk)
    assert reader.skipped.examples["malformed line"] == ["line 6: dstaddr"]
    assert chunk.columns.column_names == columns


def test_alibaba_json_lines(tmp_path: Path) -> None:
    records = alibaba_records()
    records[2] = {k: int(v) if v.isdigit() else v for k, v in records[2].items()}  # numbers as numbers
    path = tmp_path / "alibaba.json"
    path.write_text("\n".join(json.dumps(r) for r in records[:2]) + "\n\n"
                    + "\n".join(json.dumps(r) for r in records[2:]) + "\n")
    assert detect_format(path) == "alibaba-flowlog"
    for rows in (1_000_000, 2):
        reader, chunk = read_all(path, chunk_rows=rows)
        check_alibaba(reader, chunk)
        assert reader.skipped.examples["malformed line"] == ["line 6: dstaddr"]


def test_alibaba_json_lines_with_broken_lines(tmp_path: Path) -> None:
    records = alibaba_records()
    lines = [json.dumps(records[0]), "{not json", "", "[1, 2]", json.dumps(records[2])]
    path = tmp_path / "broken.json"
    path.write_text("\n".join(lines) + "\n")
    reader, chunk = read_all(path)
    assert reader.records_read == 4
    assert dict(reader.skipped) == {"malformed line": 2}
    assert reader.skipped.examples["malformed line"] == ["line 2: not a JSON object", "line 4: not a JSON object"]
    assert chunk.record.tolist() == [0, 3]
    assert chunk.eni.tolist() == ["eni-a", "eni-a"]


def test_alibaba_csv_with_short_rows(tmp_path: Path) -> None:
    names = alibaba_fields()
    good = ",".join(alibaba_records()[0][n] for n in names)
    path = tmp_path / "short.csv"
    path.write_text("\n".join([",".join(names), good, "1,vsw-1,i-1", good]) + "\n")
    reader, chunk = read_all(path)
    assert reader.records_read == 3
    assert dict(reader.skipped) == {"malformed line": 1}
    assert reader.skipped.examples["malformed line"] == [f"line 3: 3 of {len(names)} fields"]
    assert len(chunk) == 2


def test_block_boundaries_do_not_change_what_is_read(tmp_path: Path) -> None:
    """Small blocks take the whole-block CSV path where they can; results match one big block."""
    lines = [V2_LINE.format(i=i % 250, sport=1000 + i) for i in range(40)]
    lines[7] = lines[7].replace(" 443 ", "  443 ")       # double space
    lines[12] = ""                                         # blank line
    lines[20] = "2 - - - - - - - - - 1 2 - NODATA"
    lines[25] = "oops"
    lines[30] = " ".join(AWS_HEADER)                       # a header from here on
    lines[33] = lines[33].replace("ACCEPT", "-")
    path = tmp_path / "mixed.log"
    path.write_text("\r\n".join(lines) + "\r\n")

    def read(chunk_rows: int):
        reader = open_trace(path, format="aws-flowlog", chunk_rows=chunk_rows)
        chunk = TraceChunk.concat(list(reader))
        return (reader.records_read, dict(reader.skipped), reader.skipped.examples, chunk.record.tolist(),
                chunk.src_port.tolist(), chunk.action.tolist(), chunk.time.tolist())

    whole = read(1_000_000)
    assert whole[:2] == (38, {"NODATA": 1, "malformed line": 1})  # 40 lines less a blank and a header
    assert whole[2] == {"NODATA": ["line 21"], "malformed line": ["line 26: 1 fields"]}
    for rows in (1, 2, 3, 5):
        assert read(rows) == whole


# ---------------------------------------------------------------- line numbers survive blank and garbage lines

CSV_GOOD = "2,vsw-1,i-1,vpc-1,1234,eni-a,10.0.0.5,{sport},10.0.0.9,22,6,in,1,60,1700000000,1700000060,OK,ACCEPT"
CSV_HEADER = ("version,vswitch-id,vm-id,vpc-id,account-id,eni-id,srcaddr,srcport,dstaddr,dstport,protocol,"
              "direction,packets,bytes,start,end,log-status,action")


def _csv_log(newline: str) -> str:
    """A CSV flow log with a blank line before its header, blank and whitespace lines, a garbage line and
    an empty-fields line before a bad record, and a bad record after them: line numbers in comments."""
    lines = ["",                                          # 1
             CSV_HEADER,                                  # 2
             CSV_GOOD.format(sport=1),                    # 3  record 0
             "",                                          # 4
             "   ",                                       # 5
             "garbage",                                   # 6  record 1: 1 of 18 fields
             "",                                          # 7
             CSV_GOOD.format(sport=2),                    # 8  record 2
             CSV_GOOD.format(sport=3).replace("10.0.0.9", "10.0.0.999"),  # 9  record 3: bad dstaddr
             "," * 17,                                    # 10 record 4: no srcaddr
             "",                                          # 11
             CSV_GOOD.format(sport=4)]                    # 12 record 5
    return newline.join(lines) + newline


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("block_bytes", [4 << 20, 64])
def test_csv_skip_messages_name_the_true_line(tmp_path: Path, monkeypatch, newline: str, block_bytes: int) -> None:
    from flowsim.io.traces import tables

    monkeypatch.setattr(tables, "CSV_BLOCK_BYTES", block_bytes)
    path = tmp_path / "log.csv"
    path.write_bytes(_csv_log(newline).encode())
    reader, chunk = read_all(path, format="alibaba-flowlog")
    assert reader.records_read == 6
    assert dict(reader.skipped) == {"malformed line": 3}
    assert reader.skipped.examples["malformed line"] == ["line 6: 1 of 18 fields", "line 9: dstaddr",
                                                         "line 10: srcaddr"]
    assert chunk.record.tolist() == [0, 2, 5]
    assert chunk.src_port.tolist() == [1, 2, 4]


def test_native_csv_skip_messages_name_the_true_line(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text("src_ip,dst_ip,protocol,src_port,dst_port,time\n"      # 1
                    "10.0.0.1,10.0.0.2,tcp,1,80,1\n"                        # 2
                    "\n"                                                    # 3
                    "junk\n"                                                # 4
                    "\n\n"                                                  # 5, 6
                    "10.0.0.1,10.0.0.2,tcp,1,80000,2\n"                     # 7: bad dst_port
                    "10.0.0.1,10.0.0.2,tcp,1,80,3\n")                       # 8
    reader, chunk = read_all(path)
    assert reader.skipped.examples["malformed row"] == ["line 4: 1 of 6 fields", "line 7: dst_port"]
    assert chunk.record.tolist() == [0, 3]


def test_text_flow_logs_name_the_true_line(tmp_path: Path) -> None:
    aws = tmp_path / "aws.log"
    aws.write_text("\n".join([V2_LINE.format(i=1, sport=1), "", "  ", "garbage here", "",
                              V2_LINE.format(i=2, sport=2).replace("10.0.1.1", "10.0.1.999"), ""]) + "\n")
    reader, _ = read_all(aws, format="aws-flowlog")
    assert reader.skipped.examples["malformed line"] == ["line 4: 2 fields", "line 6: dstaddr"]
    records = alibaba_records()
    js = tmp_path / "log.json"
    js.write_text("\n".join([json.dumps(records[0]), "", "garbage", "", json.dumps(records[4])]) + "\n")
    reader, _ = read_all(js)
    assert reader.skipped.examples["malformed line"] == ["line 3: not a JSON object", "line 5: dstaddr"]
