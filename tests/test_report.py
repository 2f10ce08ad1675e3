"""HTML reports: the facts of their command are on the page, the page is self-contained, and a real
headless Chromium renders it without asking the network for anything."""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from flowsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "traces" / "example.yaml"
FLOWLOG = ROOT / "traces" / "example-flowlog.csv"
PCAP = ROOT / "traces" / "example.pcap"


def report_of(tmp_path: Path, *argv: str) -> str:
    path = tmp_path / "report.html"
    assert main([*argv, "--report", str(path)]) == 0
    return path.read_text(encoding="utf-8")


def assert_self_contained(html: str) -> None:
    """Nothing to fetch: no script, no linked or embedded resource, no CSS import or url()."""
    assert "<script" not in html and "@import" not in html and "url(" not in html
    assert not re.search(r"\s(src|href|xlink:href)\s*=", html), re.search(r"\s(src|href|xlink:href)\s*=.{0,60}", html)


def test_replay_report_of_the_bundled_flow_log(tmp_path, capsys):
    html = report_of(tmp_path, "replay", str(EXAMPLE), str(FLOWLOG), "-q")
    assert_self_contained(html)
    assert html.count("<svg") == 2  # records over time, hits per rule
    for fact in ("10</b>records", "8</b>evaluated", "5</b>allowed", "2</b>by a live session", "3</b>denied",
                 "NODATA", "SKIPDATA", "sg-web/ssh-office", "default:inbound-deny", "87.5%",
                 "10.0.1.12:51001 -&gt; 10.0.3.10:3306 tcp", "no-smtp-out, https, ping, https-v6", "eni-db-1"):
        assert fact in html, fact


def test_replay_report_of_the_bundled_capture(tmp_path):
    html = report_of(tmp_path, "replay", str(EXAMPLE), str(PCAP), "-q")
    assert_self_contained(html)
    assert "Agreement with the recorded actions" not in html  # a capture records no action
    assert "Busiest allowed flows" in html and "<svg" in html


def test_a_report_of_an_empty_trace_says_so(tmp_path):
    trace = tmp_path / "empty.csv"
    trace.write_text("time,src_ip,dst_ip,protocol,src_port,dst_port\n")
    html = report_of(tmp_path, "replay", str(EXAMPLE), str(trace), "-q")
    assert "The trace holds no records" in html and "no time axis" in html
    assert "<svg" not in html  # no empty axes


def test_bench_reports(tmp_path, shared_data, capsys):
    html = report_of(tmp_path, "bench", str(EXAMPLE), "--flows", "20000", "--rounds", "1", "--threads", "2")
    assert_self_contained(html)
    assert "Throughput against threads" in html and "Throughput against rule count" in html
    assert html.count("<svg") == 2
    capsys.readouterr()
    cb = shared_data / "classbench"
    html = report_of(tmp_path, "bench", "--classbench", str(cb / "acl1_1k"), str(cb / "acl1_1k_trace"),
                     "--rounds", "1", "--threads", "1", "--json")
    result = json.loads(capsys.readouterr().out)
    assert [k for k, _ in result["by_rules"]] == [110, 220, 439, 878]
    assert "Beside the C classifiers" in html and "21.7" in html and f"{result['lookups_per_s'] / 1e6:.2f}" in html


# ---------------------------------------------------------------- a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-default-apps", "--no-first-run", "--disable-extensions",
         "--host-resolver-rules=MAP * ~NOTFOUND"]


def _isolated() -> list[str]:
    """Run the browser in a network namespace of its own where that is allowed (root): nothing can leave."""
    if shutil.which("unshare") and subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0:
        return ["unshare", "--net"]
    return []


def browse(page: Path, tmp_path: Path) -> tuple[str, bytes, list[str]]:
    """(the DOM Chromium built, a screenshot, the URLs the page itself asked the network for)."""
    if CHROMIUM is None:
        pytest.skip("headless Chromium not installed (Debian package `chromium`; .ci/run installs it)")
    netlog, shot = tmp_path / "net.json", tmp_path / "shot.png"
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    run = _isolated() + [CHROMIUM, *QUIET, *profile]
    dom = subprocess.run(run + [f"--log-net-log={netlog}", "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    subprocess.run(run + ["--window-size=1000,1400", f"--screenshot={shot}", page.as_uri()], capture_output=True,
                   timeout=120)
    log = json.loads(netlog.read_text() or "{}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    # the browser's own background requests have no origin; the page's would carry its file:// origin
    asked = [e["params"]["url"] for e in log["events"] if e["type"] == start and "url" in e.get("params", {})
             and e["params"].get("initiator") != "not an origin"]
    return dom, shot.read_bytes(), asked


def distinct_colours(png: bytes) -> int:
    """How many distinct byte values the decoded scanlines hold (1-2 for a blank page)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat)))


@pytest.mark.parametrize("command", ["replay-flowlog", "replay-empty", "bench", "diff", "space-diff"])
def test_chromium_renders_each_report_and_fetches_nothing(tmp_path, command):
    if command == "replay-flowlog":
        html = report_of(tmp_path, "replay", str(EXAMPLE), str(FLOWLOG), "-q")
    elif command == "replay-empty":
        (tmp_path / "empty.csv").write_text("time,src_ip,dst_ip,protocol,src_port,dst_port\n")
        html = report_of(tmp_path, "replay", str(EXAMPLE), str(tmp_path / "empty.csv"), "-q")
    elif command == "diff":
        html = report_of(tmp_path, "diff", str(EXAMPLE), str(ROOT / "traces" / "example-edited.yaml"), "--trace",
                         str(FLOWLOG), "-q")
    elif command == "space-diff":
        pytest.importorskip("dd.cudd")
        html = report_of(tmp_path, "diff", str(EXAMPLE), str(ROOT / "traces" / "example-edited.yaml"), "-q")
    else:
        html = report_of(tmp_path, "bench", str(EXAMPLE), "--flows", "20000", "--rounds", "1", "--threads", "1")
    dom, shot, asked = browse(tmp_path / "report.html", tmp_path)
    assert asked == []
    assert "flowsim" in dom and dom.count("<svg") == html.count("<svg")
    assert distinct_colours(shot) > 20


def test_the_browser_check_sees_a_page_that_fetches(tmp_path):
    """The detector itself: a page that loads an image from the network is caught."""
    page = tmp_path / "fetching.html"
    page.write_text('<!DOCTYPE html><html><body><p>x</p><img src="http://report-assets.invalid/logo.png"></body></html>')
    _, _, asked = browse(page, tmp_path)
    assert asked == ["http://report-assets.invalid/logo.png"]


def test_trace_diff_report(tmp_path, capsys):
    edited = ROOT / "traces" / "example-edited.yaml"
    html = report_of(tmp_path, "diff", str(EXAMPLE), str(edited), "--trace", str(FLOWLOG), "-q")
    assert_self_contained(html)
    assert html.count("<svg") == 1  # changed records over time
    for fact in ("2</b>change verdict", "1</b>opened (deny -&gt; allow)", "1</b>closed (allow -&gt; deny)",
                 "allow (- / sg-web/ssh-office)", "deny (- / sg-web/no-ssh-office)", "sg-db/mysql-from-app",
                 "198.51.100.7 -&gt; 10.0.1.10:22 tcp"):
        assert fact in html, fact


def test_header_space_diff_report(tmp_path):
    pytest.importorskip("dd.cudd")
    edited = ROOT / "traces" / "example-edited.yaml"
    html = report_of(tmp_path, "diff", str(EXAMPLE), str(edited), "-q")
    assert_self_contained(html)
    assert html.count("<svg") == 1  # the size of each change
    # the five changes of the README's diff: three opened towards eni-db-1, two closed towards the web ENIs
    for fact in ("eni-db-1", "eni-web-1", "eni-web-2", "sg-db/mysql-from-app", "sg-web/no-ssh-office",
                 "sg-web/ssh-office", "default:inbound-deny", "4,277,927,936", "33,685,504",
                 "203.0.113.0/24", f"only in {edited}</td><td>rules</td><td>sg-web/no-ssh-office"):
        assert fact in html, fact
    assert html.index("eni-db-1") < html.index("33,685,504")  # what opens comes before what closes


def test_a_header_space_diff_report_of_identical_configurations_says_so(tmp_path):
    pytest.importorskip("dd.cudd")
    html = report_of(tmp_path, "diff", str(EXAMPLE), str(EXAMPLE), "-q")
    assert "Identical: the two configurations decide every flow alike" in html and "<svg" not in html


def test_a_diff_report_of_identical_configurations_says_so(tmp_path):
    html = report_of(tmp_path, "diff", str(EXAMPLE), str(EXAMPLE), "--trace", str(FLOWLOG), "-q")
    assert "No record of the trace changes verdict" in html and "<svg" not in html


def test_lint_report_from_findings_and_quota_use(tmp_path):
    import flowsim
    from flowsim.config.validate import quota_usage
    from flowsim.report import lint_report

    config = flowsim.load_config(EXAMPLE)
    finding = {"kind": "shadowed", "severity": "warning", "rule": "sg-web/ssh-office", "by": ["sg-web/ssh"],
               "direction": "ingress", "enis": ["eni-web-1", "eni-web-2"], "message": "never decides anything",
               "example": {"src_ip": "203.0.113.9", "dst_ip": "10.0.1.10", "protocol": "tcp", "src_port": 1,
                           "dst_port": 22}}
    html = lint_report([finding], quota_usage(config), "example.yaml", incomplete=["sg-big ingress"])
    assert_self_contained(html)
    for fact in ("1</b>warning", "1</b>analysis incomplete", "sg-big ingress", "shadowed (1)", "sg-web/ssh-office",
                 "eni-web-1, eni-web-2", "203.0.113.9:1 -&gt; 10.0.1.10:22 tcp", "groups_per_eni", "65,536"):
        assert fact in html, fact
    assert html.count("<svg") == 1  # quota headroom
    empty = lint_report([], [], "example.yaml")
    assert "No findings" in empty and "<svg" not in empty


def test_lint_command_writes_its_report(tmp_path, capsys):
    pytest.importorskip("dd")
    html = report_of(tmp_path, "lint", str(EXAMPLE))
    assert_self_contained(html)
    assert "Quota headroom" in html and "flowsim lint report" in html
