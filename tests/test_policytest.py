"""Policy tests for CI pipelines: `check --expect` and `flowsim test` with JUnit output."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flowsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "traces" / "example.yaml")
CHECK = ["check", EXAMPLE, "--src", "10.0.1.10", "--dst", "10.0.2.10", "-p", "tcp", "--dst-port", "8080"]

CASES = """\
- name: web to app 8080
  src_ip: 10.0.1.10
  dst_ip: 10.0.2.10
  protocol: tcp
  dst_port: 8080
  expect: allow
  ingress_rule: sg-app/from-web
- name: internet ssh to the database
  src_ip: 203.0.113.9
  dst_ip: 10.0.3.10
  protocol: tcp
  src_port: 40000
  dst_port: 22
  expect: allow
- src_ip: 10.0.3.10
  dst_ip: 8.8.8.8
  protocol: udp
  dst_port: 53
  expect: deny
  egress_rule: default:outbound-deny
- name: db log line at db-1 outbound
  src_ip: 10.0.3.10
  dst_ip: 100.100.2.136
  protocol: udp
  src_port: 40008
  dst_port: 53
  eni: eni-db-1
  direction: out
  expect: allow
  egress_rule: sg-db/dns
  ingress_rule: ""
- name: outside the network
  src_ip: 192.0.2.1
  dst_ip: 192.0.2.2
  protocol: icmp
  expect: unmanaged
"""


@pytest.mark.parametrize("expect,status", [("allow", 0), ("deny", 3), ("unmanaged", 3)])
def test_check_expect(capsys, expect, status):
    assert main([*CHECK, "--expect", expect]) == status
    captured = capsys.readouterr()
    assert "verdict  ALLOW" in captured.out
    assert ("expected" in captured.err) == bool(status)


def test_policy_cases_with_a_junit_report(tmp_path, capsys):
    cases, junit = tmp_path / "cases.yaml", tmp_path / "report.xml"
    cases.write_text(CASES)
    assert main(["test", EXAMPLE, str(cases), "--junit", str(junit)]) == 3
    out = capsys.readouterr().out.splitlines()
    assert out == [f"FAIL internet ssh to the database ({cases}:8): 203.0.113.9:40000 -> 10.0.3.10:22 tcp: "
                   "expected allow, got deny; decided deny (egress -, ingress default:inbound-deny)",
                   "5 cases: 4 passed, 1 failed"]
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("5", "1")
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names == ["web to app 8080", "internet ssh to the database", "case 3", "db log line at db-1 outbound",
                     "outside the network"]
    failing = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failing] == ["internet ssh to the database"]
    assert failing[0].find("failure").get("message") == "expected allow, got deny"


def test_all_passing_exits_0_and_verbose_lists_every_case(tmp_path, capsys):
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES.replace("  dst_port: 22\n  expect: allow", "  dst_port: 22\n  expect: deny"))
    assert main(["test", EXAMPLE, str(cases), "-v"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 6 and all(line.startswith("ok   ") for line in out[:5]) and out[5] == "5 cases: 5 passed, 0 failed"


def test_a_wrong_deciding_rule_fails_the_case(tmp_path, capsys):
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES.replace("ingress_rule: sg-app/from-web", "ingress_rule: sg-app/other"))
    assert main(["test", EXAMPLE, str(cases)]) == 3
    assert "expected ingress_rule sg-app/other, got sg-app/from-web" in capsys.readouterr().out


@pytest.mark.parametrize("text,line,what", [
    ("- {src_ip: 10.0.0.1, dst_ip: 10.0.0.2, protocol: tcp, dst_port: 1, expect: allow, colour: red}\n", 1,
     "unknown key 'colour'"),
    ("- src_ip: 10.0.0.1\n  dst_ip: 10.0.0.2\n  protocol: tcp\n  dst_port: 1\n", 1, "needs expect"),
    ("- src_ip: 10.0.0.1\n  dst_ip: 10.0.0.2\n  protocol: tcp\n  dst_port: 1\n  expect: maybe\n", 5,
     "expect must be allow, deny or unmanaged"),
    ("- src_ip: 10.0.0.1\n  dst_ip: 10.0.0.2\n  protocol: tcp\n  dst_port: 1\n  expect: allow\n"
     "- src_ip: 10.0.0.999\n  dst_ip: 10.0.0.2\n  protocol: tcp\n  dst_port: 1\n  expect: allow\n", 6, "src_ip"),
    ("- src_ip: 10.0.0.1\n  dst_ip: 10.0.0.2\n  protocol: tcp\n  dst_port: eighty\n  expect: allow\n", 1,
     "is not a port number"),
    ("src_ip: 10.0.0.1\n", 1, "a cases file is a list"),
])
def test_bad_cases_name_the_file_and_line(tmp_path, capsys, text, line, what):
    cases = tmp_path / "cases.yaml"
    cases.write_text(text)
    assert main(["test", EXAMPLE, str(cases)]) == 2
    err = capsys.readouterr().err
    assert f"{cases}:{line}:" in err and what in err and "Traceback" not in err
