"""`flowsim bench`: JSON fields, matches equal to brute force, clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from flowsim.cli import main
from flowsim.io.classbench import read_rules, read_trace
from flowsim.testing.oracles import linear_scan

EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "example.yaml"


def test_bench_config_json(capsys):
    assert main(["bench", str(EXAMPLE), "--flows", "20000", "--rounds", "1", "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"rules", "flows", "build_s", "lookups_per_s", "threads"} <= set(result)
    assert result["rules"] == 10 and result["flows"] == 20000 and result["threads"] == 1 and result["lookups_per_s"] > 0


def test_bench_classbench_matches_are_the_first_match(shared_data, tmp_path, capsys):
    rules, trace = shared_data / "classbench" / "fw1_1k", shared_data / "classbench" / "fw1_1k_trace"
    out = tmp_path / "matches.txt"
    assert main(["bench", "--classbench", str(rules), str(trace), "--rounds", "1", "--json", "--matches", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["packets"] == 7610 and result["rules"] == 761
    lo, hi = read_rules(rules)
    expected = linear_scan(lo, hi, read_trace(trace))
    assert np.array_equal(np.loadtxt(out, dtype=np.int64), expected)


def test_bench_needs_a_workload(capsys):
    assert main(["bench"]) == 2
    assert "needs CONFIG" in capsys.readouterr().err


def test_bench_bad_classbench_file(tmp_path, capsys):
    bad = tmp_path / "rules"
    bad.write_text("@10.0.0.0/8\tnot a rule\n")
    assert main(["bench", "--classbench", str(bad), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1" in err and "Traceback" not in err
