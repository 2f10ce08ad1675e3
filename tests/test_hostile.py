"""Hostile and absurd input: every case exits 2 with a message naming the file or the flag, never an
internal error, never a traceback; and nothing grows without bound."""
from __future__ import annotations

import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flowsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "traces" / "example.yaml")
HEADER = "src_ip,dst_ip,protocol,src_port,dst_port"


def run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    return code, err


@pytest.mark.parametrize("command", ["query", "replay"])
def test_a_column_named_twice(tmp_path, capsys, command):
    path = tmp_path / "dup.csv"
    path.write_text("time," + HEADER + ",dst_port\n1,10.0.1.10,10.0.2.10,tcp,1,8080,8080\n")
    code, err = run(capsys, command, EXAMPLE, str(path))
    assert code == 2 and "dup.csv" in err and "dst_port appears more than once" in err


@pytest.mark.parametrize("command", ["query", "replay"])
def test_a_list_typed_parquet_column(tmp_path, capsys, command):
    path = tmp_path / "list.parquet"
    pq.write_table(pa.table({"time": [1.0], "src_ip": [["10.0.1.10"]], "dst_ip": ["10.0.2.10"], "protocol": ["tcp"],
                             "src_port": [1], "dst_port": [80]}), path)
    code, err = run(capsys, command, EXAMPLE, str(path))
    assert code == 2 and "list.parquet" in err and "src_ip holds list" in err


def test_rows_with_the_wrong_number_of_fields(tmp_path, capsys):
    path = tmp_path / "fields.csv"
    path.write_text(f"{HEADER}\n10.0.1.10,10.0.2.10,tcp,1,8080\n10.0.1.10,10.0.2.10,tcp,1,8080,9\n"
                    "10.0.1.10,10.0.2.10,tcp,1,8080\n10.0.1.10,10.0.2.10\n")
    code, err = run(capsys, "query", EXAMPLE, str(path), "-o", str(tmp_path / "out.csv"))
    assert code == 2 and f"{path}:3: expected 5 fields, found 6" in err
    assert not (tmp_path / "out.csv").exists()
    code, err = run(capsys, "query", EXAMPLE, str(path), "-o", str(tmp_path / "out.csv"), "--skip-invalid")
    assert code == 0 and "2 flows evaluated" in err and "2 invalid rows skipped" in err
    assert len((tmp_path / "out.csv").read_text().splitlines()) == 3


def test_a_value_error_after_a_skipped_line_keeps_its_line(tmp_path, capsys):
    path = tmp_path / "v.csv"
    path.write_text(f"{HEADER}\n10.0.1.10,10.0.2.10,tcp,1,8080\n10.0.1.999,10.0.2.10,tcp,1,8080\n")
    code, err = run(capsys, "query", EXAMPLE, str(path))
    assert code == 2 and f"{path}:3:" in err and "src_ip" in err


@pytest.mark.parametrize("command", [["validate"], ["import", "alibaba-api"], ["import", "ros"], ["import", "terraform"]])
def test_json_nested_thousands_of_levels_deep(tmp_path, capsys, command):
    path = tmp_path / "deep.json"
    path.write_text("[" * 5000 + "]" * 5000)
    code, err = run(capsys, *command, str(path))
    assert code == 2 and "deep.json" in err and "nested" in err


def test_a_ros_template_nested_thousands_of_levels_deep(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text("ROSTemplateFormatVersion: '2015-09-01'\nResources:\n  x:\n"
                    + "\n".join("    " + "  " * i + f"k{i}:" for i in range(1500)) + " 1\n")
    code, err = run(capsys, "import", "ros", str(path))
    assert code == 2 and "deep.yaml" in err and "nested more than" in err


@pytest.mark.parametrize("command", [["validate"], ["import", "alibaba-api"]])
def test_a_five_thousand_digit_number(tmp_path, capsys, command):
    path = tmp_path / "big.json"
    path.write_text('{"security_groups": {"sg-a": {"rules": [{"direction": "ingress", "priority": ' + "9" * 5000 + "}]}}}")
    code, err = run(capsys, *command, str(path))
    assert code == 2 and "big.json" in err and "4,300 digits" in err


@pytest.mark.parametrize("argv,flag", [
    (["synth", EXAMPLE, "-n", "1e14", "-o", "x.csv"], "-n"),
    (["synth", EXAMPLE, "-n", "100000000000000", "-o", "x.csv"], "-n"),
    (["synth", EXAMPLE, "-n", "10", "--seed", "-1", "-o", "x.csv"], "--seed"),
    (["synth", EXAMPLE, "-n", "2.5", "-o", "x.csv"], "-n"),
    (["bench", EXAMPLE, "--flows", "2e9"], "--flows"),
    (["bench", EXAMPLE, "--rounds", "0"], "--rounds"),
])
def test_absurd_counts_are_refused_naming_the_flag(tmp_path, capsys, monkeypatch, argv, flag):
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, *argv)
    assert code == 2 and f"argument {flag}" in err
    assert not (tmp_path / "x.csv").exists()


def test_counts_may_be_written_with_an_exponent(tmp_path, capsys):
    out = tmp_path / "x.csv"
    code, _ = run(capsys, "synth", EXAMPLE, "-n", "1e3", "-o", str(out))
    assert code == 0 and len(out.read_text().splitlines()) == 1001


def test_a_corrupt_record_length_in_a_capture_ends_the_replay_with_a_summary(tmp_path, capsys):
    pcap = (ROOT / "traces" / "example.pcap").read_bytes()
    pos, starts = 24, []
    while pos < len(pcap):
        starts.append(pos)
        pos += 16 + struct.unpack("<I", pcap[pos + 8:pos + 12])[0]
    bad = bytearray(pcap)
    bad[starts[5] + 8:starts[5] + 12] = struct.pack("<I", 0x7FFFFFFF)
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bytes(bad))
    code = main(["replay", EXAMPLE, str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "6 records" in out and "evaluated 5" in out
    assert f"read up to byte {starts[5]}; the rest of the file is not replayed" in out
