"""Fuzzing every reader: random bytes and mutated real files through the command line, in process.

Whatever the bytes, a command ends with exit 0 or 2 (bad input, named), never an internal error or a
traceback, and each input is answered within a bounded time. Mutations start from the bundled examples
and the real third-party files under ../shared/data/real (skipped, with the reason, where a clone lacks
them); the whole set runs in well under a minute.
"""
from __future__ import annotations

import contextlib
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
EXAMPLE = ROOT / "traces" / "example.yaml"
SECONDS = 30  # per input, however hostile: far past what any of these small files needs
FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])  # capsys is read out per input


class Hang(Exception):
    """An input took longer than SECONDS."""


@contextlib.contextmanager
def bounded():
    def alarm(signum, frame):
        raise Hang(f"no answer within {SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def answer(capsys, argv: list[str]) -> int:
    with bounded():
        code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2), (code, err[-2000:])
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    return code


edits = st.lists(st.tuples(st.sampled_from(["flip", "delete", "insert", "repeat", "truncate", "swap"]),
                           st.floats(0, 1), st.integers(1, 64), st.binary(min_size=1, max_size=16)),
                 min_size=1, max_size=6)


def mutate(data: bytes, changes) -> bytes:
    """Byte-level damage of the kinds real files suffer: flipped bits, lost, doubled or foreign spans, cuts."""
    out = bytearray(data)
    for kind, where, size, junk in changes:
        if not out:
            out += junk
            continue
        at = min(len(out) - 1, int(where * len(out)))
        if kind == "flip":
            out[at] ^= 1 << (size % 8)
        elif kind == "delete":
            del out[at:at + size]
        elif kind == "insert":
            out[at:at] = junk
        elif kind == "repeat":
            out[at:at] = out[at:at + size]
        elif kind == "truncate":
            del out[at:]
        else:
            out[at:at + len(junk)] = junk
    return bytes(out)


def seeds(*patterns: str, limit: int = 64 << 10) -> list[tuple[str, bytes]]:
    """(suffix, the first `limit` bytes) of each bundled or real file matching the patterns."""
    found = []
    for pattern in patterns:
        base = ROOT if pattern.startswith("traces/") else REAL
        found += [(p.suffix, p.read_bytes()[:limit]) for p in sorted(base.glob(pattern)) if p.is_file()]
    return found


def need(files: list) -> list:
    if not files:
        pytest.skip(f"no seed files: third-party data not found at {REAL}")
    return files


CONFIGS = seeds("traces/example.yaml") + seeds("alicloud-sg/api-json/*.json", "aws-sg/json/*.json")
IMPORTS = {"alibaba-api": seeds("alicloud-sg/api-json/*.json"),
           "terraform": seeds("alicloud-sg/terraform/*/*.tf"),
           "ros": seeds("alicloud-sg/ros/*.yml")}
TRACES = seeds("traces/example.pcap", "traces/example-flowlog.csv", "traces/example-flows.csv") + \
    seeds("pcap/tcpreplay_test.pcap", "pcap/zeek_wikipedia.pcap", "pcap/chrissanders_http_espn.pcapng",
          "flowlogs/aws/*.log", limit=24 << 10)


def _run_on(capsys, suffix: str, data: bytes, argv) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        return answer(capsys, argv(str(path), folder))


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".yaml", ".json", ""]))
def test_configuration_loader_on_random_bytes(capsys, data, suffix):
    _run_on(capsys, suffix, data, lambda path, _: ["validate", path])


@FUZZ
@given(seed=st.integers(0, 10**6), changes=edits)
def test_configuration_loader_on_mutated_files(capsys, seed, changes):
    suffix, data = CONFIGS[seed % len(CONFIGS)]
    _run_on(capsys, suffix, mutate(data, changes), lambda path, _: ["validate", path])


@pytest.mark.parametrize("fmt", sorted(IMPORTS))
def test_importers_on_mutated_real_files(capsys, fmt):
    files = need(IMPORTS[fmt])

    @FUZZ
    @given(seed=st.integers(0, 10**6), changes=edits)
    def run(seed, changes):
        suffix, data = files[seed % len(files)]
        _run_on(capsys, suffix, mutate(data, changes),
                lambda path, folder: ["import", fmt, path, "-o", str(Path(folder) / "out.yaml")])

    run()


@FUZZ
@given(data=st.binary(max_size=4096), fmt=st.sampled_from(["import alibaba-api", "import ros", "import terraform"]))
def test_importers_on_random_bytes(capsys, data, fmt):
    _run_on(capsys, ".json", data, lambda path, folder: [*fmt.split(), path, "-o", str(Path(folder) / "out.yaml")])


@FUZZ
@given(seed=st.integers(0, 10**6), changes=edits)
def test_trace_readers_on_mutated_traces(capsys, seed, changes):
    suffix, data = TRACES[seed % len(TRACES)]
    _run_on(capsys, suffix, mutate(data, changes), lambda path, _: ["replay", str(EXAMPLE), path, "-q"])


@FUZZ
@given(data=st.binary(max_size=4096), fmt=st.sampled_from([None, "native", "alibaba-flowlog", "aws-flowlog", "pcap",
                                                          "pcapng"]))
def test_trace_readers_on_random_bytes(capsys, data, fmt):
    _run_on(capsys, "", data,
            lambda path, _: ["replay", str(EXAMPLE), path, "-q", *(["--format", fmt] if fmt else [])])


@FUZZ
@given(seed=st.integers(0, 10**6), changes=edits)
def test_query_on_mutated_flow_tables(capsys, seed, changes):
    data = (ROOT / "traces" / "example-flows.csv").read_bytes()
    _run_on(capsys, ".csv", mutate(data, changes),
            lambda path, folder: ["query", str(EXAMPLE), path, "-o", str(Path(folder) / "out.csv")])
