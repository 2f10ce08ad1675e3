"""query and replay read their input alike (issue 17 §4): a file, `-` (standard input), a pipe, a FIFO, gzip by
content (with or without a .gz name), for every format each reads. Each way must give exactly what the plain
file gives: the same per-record output and the same summary."""
from __future__ import annotations

import gzip
import io
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from flowsim.cli import main
from flowsim.errors import InputError
from flowsim.io.inputs import Input

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "traces" / "example.yaml"
AWS_LOG = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"
    "2 123456789010 eni-db-1 10.0.3.10 100.100.2.136 40008 53 17 1 60 1764547202 1764547207 ACCEPT OK\n"
    "2 123456789010 eni-db-1 100.100.2.136 10.0.3.10 53 40008 17 1 60 1764547202 1764547207 ACCEPT OK\n"
    "2 123456789010 eni-web-1 198.51.100.7 10.0.1.10 40001 22 6 3 180 1764547210 1764547215 ACCEPT OK\n"
    "2 123456789010 eni-web-1 192.0.2.50 10.0.1.10 40002 22 6 1 60 1764547210 1764547215 REJECT OK\n"
    "2 123456789010 eni-db-1 - - - - - - - 1764547220 1764547280 - NODATA\n"
)
WAYS = ["stdin", "pipe", "fifo", "gzip", "gzip-unnamed", "gzip-stdin", "gzip-pipe", "plain-named-gz"]


def trace_bytes(kind: str, tmp: Path, shared: Path | None = None) -> bytes:
    """The content of a trace of each format replay reads."""
    if kind == "native-csv":
        return (ROOT / "traces" / "example-flows.csv").read_bytes()
    if kind == "native-parquet":
        sink = io.BytesIO()
        pq.write_table(pacsv.read_csv(ROOT / "traces" / "example-flows.csv"), sink)
        return sink.getvalue()
    if kind == "alibaba-csv":
        return (ROOT / "traces" / "example-flowlog.csv").read_bytes()
    if kind == "alibaba-json":
        rows = pacsv.read_csv(ROOT / "traces" / "example-flowlog.csv").to_pylist()
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    if kind == "aws":
        return AWS_LOG.encode()
    if kind == "pcap":
        return (ROOT / "traces" / "example.pcap").read_bytes()
    assert kind == "pcapng"
    return (shared / "real" / "pcap" / "chrissanders_http_espn.pcapng").read_bytes()


class _Feed:
    """A thread writing bytes into a pipe or FIFO the command reads."""

    def __init__(self, open_sink, data: bytes):
        self.thread = threading.Thread(target=self._run, args=(open_sink, data), daemon=True)
        self.thread.start()

    @staticmethod
    def _run(open_sink, data: bytes) -> None:
        try:
            with open_sink() as sink:
                sink.write(data)
        except OSError:  # the reader went away
            pass


def _release(path: Path, done: threading.Event) -> None:
    while not done.wait(1.0):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader waiting
            pass


@contextmanager
def served(way: str, data: bytes, tmp: Path, monkeypatch, name: str) -> Iterator[str]:
    """The argument naming `data` served `way`."""
    if way.startswith("gzip"):
        data = gzip.compress(data)
    if way in ("stdin", "gzip-stdin", "pipe", "gzip-pipe"):
        read, write = os.pipe()
        feed = _Feed(lambda: os.fdopen(write, "wb"), data)
        reader = os.fdopen(read, "r")
        if way.endswith("stdin"):
            monkeypatch.setattr("sys.stdin", reader)
        try:
            yield "-" if way.endswith("stdin") else f"/dev/fd/{read}"
        finally:
            reader.close()  # a feed still writing stops
            feed.thread.join(30)
        return
    if way == "fifo":
        path = tmp / f"{name}.fifo"
        os.mkfifo(path)
        done = threading.Event()

        def unblocking_writer():
            # a reader that opens the FIFO again (flowsim once did) waits for a writer: after the data,
            # one comes by, empty, now and then, so that such a run ends (and fails) instead of hanging
            writer = open(path, "wb")
            threading.Thread(target=_release, args=(path, done), daemon=True).start()
            return writer

        feed = _Feed(unblocking_writer, data)
        try:
            yield str(path)
        finally:
            done.set()
            if feed.thread.is_alive():  # nobody opened the FIFO: let the feed's open return
                try:
                    os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            feed.thread.join(30)
        return
    path = tmp / {"gzip": f"{name}.gz", "gzip-unnamed": f"{name}.bin", "plain-named-gz": f"{name}.gz"}[way]
    path.write_bytes(data)
    yield str(path)


def replayed(tmp: Path, trace: str, capsys, tag: str) -> tuple[bytes, dict]:
    out, summary = tmp / f"{tag}.csv", tmp / f"{tag}.json"
    code = main(["replay", str(EXAMPLE), trace, "-o", str(out), "--summary", str(summary), "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    facts = json.loads(summary.read_text())
    for varying in ("trace", "seconds", "records_per_s"):
        facts.pop(varying)
    return out.read_bytes(), facts


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("kind", ["native-csv", "native-parquet", "alibaba-csv", "alibaba-json", "aws", "pcap", "pcapng"])
def test_replay_reads_every_way_of_every_format_as_the_plain_file(tmp_path, capsys, monkeypatch, request, kind, way):
    shared = request.getfixturevalue("shared_data") if kind == "pcapng" else None
    data = trace_bytes(kind, tmp_path, shared)
    plain = tmp_path / f"{kind}.trace"
    plain.write_bytes(data)
    expected = replayed(tmp_path, str(plain), capsys, "plain")
    assert expected[1]["records"] > 0
    with served(way, data, tmp_path, monkeypatch, kind) as trace:
        assert replayed(tmp_path, trace, capsys, way) == expected


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("kind", ["native-csv", "native-parquet"])
def test_query_reads_every_way_as_the_plain_file(tmp_path, capsys, monkeypatch, kind, way):
    data = trace_bytes(kind, tmp_path)
    plain = tmp_path / f"{kind}.flows"
    plain.write_bytes(data)
    assert main(["query", str(EXAMPLE), str(plain), "-o", str(tmp_path / "plain.csv"), "-q"]) == 0
    with served(way, data, tmp_path, monkeypatch, kind) as flows:
        code = main(["query", str(EXAMPLE), flows, "-o", str(tmp_path / "way.csv"), "-q"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "way.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()


def test_what_is_not_a_readable_input_is_named(tmp_path, capsys):
    code = main(["replay", str(EXAMPLE), str(tmp_path)])  # a directory is a dataset (docs/commands.md), here an empty one
    assert code == 2 and f"{tmp_path}: the trace directory holds no files" in capsys.readouterr().err
    code = main(["query", str(EXAMPLE), str(tmp_path / "*.csv")])
    assert code == 2 and "*.csv: no file matches this flow table pattern" in capsys.readouterr().err
    code = main(["query", str(EXAMPLE), str(tmp_path / "missing.csv")])
    assert code == 2 and "missing.csv: no such flow table" in capsys.readouterr().err
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b" + b"not really gzip")
    for command in ("query", "replay"):
        assert main([command, str(EXAMPLE), str(bad)]) == 2
        err = capsys.readouterr().err
        assert f"{bad}: cannot read" in err and "Traceback" not in err


def test_a_stream_is_read_once_and_its_head_is_not_lost(tmp_path):
    read, write = os.pipe()
    feed = _Feed(lambda: os.fdopen(write, "wb"), b"x" * 100_000 + b"end")
    source = Input(f"/dev/fd/{read}")
    assert source.head == b"x" * len(source.head) and not source.regular
    with source.open() as stream:
        assert stream.read() == b"x" * 100_000 + b"end"
    with pytest.raises(InputError, match="can be read only once"):
        source.open()
    os.close(read)
    feed.thread.join(30)
