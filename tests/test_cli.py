"""The command line (docs/commands.md), run in-process through `flowsim.cli.main`.

Verdicts printed by `check` and `query` are compared with the reference
evaluator as well as with hand-written expectations.
"""
from __future__ import annotations

import csv
import io
import ipaddress
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import flowsim
from flowsim.cli import main
from flowsim.config.loader import parse_protocol
from flowsim.engine.reference import Flow, ReferenceEvaluator
from flowsim.errors import InputError

EXAMPLE = Path(__file__).resolve().parent.parent / "traces" / "example.yaml"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture(scope="module")
def reference():
    return ReferenceEvaluator(flowsim.load_config(EXAMPLE))


def ref_row(reference, row: dict) -> tuple[str, str, str]:
    proto = parse_protocol(row["protocol"])
    ported = proto in (6, 17)
    direction = {"in": "ingress", "out": "egress", "": None, None: None}.get(row.get("direction"), row.get("direction"))
    flow = Flow(ipaddress.ip_address(row["src_ip"]), ipaddress.ip_address(row["dst_ip"]), proto,
                int(row["src_port"] or 0) if ported else 0, int(row["dst_port"] or 0) if ported else 0,
                vpc=row.get("vpc") or None, eni=row.get("eni") or None, direction=direction)
    v = reference.evaluate(flow)
    return v.verdict, v.egress_rule, v.ingress_rule


# ================================================================ validate
def test_validate_prints_a_summary(capsys):
    code, out, err = run(capsys, "validate", EXAMPLE)
    assert code == 0 and err == ""
    assert str(EXAMPLE) in out and "valid" in out
    assert "3 security groups (2 basic, 1 advanced)" in out
    assert "10 rules" in out and "1 prefix list," in out and "4 interfaces" in out and out.rstrip().endswith("1 VPC")


def test_validate_invalid_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("security_groups:\n  sg-a: {rules: [{direction: ingress, protocol: tcp, ports: 0, peer: 0.0.0.0/0}]}\n")
    code, out, err = run(capsys, "validate", bad)
    assert code == 2 and out == ""
    assert f"{bad}:2: sg-a rule #1" in err


# ================================================================ check
def test_check_text_output(capsys, reference):
    code, out, err = run(capsys, "check", EXAMPLE, "--src", "10.0.1.10", "--dst", "10.0.2.10", "--protocol", "tcp",
                         "--src-port", "40000", "--dst-port", "8080")
    assert code == 0, err
    assert "ALLOW" in out
    assert "eni-web-1" in out and "default:outbound-allow" in out
    assert "eni-app-1" in out and "sg-app/from-web" in out and "priority 1" in out and "group sg-app" in out
    assert ref_row(reference, {"src_ip": "10.0.1.10", "dst_ip": "10.0.2.10", "protocol": "tcp", "src_port": "40000",
                               "dst_port": "8080"}) == ("allow", "default:outbound-allow", "sg-app/from-web")


def test_check_text_output_deny(capsys):
    code, out, _ = run(capsys, "check", EXAMPLE, "--src", "10.0.1.10", "--dst", "10.0.1.12", "-p", "tcp", "--dst-port", "25")
    assert code == 0  # a deny is an answer, not an error
    assert "DENY" in out and "sg-web/no-smtp-out" in out and "default:intra-group-allow" in out


def test_check_json(capsys, reference):
    code, out, err = run(capsys, "check", EXAMPLE, "--src", "10.0.1.66", "--dst", "10.0.2.10", "-p", "6",
                         "--src-port", "1234", "--dst-port", "8080", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["verdict"] == "deny"
    assert doc["egress_rule"] == "" and doc["egress"] is None
    assert doc["ingress_rule"] == "sg-app/block-bad-host"
    side = doc["ingress"]
    assert side["eni"] == "eni-app-1" and side["direction"] == "ingress" and side["decision"] == "deny"
    assert side["group"] == "sg-app" and side["priority"] == 1 and side["default"] is False
    assert side["action"] == "drop" and side["protocol"] == "all" and side["peer"] == "10.0.1.66/32"
    assert doc["flow"]["src_ip"] == "10.0.1.66" and doc["flow"]["dst_port"] == 8080 and doc["flow"]["protocol"] == "tcp"
    assert (doc["verdict"], doc["egress_rule"], doc["ingress_rule"]) == ref_row(
        reference, {"src_ip": "10.0.1.66", "dst_ip": "10.0.2.10", "protocol": "6", "src_port": "1234", "dst_port": "8080"})


def test_check_json_default_rules(capsys):
    code, out, _ = run(capsys, "check", EXAMPLE, "--src", "10.0.3.10", "--dst", "10.0.1.10", "-p", "udp", "--dst-port", "9", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["verdict"] == "deny"
    assert doc["egress"]["rule"] == "default:outbound-deny" and doc["egress"]["default"] is True
    assert doc["egress"]["priority"] is None and doc["egress"]["eni"] == "eni-db-1"
    assert doc["ingress"]["rule"] == "default:inbound-deny" and doc["ingress"]["eni"] == "eni-web-1"


def test_check_json_endpoint_mode(capsys):
    code, out, _ = run(capsys, "check", EXAMPLE, "--src", "10.0.1.12", "--dst", "10.0.1.10", "-p", "tcp", "--dst-port", "22",
                       "--eni", "eni-web-1", "--direction", "in", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["verdict"] == "allow" and doc["ingress_rule"] == "default:intra-group-allow" and doc["egress"] is None
    assert doc["flow"]["eni"] == "eni-web-1" and doc["flow"]["direction"] == "ingress"


def test_check_ipv6_and_icmp(capsys):
    code, out, _ = run(capsys, "check", EXAMPLE, "--src", "2001:db8:ffff::1", "--dst", "2001:db8:1::10", "-p", "tcp",
                       "--dst-port", "443", "--json")
    assert code == 0 and json.loads(out)["ingress_rule"] == "sg-web/https-v6"
    code, out, _ = run(capsys, "check", EXAMPLE, "--src", "10.200.0.1", "--dst", "10.0.1.10", "-p", "ICMP", "--json")
    assert code == 0 and json.loads(out)["ingress_rule"] == "sg-web/ping"


def test_check_same_eni_and_unmanaged(capsys):
    code, out, _ = run(capsys, "check", EXAMPLE, "--src", "10.0.1.10", "--dst", "10.0.1.11", "-p", "tcp", "--dst-port", "1", "--json")
    doc = json.loads(out)
    assert code == 0 and (doc["verdict"], doc["egress"], doc["ingress"]) == ("allow", None, None)
    code, out, _ = run(capsys, "check", EXAMPLE, "--src", "192.0.2.1", "--dst", "192.0.2.2", "-p", "gre")
    assert code == 0 and "UNMANAGED" in out


@pytest.mark.parametrize("argv,fragment", [
    (["--src", "10.0.1.x", "--dst", "10.0.1.10", "-p", "icmp"], "--src"),
    (["--src", "10.0.1.1", "--dst", "nowhere", "-p", "icmp"], "--dst"),
    (["--src", "10.0.1.1", "--dst", "10.0.1.10", "-p", "all"], "--protocol"),
    (["--src", "10.0.1.1", "--dst", "10.0.1.10", "-p", "carrier-pigeon"], "--protocol"),
    (["--src", "10.0.1.1", "--dst", "10.0.1.10", "-p", "300"], "--protocol"),
    (["--src", "10.0.1.1", "--dst", "10.0.1.10", "-p", "tcp"], "--dst-port"),
    (["--src", "10.0.1.1", "--dst", "10.0.1.10", "-p", "tcp", "--dst-port", "70000"], "--dst-port"),
    (["--src", "10.0.1.1", "--dst", "10.0.1.10", "-p", "tcp", "--dst-port", "1", "--src-port", "-4"], "--src-port"),
    (["--src", "10.0.1.1", "--dst", "2001:db8::1", "-p", "udp", "--dst-port", "1"], "different IP versions"),
    (["--src", "10.0.1.1", "--dst", "10.0.1.10", "-p", "icmp", "--eni", "eni-web-1"], "--direction"),
    (["--src", "10.0.1.1", "--dst", "10.0.1.10", "-p", "icmp", "--direction", "in"], "--eni"),
], ids=["bad-src", "bad-dst", "protocol-all", "unknown-protocol", "protocol-300", "tcp-without-port", "port-too-high",
        "negative-src-port", "mixed-families", "eni-without-direction", "direction-without-eni"])
def test_check_bad_flow_exits_2(capsys, argv, fragment):
    code, out, err = run(capsys, "check", EXAMPLE, *argv)
    assert code == 2 and out == ""
    assert fragment in err


TWO_VPCS = """\
security_groups:
  sg-a: {vpc: vpc-a, rules: [{id: http, direction: ingress, protocol: tcp, ports: 80, peer: 0.0.0.0/0}]}
  sg-b: {vpc: vpc-b}
interfaces:
  eni-a: {vpc: vpc-a, security_groups: [sg-a], ips: [10.0.0.5]}
  eni-b: {vpc: vpc-b, security_groups: [sg-b], ips: [10.0.0.5]}
"""


def test_check_vpc_flag_resolves_reused_addresses(tmp_path, capsys):
    config = tmp_path / "vpcs.yaml"
    config.write_text(TWO_VPCS)
    flow = ["--src", "198.51.100.1", "--dst", "10.0.0.5", "-p", "tcp", "--dst-port", "80"]
    code, out, _ = run(capsys, "check", config, *flow, "--vpc", "vpc-a", "--json")
    assert code == 0 and json.loads(out)["ingress_rule"] == "sg-a/http"
    code, out, _ = run(capsys, "check", config, *flow, "--vpc", "vpc-b", "--json")
    assert code == 0 and (json.loads(out)["verdict"], json.loads(out)["ingress_rule"]) == ("deny", "default:inbound-deny")
    code, out, err = run(capsys, "check", config, *flow)  # ambiguous without a VPC: refused, not guessed
    assert code == 2 and out == "" and "several VPCs" in err


def test_check_with_invalid_config_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("security_groups: [\n")
    code, _, err = run(capsys, "check", bad, "--src", "10.0.0.1", "--dst", "10.0.0.2", "-p", "icmp")
    assert code == 2 and str(bad) in err


# ================================================================ query
FLOWS = [
    {"src_ip": "10.0.1.10", "dst_ip": "10.0.2.10", "protocol": "tcp", "src_port": "40000", "dst_port": "8080"},
    {"src_ip": "203.0.113.9", "dst_ip": "10.0.1.12", "protocol": "6", "src_port": "5555", "dst_port": "22"},
    {"src_ip": "198.51.100.8", "dst_ip": "10.0.1.12", "protocol": "TCP", "src_port": "5555", "dst_port": "22"},
    {"src_ip": "192.0.2.1", "dst_ip": "192.0.2.2", "protocol": "icmp", "src_port": "", "dst_port": ""},
    {"src_ip": "10.0.3.10", "dst_ip": "8.8.8.8", "protocol": "udp", "src_port": "53", "dst_port": "53"},
    {"src_ip": "10.0.1.10", "dst_ip": "10.0.1.12", "protocol": "tcp", "src_port": "1000", "dst_port": "25"},
    {"src_ip": "2001:db8:ffff::1", "dst_ip": "2001:db8:1::10", "protocol": "tcp", "src_port": "1000", "dst_port": "443"},
    {"src_ip": "10.0.2.70", "dst_ip": "10.0.3.10", "protocol": "tcp", "src_port": "1000", "dst_port": "3306"},
    {"src_ip": "10.0.1.10", "dst_ip": "10.0.1.11", "protocol": "gre", "src_port": "", "dst_port": ""},
]
EXPECTED = [
    ("allow", "default:outbound-allow", "sg-app/from-web"),
    ("allow", "", "sg-web/ssh-office"),
    ("deny", "", "default:inbound-deny"),
    ("unmanaged", "", ""),
    ("deny", "default:outbound-deny", ""),
    ("deny", "sg-web/no-smtp-out", "default:intra-group-allow"),
    ("allow", "", "sg-web/https-v6"),
    ("allow", "default:outbound-allow", "sg-db/mysql-from-app"),
    ("allow", "", ""),
]
COLUMNS = ["src_ip", "dst_ip", "protocol", "src_port", "dst_port"]


def write_csv(path: Path, rows: list[dict], columns: list[str] = COLUMNS) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv_text(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def verdicts(rows: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["verdict"], r["egress_rule"] or "", r["ingress_rule"] or "") for r in rows]


def test_query_csv_to_stdout(tmp_path, capsys, reference):
    flows = write_csv(tmp_path / "flows.csv", FLOWS)
    code, out, err = run(capsys, "query", EXAMPLE, flows)
    assert code == 0, err
    rows = read_csv_text(out)
    assert verdicts(rows) == EXPECTED == [ref_row(reference, f) for f in FLOWS]
    assert [{c: r[c] for c in COLUMNS} for r in rows] == FLOWS  # input columns kept
    assert list(rows[0]) == COLUMNS + ["verdict", "egress_rule", "ingress_rule"]
    assert "9 flows evaluated" in err


def test_query_quiet(tmp_path, capsys):
    flows = write_csv(tmp_path / "flows.csv", FLOWS)
    code, out, err = run(capsys, "query", EXAMPLE, flows, "-q")
    assert code == 0 and err == "" and len(read_csv_text(out)) == len(FLOWS)


def test_query_csv_to_csv_file(tmp_path, capsys):
    flows = write_csv(tmp_path / "flows.csv", FLOWS)
    out_path = tmp_path / "out.csv"
    code, out, err = run(capsys, "query", EXAMPLE, flows, "-o", out_path)
    assert code == 0 and out == ""
    assert verdicts(read_csv_text(out_path.read_text())) == EXPECTED


def test_query_csv_to_parquet_and_back(tmp_path, capsys):
    flows = write_csv(tmp_path / "flows.csv", FLOWS)
    out_path = tmp_path / "out.parquet"
    code, _, err = run(capsys, "query", EXAMPLE, flows, "-o", out_path)
    assert code == 0, err
    table = pq.read_table(out_path)
    assert table.column_names == COLUMNS + ["verdict", "egress_rule", "ingress_rule"]
    got = list(zip(table["verdict"].to_pylist(), table["egress_rule"].to_pylist(), table["ingress_rule"].to_pylist()))
    assert [(v, e or "", i or "") for v, e, i in got] == EXPECTED
    assert table["src_ip"].to_pylist() == [f["src_ip"] for f in FLOWS]
    # the Parquet output is itself a valid flow table: query it again, to CSV
    again = tmp_path / "again.csv"
    code, _, err = run(capsys, "query", EXAMPLE, out_path, "-o", again)
    assert code == 0, err
    assert verdicts(read_csv_text(again.read_text())) == EXPECTED


def test_query_parquet_with_typed_columns(tmp_path, capsys):
    table = pa.table({"src_ip": [f["src_ip"] for f in FLOWS], "dst_ip": [f["dst_ip"] for f in FLOWS],
                      "protocol": pa.array([parse_protocol(f["protocol"]) for f in FLOWS], pa.int32()),
                      "src_port": pa.array([int(f["src_port"]) if f["src_port"] else None for f in FLOWS], pa.int32()),
                      "dst_port": pa.array([int(f["dst_port"]) if f["dst_port"] else None for f in FLOWS], pa.int32())})
    pq.write_table(table, tmp_path / "flows.parquet")
    out_path = tmp_path / "out.parquet"
    code, _, err = run(capsys, "query", EXAMPLE, tmp_path / "flows.parquet", "-o", out_path)
    assert code == 0, err
    result = pq.read_table(out_path)
    got = list(zip(*(result[c].to_pylist() for c in ("verdict", "egress_rule", "ingress_rule"))))
    assert [(v, e or "", i or "") for v, e, i in got] == EXPECTED


def test_query_endpoint_and_vpc_columns(tmp_path, capsys, reference):
    rows = [
        {"src_ip": "10.0.1.12", "dst_ip": "10.0.1.10", "protocol": "tcp", "src_port": "1", "dst_port": "22",
         "vpc": "vpc-prod", "eni": "eni-web-1", "direction": "in"},
        {"src_ip": "10.0.1.10", "dst_ip": "198.51.100.1", "protocol": "tcp", "src_port": "1", "dst_port": "25",
         "vpc": "", "eni": "eni-web-1", "direction": "egress"},
        {"src_ip": "10.0.1.10", "dst_ip": "10.0.2.10", "protocol": "tcp", "src_port": "1", "dst_port": "8080",
         "vpc": "vpc-prod", "eni": "", "direction": ""},
        {"src_ip": "10.0.1.10", "dst_ip": "10.0.2.10", "protocol": "tcp", "src_port": "1", "dst_port": "8080",
         "vpc": "vpc-other", "eni": "", "direction": ""},
        {"src_ip": "1.1.1.1", "dst_ip": "10.0.2.10", "protocol": "udp", "src_port": "1", "dst_port": "1",
         "vpc": "", "eni": "eni-elsewhere", "direction": "in"},
    ]
    columns = COLUMNS + ["vpc", "eni", "direction"]
    flows = write_csv(tmp_path / "flows.csv", rows, columns)
    code, out, err = run(capsys, "query", EXAMPLE, flows)
    assert code == 0, err
    got = verdicts(read_csv_text(out))
    assert got == [ref_row(reference, r) for r in rows]
    assert got == [("allow", "", "default:intra-group-allow"), ("deny", "sg-web/no-smtp-out", ""),
                   ("allow", "default:outbound-allow", "sg-app/from-web"), ("unmanaged", "", ""), ("unmanaged", "", "")]


def test_query_invalid_rows_name_file_and_line(tmp_path, capsys):
    rows = list(FLOWS[:3])
    rows.insert(1, {"src_ip": "10.0.1.300", "dst_ip": "10.0.1.12", "protocol": "tcp", "src_port": "1", "dst_port": "22"})
    rows.append({"src_ip": "10.0.1.1", "dst_ip": "10.0.1.12", "protocol": "tcp", "src_port": "1", "dst_port": ""})
    rows.append({"src_ip": "10.0.1.1", "dst_ip": "10.0.1.12", "protocol": "warp", "src_port": "1", "dst_port": "1"})
    flows = write_csv(tmp_path / "flows.csv", rows)
    out_path = tmp_path / "out.csv"
    code, out, err = run(capsys, "query", EXAMPLE, flows, "-o", out_path)
    assert code == 2
    assert f"{flows}:3: " in err and "src_ip" in err          # data row 2 is file line 3
    assert f"{flows}:6: " in err and "dst_port" in err
    assert f"{flows}:7: " in err and "protocol" in err
    assert not out_path.exists()  # no partial output left behind


def test_query_invalid_rows_after_blank_lines_name_their_own_line(tmp_path, capsys):
    """Arrow's reader leaves blank lines out: the line of an invalid row after them is still its line in the file
    (plain or gzip-compressed), and a Parquet file's invalid row is named by its row counted from 1, as the API's."""
    import gzip

    good = "10.0.1.10,10.0.2.10,tcp,1,8080"
    text = f"src_ip,dst_ip,protocol,src_port,dst_port\n\n{good}\n\n\n{good}\n\n10.0.1.999,10.0.2.10,tcp,1,8080\n"
    flows = tmp_path / "flows.csv"
    flows.write_text(text)
    packed = tmp_path / "flows.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (flows, packed):
        code, _, err = run(capsys, "query", EXAMPLE, path)
        assert code == 2 and f"{path}:8: src_ip" in err, err
    parquet = tmp_path / "flows.parquet"
    pq.write_table(pacsv.read_csv(flows), parquet)
    code, _, err = run(capsys, "query", EXAMPLE, parquet)
    assert code == 2 and f"{parquet}: row 3: src_ip" in err, err
    engine = flowsim.compile(flowsim.load_config(EXAMPLE))
    with pytest.raises(InputError, match="row 3: src_ip"):
        engine.evaluate(pacsv.read_csv(flows))


def test_query_skip_invalid(tmp_path, capsys):
    rows = [FLOWS[0], {"src_ip": "bogus", "dst_ip": "10.0.1.12", "protocol": "tcp", "src_port": "1", "dst_port": "22"},
            FLOWS[1], {"src_ip": "10.0.1.1", "dst_ip": "2001:db8::1", "protocol": "udp", "src_port": "1", "dst_port": "1"}, FLOWS[2]]
    flows = write_csv(tmp_path / "flows.csv", rows)
    code, out, err = run(capsys, "query", EXAMPLE, flows, "--skip-invalid")
    assert code == 0, err
    assert verdicts(read_csv_text(out)) == EXPECTED[:3]
    assert "2 invalid rows skipped" in err and "3 flows evaluated" in err


@pytest.mark.parametrize("content", ["src,dst\n1.1.1.1,2.2.2.2\n", ""], ids=["missing-columns", "empty"])
def test_query_bad_flow_table(tmp_path, capsys, content):
    flows = tmp_path / "flows.csv"
    flows.write_text(content)
    code, out, err = run(capsys, "query", EXAMPLE, flows)
    assert code == 2 and str(flows) in err


def test_query_missing_or_binary_flow_file(tmp_path, capsys):
    code, _, err = run(capsys, "query", EXAMPLE, tmp_path / "nope.csv")
    assert code == 2 and "nope.csv" in err
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1\x00\x01\x02garbage")
    code, _, err = run(capsys, "query", EXAMPLE, garbage)
    assert code == 2 and "garbage.parquet" in err


@pytest.mark.parametrize("content", ['src_ip,dst_ip,protocol,src_port,dst_port\n"unterminated,1\n',
                                     "src_ip,dst_ip,protocol\n1.1.1.1,2.2.2.2,tcp,extra\n"], ids=["open-quote", "ragged-row"])
def test_query_unparsable_csv(tmp_path, capsys, content):
    flows = tmp_path / "flows.csv"
    flows.write_text(content)
    code, out, err = run(capsys, "query", EXAMPLE, flows)
    assert code == 2 and str(flows) in err


@pytest.mark.parametrize("command", ["query", "replay"])
@pytest.mark.parametrize("threads", ["0", "100000"])
def test_bad_thread_count(tmp_path, capsys, command, threads):
    flows = write_csv(tmp_path / "flows.csv", FLOWS)
    code, _, err = run(capsys, command, EXAMPLE, flows, "--threads", threads)
    assert code == 2 and "--threads" in err and "internal error" not in err


def test_arrow_settings_bound_threads_choose_the_allocator_and_are_restored():
    import pyarrow as pa

    from flowsim.batch.query import arrow_settings

    threads, pool = pa.cpu_count(), pa.default_memory_pool().backend_name
    with arrow_settings(1):
        assert pa.cpu_count() == 1 and pa.default_memory_pool().backend_name == "system"
    assert pa.cpu_count() == threads and pa.default_memory_pool().backend_name == pool


def test_query_unwritable_output_is_bad_input(tmp_path, capsys):
    flows = write_csv(tmp_path / "flows.csv", FLOWS)
    out_path = tmp_path / "no-such-dir" / "out.csv"
    code, _, err = run(capsys, "query", EXAMPLE, flows, "-o", out_path)
    assert code == 2 and str(out_path) in err and "internal error" not in err


# ================================================================ flags
@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["validate"],
    ["validate", str(EXAMPLE), "--no-such-flag"],
    ["check", str(EXAMPLE), "--dst", "10.0.0.1", "-p", "tcp"],
    ["check", str(EXAMPLE), "--src", "10.0.0.1", "--dst", "10.0.0.2", "-p", "tcp", "--dst-port", "http"],
    ["check", str(EXAMPLE), "--src", "10.0.0.1", "--dst", "10.0.0.2", "-p", "tcp", "--dst-port", "1", "--direction", "up"],
    ["query", str(EXAMPLE)],
    ["synth", str(EXAMPLE), "-o", "x.csv"],
    ["synth", str(EXAMPLE), "-n", "ten", "-o", "x.csv"],
], ids=["nothing", "unknown-command", "validate-no-file", "unknown-flag", "check-no-src", "port-not-number",
        "bad-direction", "query-no-flows", "synth-no-n", "synth-n-not-number"])
def test_bad_flags_exit_2(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out + err


def test_version_and_help_exit_0(capsys):
    assert main(["--version"]) == 0
    assert flowsim.__version__ in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "validate" in capsys.readouterr().out


# ================================================================ synth
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_synth_is_reproducible(tmp_path, capsys, suffix):
    a, b, c = (tmp_path / f"{name}.{suffix}" for name in ("a", "b", "c"))
    assert run(capsys, "synth", EXAMPLE, "-n", 500, "--seed", 7, "-o", a)[0] == 0
    assert run(capsys, "synth", EXAMPLE, "-n", 500, "--seed", 7, "-o", b)[0] == 0
    assert run(capsys, "synth", EXAMPLE, "-n", 500, "--seed", 8, "-o", c)[0] == 0
    assert a.read_bytes() == b.read_bytes()
    read = pq.read_table if suffix == "parquet" else pacsv.read_csv
    ta, tc = read(a), read(c)
    assert ta.num_rows == tc.num_rows == 500
    assert not ta.equals(tc)


def test_synth_output_is_a_valid_query_input(tmp_path, capsys, reference):
    flows = tmp_path / "synth.csv"
    assert run(capsys, "synth", EXAMPLE, "-n", 300, "--seed", 1, "-o", flows)[0] == 0
    code, out, err = run(capsys, "query", EXAMPLE, flows)
    assert code == 0, err
    rows = read_csv_text(out)
    assert len(rows) == 300
    assert verdicts(rows) == [ref_row(reference, r) for r in rows]
    assert {r["verdict"] for r in rows} == {"allow", "deny", "unmanaged"}


@pytest.mark.parametrize("n, words", [(1, "1 synthetic flow"), (40, "40 synthetic flows"),
                                      (1200, "1,200 synthetic flows")])
def test_synth_says_what_it_wrote(tmp_path, capsys, n, words):
    target = tmp_path / "s.csv"
    code, out, err = run(capsys, "synth", EXAMPLE, "-n", n, "--seed", 3, "-o", target)
    assert code == 0 and out == ""
    rules = flowsim.load_config(EXAMPLE).rule_count
    assert err.strip() == f"flowsim: {words} aimed at {rules} rules of {EXAMPLE} (seed 3) written to {target}"
    code, out, err = run(capsys, "synth", EXAMPLE, "-n", n, "--seed", 3, "-o", target, "-q")
    assert (code, out, err) == (0, "", "")


def test_synth_bad_count(tmp_path, capsys):
    code, _, err = run(capsys, "synth", EXAMPLE, "-n", -1, "-o", tmp_path / "x.csv")
    assert code == 2 and "-n" in err


def test_query_reads_csv_from_standard_input(monkeypatch, capsys):
    csv_text = "src_ip,dst_ip,protocol,src_port,dst_port\n198.51.100.7,10.0.1.10,tcp,40001,22\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(csv_text.encode())))
    assert main(["query", str(EXAMPLE), "-"]) == 0
    assert '"allow","","sg-web/ssh-office"' in capsys.readouterr().out


# ================================================================ summaries count in words
def test_summaries_say_one_in_the_singular(tmp_path, capsys):
    code, out, _ = run(capsys, "validate", EXAMPLE)
    assert code == 0
    assert " 1 prefix list," in out and out.rstrip().endswith("in 1 VPC")
    lines = (EXAMPLE.parent / "example-flowlog.csv").read_text().splitlines()
    one = tmp_path / "one.csv"
    one.write_text("\n".join(lines[:2]) + "\n")
    code, out, err = run(capsys, "replay", EXAMPLE, one)
    assert code == 0, err
    assert ": 1 record in " in out and "; 1 session opened" in out
    flows = (EXAMPLE.parent / "example-flows.csv").read_text().splitlines()
    one_flow = tmp_path / "one-flow.csv"
    one_flow.write_text("\n".join(flows[:2]) + "\n")
    code, _, err = run(capsys, "query", EXAMPLE, one_flow, "-o", tmp_path / "v.csv")
    assert code == 0 and "flowsim: 1 flow evaluated:" in err


def test_parquet_output_of_a_csv_query_has_integer_ports(tmp_path, capsys):
    flows = EXAMPLE.parent / "example-flows.csv"
    target = tmp_path / "v.parquet"
    code, _, err = run(capsys, "query", EXAMPLE, flows, "-o", target)
    assert code == 0, err
    table = pq.read_table(target)
    source = read_csv_text(flows.read_text())
    for name in ("src_port", "dst_port"):
        assert pa.types.is_integer(table.schema.field(name).type)
        assert table.column(name).to_pylist() == [int(r[name]) if r[name].strip() else None for r in source]
