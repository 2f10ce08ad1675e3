"""Stateful replay (docs/semantics.md §5): sessions, expiry, endpoint mode, agreement with the reference, real inputs."""
from __future__ import annotations

import ipaddress
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import flowsim
from flowsim.batch.replay import SESSION_TIMEOUT, replay
from flowsim.cli import main
from flowsim.config.loader import parse_protocol
from flowsim.engine.reference import Flow, ReferenceEvaluator
from flowsim.testing.randomconfig import Shape, random_config, random_flows

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "traces" / "example.yaml"

# web-1 (10.0.1.10) in basic sg-web; db-1 (10.0.3.10) in advanced sg-db that allows only udp 53 out to 100.100.2.136
RESOLVER, DB, WEB = "100.100.2.136", "10.0.3.10", "10.0.1.10"


def write_trace(tmp_path: Path, rows: list[dict], name: str = "trace.csv") -> Path:
    path = tmp_path / name
    columns = sorted({k for r in rows for k in r}, key=["time", "src_ip", "dst_ip", "protocol", "src_port",
                                                       "dst_port", "eni", "direction"].index)
    pacsv.write_csv(pa.table({c: [r.get(c) for r in rows] for c in columns}), path)
    return path


def run(tmp_path: Path, rows: list[dict], config=EXAMPLE):
    engine = flowsim.compile(flowsim.load_config(config))
    out = tmp_path / "out.csv"
    summary = replay(engine, str(write_trace(tmp_path, rows)), str(out))
    table = pacsv.read_csv(out)
    return summary, table.to_pylist()


def dns(t: float, reply: bool = False, port: int = 40008) -> dict:
    if reply:
        return {"time": t, "src_ip": RESOLVER, "dst_ip": DB, "protocol": "udp", "src_port": 53, "dst_port": port}
    return {"time": t, "src_ip": DB, "dst_ip": RESOLVER, "protocol": "udp", "src_port": port, "dst_port": 53}


def test_reply_of_an_allowed_session_passes_statefully(tmp_path):
    summary, rows = run(tmp_path, [dns(0), dns(1, reply=True)])
    assert [(r["verdict"], r["stateful"]) for r in rows] == [("allow", False), ("allow", True)]
    assert rows[0]["egress_rule"] == "sg-db/dns" and rows[1]["ingress_rule"] is None
    assert summary.stateful == 1 and summary.sessions == 1


def test_reply_without_a_session_is_evaluated_by_rules(tmp_path):
    _, rows = run(tmp_path, [dns(1, reply=True)])
    assert (rows[0]["verdict"], rows[0]["stateful"], rows[0]["ingress_rule"]) == ("deny", False, "default:inbound-deny")


@pytest.mark.parametrize("gap,alive", [(SESSION_TIMEOUT, True), (SESSION_TIMEOUT + 0.001, False)])
def test_session_expires_910_seconds_after_its_last_packet(tmp_path, gap, alive):
    _, rows = run(tmp_path, [dns(0), dns(100, reply=True), dns(100 + gap, reply=True)])
    assert rows[1]["stateful"] is True
    assert (rows[2]["verdict"] == "allow") is alive and rows[2]["stateful"] is alive


def test_packets_keep_a_session_alive(tmp_path):
    times = [0, 800, 1600, 2400]
    _, rows = run(tmp_path, [dns(times[0])] + [dns(t, reply=True) for t in times[1:]])
    assert all(r["stateful"] for r in rows[1:])


def test_denied_packets_open_no_session(tmp_path):
    # db -> 8.8.8.8 is denied (advanced: outbound deny), so the answer is denied too
    rows = [{"time": 0, "src_ip": DB, "dst_ip": "8.8.8.8", "protocol": "udp", "src_port": 1, "dst_port": 53},
            {"time": 1, "src_ip": "8.8.8.8", "dst_ip": DB, "protocol": "udp", "src_port": 53, "dst_port": 1}]
    summary, out = run(tmp_path, rows)
    assert [r["verdict"] for r in out] == ["deny", "deny"] and summary.sessions == 0


def test_other_ports_are_another_session(tmp_path):
    _, rows = run(tmp_path, [dns(0), dns(1, reply=True, port=40009)])
    assert rows[1]["verdict"] == "deny"


def test_out_of_order_records_are_replayed_in_time_order(tmp_path):
    _, rows = run(tmp_path, [dns(5, reply=True), dns(1)])
    assert rows[0]["stateful"] is True and rows[0]["verdict"] == "allow"


def test_records_without_time_are_new_sessions(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "time"} for r in (dns(0), dns(1, reply=True))]
    summary, out = run(tmp_path, rows)
    assert [r["verdict"] for r in out] == ["allow", "deny"] and summary.stateless == 2


def test_endpoint_mode_sessions_are_per_eni(tmp_path):
    rows = [dict(dns(0), eni="eni-db-1", direction="out"), dict(dns(1, reply=True), eni="eni-db-1", direction="in"),
            dict(dns(2, reply=True), eni="eni-web-1", direction="in")]
    _, out = run(tmp_path, rows)
    assert [(r["verdict"], r["stateful"]) for r in out] == [("allow", False), ("allow", True), ("deny", False)]


# port lists, legacy priorities and load-balancer backends (with health checks from 100.64.0.0/10) on top
FEATURES = dict(port_list_share=0.5, legacy_share=0.2, lb_backend_share=0.4)


@pytest.mark.parametrize("features", [{}, FEATURES], ids=["plain", "port-lists-legacy-health-checks"])
def test_stateless_records_agree_with_the_reference(tmp_path, features):
    """Every record that no session let through gets exactly the reference evaluator's verdict and rules."""
    mapping = random_config(11, Shape(groups=6, rules_per_group=10, enis=20, groups_per_eni=2, **features))
    cols = random_flows(mapping, 3000, 11)
    rng = random.Random(11)
    n = len(cols["src_ip"])
    cols["time"] = sorted(rng.uniform(0, 3000) for _ in range(n))
    for i in range(0, n, 3):  # replies to earlier flows, so that sessions matter
        j = rng.randrange(max(1, i))
        for a, b in (("src_ip", "dst_ip"), ("src_port", "dst_port")):
            cols[a][i], cols[b][i] = cols[b][j], cols[a][j]
        cols["protocol"][i] = cols["protocol"][j]
    config = flowsim.load_config(mapping)
    engine = flowsim.compile(config)
    path = tmp_path / "trace.csv"
    pacsv.write_csv(pa.table(cols), path)
    out = tmp_path / "out.csv"
    summary = replay(engine, str(path), str(out))
    rows = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(strings_can_be_null=False)).to_pylist()
    ref = ReferenceEvaluator(config)
    checked = 0
    for r in rows:
        if r["stateful"]:
            continue
        proto = parse_protocol(str(r["protocol"]))
        ported = proto in (6, 17)
        v = ref.evaluate(Flow(ipaddress.ip_address(r["src_ip"]), ipaddress.ip_address(r["dst_ip"]), proto,
                              r["src_port"] if ported else 0, r["dst_port"] if ported else 0))
        assert (r["verdict"], r["egress_rule"], r["ingress_rule"]) == (v.verdict, v.egress_rule, v.ingress_rule), r
        checked += 1
    assert summary.stateful > 0 and checked > 1000
    if features:  # the features decided records, statelessly and statefully
        assert summary.rule_hits["default:health-check-allow"] > 0
        port_list_rules = {r.name for r in config.evaluation_order() if r.port_list}
        assert sum(summary.rule_hits[name] for name in port_list_rules) > 0


def test_bundled_capture_tells_its_story():
    engine = flowsim.compile(flowsim.load_config(EXAMPLE))
    summary = replay(engine, str(ROOT / "traces" / "example.pcap"))
    assert (summary.records, summary.evaluated, summary.allowed, summary.denied, summary.stateful) == (11, 9, 5, 4, 2)
    assert summary.skipped == {"non-IP frame": 1, "truncated packet": 1}
    assert "sg-app/from-web" in summary.never_hit and summary.rule_hits["sg-db/dns"] == 1


def test_bundled_flow_log_reports_agreement(tmp_path, capsys):
    code = main(["replay", str(EXAMPLE), str(ROOT / "traces" / "example-flowlog.csv"),
                 "--summary", str(tmp_path / "s.json"), "-o", str(tmp_path / "v.parquet")])
    assert code == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["compared"], summary["agree"]) == (8, 7)
    assert summary["disagreements"][0]["recorded"] == "ACCEPT" and summary["disagreements"][0]["verdict"] == "deny"
    assert summary["skipped"] == {"NODATA": 1, "SKIPDATA": 1}
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "v.parquet")
    assert table.num_rows == 8 and table.column("agrees").to_pylist().count(False) == 1
    assert "agreement with the recorded action: 7 of 8" in capsys.readouterr().out


def test_every_real_capture_and_flow_log_replays(shared_data):
    engine = flowsim.compile(flowsim.load_config(EXAMPLE))
    files = sorted((shared_data / "real" / "pcap").iterdir()) + sorted((shared_data / "real" / "flowlogs" / "aws").glob("*.log"))
    assert files
    for path in files:
        summary = replay(engine, str(path))
        assert summary.records == summary.evaluated + sum(summary.skipped.values()), path


def test_bad_trace_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "garbage.bin"
    bad.write_bytes(b"\x00\x01\x02 definitely not a trace")
    assert main(["replay", str(EXAMPLE), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err


def test_records_out_of_order_across_chunks_are_reordered(tmp_path):
    """With two records per chunk, a reply written a chunk before its request still passes statefully."""
    rows = [dns(0, reply=False, port=40001), dns(5, reply=True), dns(1), dns(6, reply=True, port=40001)]
    engine = flowsim.compile(flowsim.load_config(EXAMPLE))
    out = tmp_path / "out.csv"
    summary = replay(engine, str(write_trace(tmp_path, rows)), str(out), chunk_rows=2)
    verdicts = {(r["src_port"], r["dst_port"]): (r["verdict"], r["stateful"]) for r in pacsv.read_csv(out).to_pylist()}
    assert verdicts[(53, 40008)] == ("allow", True) and verdicts[(53, 40001)] == ("allow", True)
    assert summary.out_of_order == 0 and summary.stateful == 2


def test_clearing_a_full_session_table_keeps_what_the_chunk_s_earliest_record_still_sees(tmp_path):
    # when the table needs room it is cleared of expired sessions; a session that has expired for a
    # chunk's last record can still be live for its first one, a reply, which must pass statefully
    import pyarrow.parquet as pq

    n, chunks = 5_000, 10  # the table fills with expired sessions and is cleared within these chunks
    rows = []
    for k in range(chunks):
        opened = 1000.0 * k  # the chunk's dns query; its reply comes at the start of the next chunk
        first = dns(opened - 100, reply=True, port=40000 + k - 1) if k else \
            {"time": -100, "src_ip": WEB, "dst_ip": "8.8.4.4", "protocol": "tcp", "src_port": 1, "dst_port": 80}
        rows += [first, dns(opened, port=40000 + k)]
        rows += [{"time": opened, "src_ip": WEB, "dst_ip": f"8.{k}.{j // 250}.{j % 250 + 1}", "protocol": "tcp",
                  "src_port": 1024 + j, "dst_port": 443} for j in range(n)]
    path = tmp_path / "trace.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    out = tmp_path / "out.csv"
    summary = replay(flowsim.compile(flowsim.load_config(EXAMPLE)), str(path), str(out), chunk_rows=n + 2)
    replies = [r for r in pacsv.read_csv(out).to_pylist() if r["src_ip"] == RESOLVER]
    assert len(replies) == chunks - 1
    assert all(r["verdict"] == "allow" and r["stateful"] for r in replies), replies
    assert summary.stateful == chunks - 1


def test_record_numbers_are_one_based_like_skip_messages(tmp_path, capsys):
    """`record` counts from 1, as the `row`, `line` and `packet` of skip messages do: the flow log's NODATA and
    SKIPDATA records are its 6th and 10th, and the disagreeing record is its 5th."""
    log = ROOT / "traces" / "example-flowlog.csv"
    out = tmp_path / "v.csv"
    assert main(["replay", str(EXAMPLE), str(log), "-o", str(out), "--summary", str(tmp_path / "s.json")]) == 0
    printed = capsys.readouterr().out
    assert "NODATA (line 7)" in printed and "record 5: 10.0.1.12:51001" in printed
    assert json.loads((tmp_path / "s.json").read_text())["disagreements"][0]["record"] == 5
    assert pacsv.read_csv(out).column("record").to_pylist() == [1, 2, 3, 4, 5, 7, 8, 9]
    capture = tmp_path / "cap.csv"
    assert main(["replay", str(EXAMPLE), str(ROOT / "traces" / "example.pcap"), "-o", str(capture), "-q"]) == 0
    assert pacsv.read_csv(capture).column("record").to_pylist()[0] == 1
    diff = tmp_path / "diff.csv"
    assert main(["diff", str(EXAMPLE), str(ROOT / "traces" / "example-edited.yaml"), "--trace", str(log),
                 "-o", str(diff), "-q"]) == 0
    assert pacsv.read_csv(diff).column("record").to_pylist() == [1, 2, 3, 4, 5, 7, 8, 9]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_per_record_protocols_are_named_as_query_writes_them(tmp_path, suffix):
    """query passes a flow table's `tcp` through; replay and diff --trace write captures' and flow logs'
    protocol numbers the same way, as text in CSV and Parquet alike."""
    import pyarrow.parquet as pq

    def protocols(path: Path) -> tuple[list, bool]:
        table = pq.read_table(path) if suffix == ".parquet" else pacsv.read_csv(path)
        column = table.column("protocol")
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        return sorted(set(column.to_pylist())), pa.types.is_string(kind)

    flows, query = ROOT / "traces" / "example-flows.csv", tmp_path / f"q{suffix}"
    assert main(["query", str(EXAMPLE), str(flows), "-o", str(query), "-q"]) == 0
    assert protocols(query) == (["icmp", "tcp", "udp"], True)
    for trace in ("example.pcap", "example-flowlog.csv"):
        out = tmp_path / f"{trace}{suffix}"
        assert main(["replay", str(EXAMPLE), str(ROOT / "traces" / trace), "-o", str(out), "-q"]) == 0
        assert protocols(out) == (["tcp", "udp"], True), trace
    diff = tmp_path / f"diff{suffix}"
    assert main(["diff", str(EXAMPLE), str(ROOT / "traces" / "example-edited.yaml"), "--trace",
                 str(ROOT / "traces" / "example-flowlog.csv"), "-o", str(diff), "-q"]) == 0
    assert protocols(diff) == (["tcp", "udp"], True)


def test_parquet_output_of_csv_traces_has_integer_ports(tmp_path):
    """As query's: a CSV trace's ports (text to Arrow's reader) are integer columns of a Parquet output, empty
    ones null; a flow log's srcport/dstport too."""
    import pyarrow.parquet as pq

    trace = write_trace(tmp_path, [dns(0), dns(1, reply=True),
                                   {"time": 2, "src_ip": DB, "dst_ip": RESOLVER, "protocol": "icmp"}])
    cases = [(trace, ("src_port", "dst_port")), (ROOT / "traces" / "example-flowlog.csv", ("srcport", "dstport"))]
    for path, names in cases:
        out = tmp_path / "out.parquet"
        assert main(["replay", str(EXAMPLE), str(path), "-o", str(out), "-q"]) == 0
        table = pq.read_table(out)
        for name in names:
            assert pa.types.is_integer(table.schema.field(name).type), (path, name)
        assert None not in table.column(names[1]).to_pylist()[:2]
    assert pq.read_table(tmp_path / "out.parquet").column("dstport").to_pylist()[:2] == [53, 40008]
    diff = tmp_path / "diff.parquet"
    assert main(["diff", str(EXAMPLE), str(EXAMPLE), "--trace", str(trace), "-o", str(diff), "-q"]) == 0
    assert pq.read_table(diff).column("dst_port").to_pylist() == [53, 40008, None]


def test_summaries_of_one_say_one(tmp_path, capsys):
    """A count of one takes the singular, and its verb agrees: "1 record", "1 session", "1 disagrees"."""
    timed = write_trace(tmp_path, [dns(0)], "one.csv")
    assert main(["replay", str(EXAMPLE), str(timed)]) == 0
    out = capsys.readouterr().out
    assert ": 1 record in " in out and "; 1 session opened" in out
    untimed = write_trace(tmp_path, [{k: v for k, v in dns(0).items() if k != "time"}], "untimed.csv")
    assert main(["replay", str(EXAMPLE), str(untimed)]) == 0
    assert "1 record had no timestamp and was evaluated as a new session" in capsys.readouterr().out
    lines = (ROOT / "traces" / "example-flowlog.csv").read_text().splitlines()
    log = tmp_path / "one-log.csv"
    log.write_text("\n".join([lines[0], lines[5]]) + "\n")  # web-2 -> db mysql: recorded ACCEPT, flowsim says deny
    assert main(["replay", str(EXAMPLE), str(log)]) == 0
    out = capsys.readouterr().out
    assert "0 of 1 (0.0%); 1 disagrees" in out and "0 sessions opened" in out
    assert main(["diff", str(EXAMPLE), str(ROOT / "traces" / "example-edited.yaml"), "--trace", str(log)]) == 0
    out = capsys.readouterr().out
    assert ": 1 record in " in out and "compared 1: 1 changes verdict (1 deny -> allow" in out
    assert main(["diff", str(EXAMPLE), str(EXAMPLE), "--trace", str(timed)]) == 0
    assert "0 change verdict" in capsys.readouterr().out


def test_quota_and_lint_counts_of_one_say_one(tmp_path, capsys):
    from flowsim.analysis.lint import Finding, LintReport, format_report
    from flowsim.config.validate import quota_usage

    config = flowsim.load_config({"limits": {"groups_per_eni": 1}, "security_groups": {"sg-a": {"type": "basic"}},
                                  "interfaces": {"eni-a": {"security_groups": ["sg-a"], "ips": ["10.0.0.1"]}}})
    phrases = {use.quota: use.phrase for use in quota_usage(config)}
    assert phrases["groups_per_eni"] == "is in 1 security group"
    assert phrases["addresses_per_basic_group"] == "holds 1 private address"
    finding = Finding("quota", "error", "-", "ingress", ("eni-a",), "eni-a is in 1 group")
    text = format_report(LintReport([finding], [], 1, 0.0))
    assert text.endswith("1 finding (1 error, 0 warnings, 0 info) over 1 unit")
