"""Outputs never destroy anything (issue 17 §1): an output that is an input is refused before anything is read;
a failed, interrupted or terminated run leaves no partial file and whatever was at the target untouched;
an empty result still writes its file. In process through `flowsim.cli.main`, and as real subprocesses
receiving SIGTERM (and SIGINT) mid-run."""
from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from flowsim.cli import main
from flowsim.io.outputs import SIGTERM_STATUS, TEMP_SUFFIX, RunFiles

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "traces" / "example.yaml"
FLOWLOG = ROOT / "traces" / "example-flowlog.csv"
CAPTURE = ROOT / "traces" / "example.pcap"
HEADER = b"src_ip,dst_ip,protocol,src_port,dst_port\n"
ROWS = b"198.51.100.7,10.0.1.10,tcp,40001,22\n192.0.2.50,10.0.1.10,tcp,40002,22\n10.0.3.10,8.8.8.8,udp,40009,53\n"
PRECIOUS = b"precious: not written by flowsim\n"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(f".*{TEMP_SUFFIX}"))


def flows_csv(path: Path, copies: int = 1, bad_last: bool = False) -> Path:
    path.write_bytes(HEADER + ROWS * copies + (b"not-an-address,10.0.1.10,tcp,1,22\n" if bad_last else b""))
    return path


def precious(path: Path) -> Path:
    path.write_bytes(PRECIOUS)
    return path


# ================================================================ an output that is an input is refused
def _same_file_cases(tmp: Path) -> list[tuple[list, Path, Path]]:
    """(argv, the output named, the input it is) for every command that writes, each by path, link or hard link."""
    config = tmp / "config.yaml"
    config.write_bytes(EXAMPLE.read_bytes())
    flows = flows_csv(tmp / "big.csv")
    trace = tmp / "t.csv"
    trace.write_bytes(FLOWLOG.read_bytes())
    capture = tmp / "x.pcap"
    capture.write_bytes(CAPTURE.read_bytes())
    template = tmp / "t.yml"
    template.write_text("ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n")
    link = tmp / "link.csv"
    link.symlink_to(trace)
    hard = tmp / "hard.csv"
    os.link(flows, hard)
    rules, packets = tmp / "rules.txt", tmp / "trace.txt"
    rules.write_text("@0.0.0.0/0\t0.0.0.0/0\t0 : 65535\t0 : 65535\t0x00/0x00\t0x0000/0x0000\n")
    packets.write_text("0\t0\t0\t0\t0\t0\n")
    return [
        (["query", config, flows, "-o", flows], flows, flows),
        (["query", config, flows, "-o", hard], hard, flows),
        (["query", config, flows, "-o", config], config, config),
        (["replay", config, trace, "-o", trace], trace, trace),
        (["replay", config, trace, "-o", config], config, config),
        (["replay", config, trace, "-o", link], link, trace),
        (["replay", config, capture, "--summary", capture], capture, capture),
        (["replay", config, trace, "--summary", tmp / "." / "t.csv"], tmp / "." / "t.csv", trace),
        (["synth", config, "-n", 10, "-o", config], config, config),
        (["import", "ros", template, "-o", template], template, template),
        (["import", "ros", tmp, "-o", template], template, template),  # picked from the directory named
        (["bench", "--classbench", rules, packets, "--rounds", 1, "--matches", packets], packets, packets),
    ]


@pytest.mark.parametrize("case", range(12))
def test_an_output_that_is_an_input_is_refused_before_reading_and_names_both(tmp_path, capsys, case):
    argv, output, victim = _same_file_cases(tmp_path)[case]
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert f"{output}: " in err and str(victim) in err and "refusing to write over it" in err
    assert err.count("error:") == 1  # nothing was read: no other complaint
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert not temporaries(tmp_path)


def test_refused_before_the_configuration_is_read(tmp_path, capsys):
    config = tmp_path / "broken.yaml"
    config.write_text("security_groups: [this is not: valid\n")
    trace = flows_csv(tmp_path / "t.csv")
    code, _, err = run(capsys, "replay", config, trace, "-o", trace)
    assert code == 2 and err.splitlines() == [f"flowsim: error: {trace}: -o: is the same file as the trace {trace}: "
                                              "refusing to write over it"]
    assert trace.read_bytes() == HEADER + ROWS


def test_two_outputs_of_one_run_cannot_be_the_same_file(tmp_path, capsys):
    target = tmp_path / "o.csv"
    code, _, err = run(capsys, "replay", EXAMPLE, FLOWLOG, "-o", target, "--summary", tmp_path / "link-to-o")
    assert code == 0  # different files
    (tmp_path / "link-to-o").unlink()
    (tmp_path / "link-to-o").symlink_to(target)
    before = target.read_bytes()
    code, _, err = run(capsys, "replay", EXAMPLE, FLOWLOG, "-o", target, "--summary", tmp_path / "link-to-o")
    assert code == 2 and "link-to-o: --summary: is the same file as the output of -o" in err and str(target) in err
    assert target.read_bytes() == before


def test_standard_output_and_devices_are_not_compared(tmp_path, capsys):
    flows = flows_csv(tmp_path / "f.csv")
    assert run(capsys, "query", EXAMPLE, flows, "-o", "-", "-q")[0] == 0
    assert run(capsys, "replay", EXAMPLE, FLOWLOG, "-o", os.devnull, "--summary", "-", "-q")[0] == 0
    assert os.path.exists(os.devnull) and not Path(os.devnull).is_file()


# ================================================================ a failed run leaves the target as it was
def test_a_failed_query_leaves_an_existing_target_untouched(tmp_path, capsys):
    target = precious(tmp_path / "important.yaml")
    code, _, err = run(capsys, "query", EXAMPLE, flows_csv(tmp_path / "bad.csv", bad_last=True), "-o", target)
    assert code == 2 and "bad.csv:5" in err
    assert target.read_bytes() == PRECIOUS and not temporaries(tmp_path)


def test_a_query_failing_after_output_was_written_leaves_no_partial_file(tmp_path, capsys):
    # more than one 4 MiB CSV block: the first is evaluated and written before the bad last row is met
    flows = flows_csv(tmp_path / "big.csv", copies=60_000, bad_last=True)
    for name in ("out.csv", "out.parquet"):
        target = precious(tmp_path / name)
        code, _, err = run(capsys, "query", EXAMPLE, flows, "-o", target, "-q")
        assert code == 2 and f"big.csv:{3 * 60_000 + 2}" in err
        assert target.read_bytes() == PRECIOUS and not temporaries(tmp_path)
    code, _, _ = run(capsys, "query", EXAMPLE, flows, "-o", tmp_path / "new.csv", "-q")
    assert code == 2 and not (tmp_path / "new.csv").exists()


def test_a_replay_failing_midway_leaves_the_targets_untouched(tmp_path, capsys):
    # a gzip trace cut short: the records before the cut are replayed and written, then reading fails
    whole = gzip.compress(HEADER + ROWS * 200_000)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    out, summary = precious(tmp_path / "v.csv"), precious(tmp_path / "s.json")
    code, _, err = run(capsys, "replay", EXAMPLE, cut, "-o", out, "--summary", summary, "-q")
    assert code == 2 and "cut.csv.gz: cannot read trace file" in err
    assert out.read_bytes() == summary.read_bytes() == PRECIOUS and not temporaries(tmp_path)


def test_a_successful_run_replaces_the_target_keeping_its_permissions_and_links(tmp_path, capsys):
    target = precious(tmp_path / "out.csv")
    target.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert run(capsys, "query", EXAMPLE, flows_csv(tmp_path / "f.csv"), "-o", link, "-q")[0] == 0
    assert link.is_symlink() and pacsv.read_csv(target).num_rows == 3
    assert target.stat().st_mode & 0o777 == 0o640 and not temporaries(tmp_path)


def test_run_files_commit_only_when_the_block_succeeds(tmp_path):
    target = precious(tmp_path / "out.txt")
    with pytest.raises(KeyboardInterrupt):
        with RunFiles([], [("-o", target)]) as files:
            Path(files["-o"].path).write_text("partial")
            assert temporaries(tmp_path) == [Path(files["-o"].path)]
            raise KeyboardInterrupt
    assert target.read_bytes() == PRECIOUS and not temporaries(tmp_path)
    with RunFiles([], [("-o", target)]) as files:
        Path(files["-o"].path).write_text("whole")
    assert target.read_text() == "whole" and not temporaries(tmp_path)


def test_an_unwritable_output_is_reported_before_the_run(tmp_path, capsys):
    code, _, err = run(capsys, "query", EXAMPLE, flows_csv(tmp_path / "f.csv"), "-o", tmp_path)
    assert code == 2 and f"{tmp_path}: -o: cannot write output: it is a directory" in err


# ================================================================ empty results still write their file
def test_an_empty_query_writes_a_header_only_csv_and_a_zero_row_parquet_with_the_full_schema(tmp_path, capsys):
    empty, some = flows_csv(tmp_path / "empty.csv", copies=0), flows_csv(tmp_path / "some.csv")
    assert run(capsys, "query", EXAMPLE, some, "-o", tmp_path / "some.csv.out", "-q")[0] == 0
    assert run(capsys, "query", EXAMPLE, empty, "-o", tmp_path / "empty.csv.out", "-q")[0] == 0
    header = (tmp_path / "some.csv.out").read_text().splitlines()[0]
    assert (tmp_path / "empty.csv.out").read_text().splitlines() == [header]
    assert run(capsys, "query", EXAMPLE, some, "-o", tmp_path / "some.parquet", "-q")[0] == 0
    assert run(capsys, "query", EXAMPLE, empty, "-o", tmp_path / "empty.parquet", "-q")[0] == 0
    full, none = pq.read_table(tmp_path / "some.parquet"), pq.read_table(tmp_path / "empty.parquet")
    assert none.num_rows == 0 and none.schema.names == full.schema.names
    for name in ("verdict", "egress_rule", "ingress_rule"):
        assert none.schema.field(name).type == full.schema.field(name).type


def test_a_replay_with_every_record_skipped_still_writes_its_file(tmp_path, capsys):
    lines = FLOWLOG.read_text().splitlines()
    nodata = tmp_path / "nodata.csv"
    nodata.write_text("\n".join([lines[0]] + [line.replace(",OK,", ",NODATA,") for line in lines[1:4]]) + "\n")
    for suffix in ("csv", "parquet"):
        full, none = tmp_path / f"full.{suffix}", tmp_path / f"none.{suffix}"
        assert run(capsys, "replay", EXAMPLE, FLOWLOG, "-o", full, "-q")[0] == 0
        code, _, _ = run(capsys, "replay", EXAMPLE, nodata, "-o", none, "--summary", tmp_path / "s.json", "-q")
        assert code == 0 and '"NODATA": 3' in (tmp_path / "s.json").read_text()
        read = pq.read_table if suffix == "parquet" else pacsv.read_csv
        if suffix == "csv":
            assert none.read_text().splitlines() == [full.read_text().splitlines()[0]]
        else:
            assert read(none).num_rows == 0 and read(none).schema == read(full).schema
    header_only = tmp_path / "header.pcap"
    header_only.write_bytes(CAPTURE.read_bytes()[:24])
    assert run(capsys, "replay", EXAMPLE, header_only, "-o", tmp_path / "cap.csv", "-q")[0] == 0
    assert (tmp_path / "cap.csv").read_text().startswith('"record","time","src_ip","dst_ip"')


def test_synth_of_zero_flows_writes_its_columns(tmp_path, capsys):
    assert run(capsys, "synth", EXAMPLE, "-n", 0, "-o", tmp_path / "z.parquet")[0] == 0
    assert pq.read_table(tmp_path / "z.parquet").schema.names == ["src_ip", "dst_ip", "protocol", "src_port", "dst_port"]


# ================================================================ SIGTERM (and SIGINT) mid-run
class Feeder:
    """Writes flow rows into a pipe until stopped: the run reading it is still going when the signal comes."""

    def __init__(self, sink, header: bytes = HEADER):
        self.sink, self.stop = sink, threading.Event()
        self.thread = threading.Thread(target=self._feed, args=(header,), daemon=True)
        self.thread.start()

    def _feed(self, header: bytes) -> None:
        block = ROWS * 20_000
        try:
            self.sink.write(header)
            while not self.stop.is_set():
                self.sink.write(block)
        except (BrokenPipeError, ValueError, OSError):
            pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def wait_for_output(folder: Path, target: Path, ended, seconds: float = 120) -> None:
    """Until the run has written output (to its temporary file, or, as flowsim once did, to the target);
    fails at once if the run ``ended()`` first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.stat().st_size > 0 for p in temporaries(folder)) or target.read_bytes() != PRECIOUS:
            return
        if ended():
            raise AssertionError("the run ended before writing any output")
        time.sleep(0.05)
    raise AssertionError(f"no output after {seconds}s")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job's child inherits SIGINT ignored


@pytest.mark.parametrize("command", ["query", "replay"])
@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, SIGTERM_STATUS), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_run_leaves_no_partial_output_in_a_real_process(tmp_path, command, signum, status):
    target = precious(tmp_path / "out.csv")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "flowsim", command, str(EXAMPLE), "-", "-o", str(target), "-q"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                            preexec_fn=_default_sigint)
    feeder = Feeder(proc.stdin)
    try:
        try:
            wait_for_output(tmp_path, target, lambda: proc.poll() is not None)
        except AssertionError:
            proc.kill()
            raise AssertionError(proc.communicate(timeout=30)[1].decode()) from None
        proc.send_signal(signum)
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        feeder.close()
    err = proc.stderr.read().decode()
    assert code == status, err
    assert "Traceback" not in err and ("terminated" if signum == signal.SIGTERM else "interrupted") in err
    assert target.read_bytes() == PRECIOUS and not temporaries(tmp_path)


def test_sigterm_mid_run_in_process(tmp_path, capsys, monkeypatch):
    class Unhandled(Exception):
        """What SIGTERM raises if flowsim does not handle it (so that pytest survives)."""

    def unhandled(signum, frame):
        raise Unhandled

    read, write = os.pipe()
    monkeypatch.setattr(sys, "stdin", os.fdopen(read, "r"))
    target = precious(tmp_path / "out.parquet")
    feeder, ended = Feeder(os.fdopen(write, "wb")), threading.Event()

    def terminate() -> None:
        wait_for_output(tmp_path, target, ended.is_set)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate, daemon=True)
    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        killer.start()
        code = main(["query", str(EXAMPLE), "-", "-o", str(target), "-q"])
    finally:
        ended.set()
        killer.join(150)
        sys.stdin.close()  # the feeder's next write fails: it stops
        feeder.close()
        assert signal.getsignal(signal.SIGTERM) is unhandled  # flowsim put back what it found
        signal.signal(signal.SIGTERM, previous)
    assert code == SIGTERM_STATUS and "terminated" in capsys.readouterr().err
    assert target.read_bytes() == PRECIOUS and not temporaries(tmp_path)
