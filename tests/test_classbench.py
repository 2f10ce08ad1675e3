"""ClassBench filter-set and trace readers."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from flowsim.errors import InputError
from flowsim.io.classbench import read_rules, read_trace

DATA = Path(__file__).parents[1].parent / "shared" / "data" / "classbench"


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_bytes(text.encode())
    return p


RULES = (
    "@237.73.3.4/32\t67.236.63.210/32\t0 : 65535\t1711 : 1711\t0x06/0xFF\t0x0000/0x0200\t\n"
    "@10.0.0.0/8\t0.0.0.0/0\t1024 : 65535\t80 : 80\t0x00/0x00\t0x1000/0x1000\n"
    "\n"
    "@192.168.1.77/24\t1.2.3.4/31\t53 : 53\t0 : 65535\t0x11/0xFF\n"
)


def test_rules_parse(tmp_path):
    lo, hi = read_rules(_write(tmp_path, "r", RULES))
    assert lo.dtype == np.uint32 and hi.dtype == np.uint32 and lo.shape == (3, 5)
    ip = lambda s: int.from_bytes(bytes(int(x) for x in s.split(".")), "big")  # noqa: E731
    assert lo[0].tolist() == [ip("237.73.3.4"), ip("67.236.63.210"), 0, 1711, 6]
    assert hi[0].tolist() == [ip("237.73.3.4"), ip("67.236.63.210"), 65535, 1711, 6]
    # /8 and /0 prefixes, protocol wildcard (mask 0x00) -> 0..255
    assert lo[1].tolist() == [ip("10.0.0.0"), 0, 1024, 80, 0]
    assert hi[1].tolist() == [ip("10.255.255.255"), 0xFFFFFFFF, 65535, 80, 255]
    # host bits beyond the prefix are masked off; flags field optional
    assert lo[2].tolist() == [ip("192.168.1.0"), ip("1.2.3.4"), 53, 0, 17]
    assert hi[2].tolist() == [ip("192.168.1.255"), ip("1.2.3.5"), 53, 65535, 17]


def test_rules_crlf_and_no_trailing_newline(tmp_path):
    text = "@1.2.3.4/32\t5.6.7.8/32\t1 : 2\t3 : 4\t0x06/0xFF\t0x0000/0x0000\r\n" \
           "@1.2.3.4/32\t5.6.7.8/32\t1 : 2\t3 : 4\t0x06/0xFF"
    lo, hi = read_rules(_write(tmp_path, "r", text))
    assert lo.shape == (2, 5)


@pytest.mark.parametrize("line, what", [
    ("1.2.3.4/32\t5.6.7.8/32\t1 : 2\t3 : 4\t0x06/0xFF", "'@'"),
    ("@1.2.3.400/32\t5.6.7.8/32\t1 : 2\t3 : 4\t0x06/0xFF", "source"),
    ("@1.2.3.4/33\t5.6.7.8/32\t1 : 2\t3 : 4\t0x06/0xFF", "source"),
    ("@1.2.3.4/32\t5.6.7/32\t1 : 2\t3 : 4\t0x06/0xFF", "destination"),
    ("@1.2.3.4/32\t5.6.7.8/32\t3 : 2\t3 : 4\t0x06/0xFF", "source port"),
    ("@1.2.3.4/32\t5.6.7.8/32\t1 : 2\t3 : 70000\t0x06/0xFF", "destination port"),
    ("@1.2.3.4/32\t5.6.7.8/32\t1 : 2\t3 : 4\t0x06/0xF0", "protocol"),
    ("@1.2.3.4/32\t5.6.7.8/32\t1 : 2\t3 : 4\t6/0xFF", "protocol"),
    ("@1.2.3.4/32\t5.6.7.8/32\t1 : 2\t3 : 4\t0x06/0xFF\tzz", "flags"),
    ("@1.2.3.4/32\t5.6.7.8/32\t1 : 2\t3 : 4\t0x06/0xFF\t0x0/0x0\textra", "unexpected"),
    ("@1.2.3.4/32\t5.6.7.8/32\t1 : 2", "ends early"),
    ("@1.2.3.4/32", "ends early"),
])
def test_rules_errors_name_file_and_line(tmp_path, line, what):
    good = "@1.2.3.4/32\t5.6.7.8/32\t1 : 2\t3 : 4\t0x06/0xFF\n"
    path = _write(tmp_path, "bad_rules", good + "\n" + good + line + "\n" + good)
    with pytest.raises(InputError) as err:
        read_rules(path)
    msg = str(err.value)
    assert f"{path}:4" in msg
    assert what in msg


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_rules(tmp_path / "nope")
    with pytest.raises(InputError, match="cannot read"):
        read_trace(tmp_path / "nope")


def test_trace_parse(tmp_path):
    text = "1923697128\t2273746465\t0\t1221\t6\t4294967295\t261\n" \
           "3980985135 864035178 65535 0 6 0 672\n\n" \
           "1 2 3 4 5\n"
    keys, bound = read_trace(_write(tmp_path, "t", text), with_bound=True)
    assert keys.dtype == np.uint32 and keys.shape == (3, 5) and keys.flags.c_contiguous
    assert keys[0].tolist() == [1923697128, 2273746465, 0, 1221, 6]
    assert keys[2].tolist() == [1, 2, 3, 4, 5]
    assert bound.tolist() == [261, 672, -1]
    assert read_trace(_write(tmp_path, "t2", text)).shape == (3, 5)


@pytest.mark.parametrize("line, what", [
    ("1 2 3 4", "at least 5"),
    ("1 2 3 4 x", "at least 5"),
    ("1 2 3 4 5x 6", "at least 5"),
    ("4294967296 2 3 4 5", "out of range"),
    ("1 2 65536 4 5", "out of range"),
    ("1 2 3 4 256", "out of range"),
])
def test_trace_errors(tmp_path, line, what):
    path = _write(tmp_path, "bad_trace", "1 2 3 4 5 0 0\n" + line + "\n")
    with pytest.raises(InputError) as err:
        read_trace(path)
    assert f"{path}:2" in str(err.value)
    assert what in str(err.value)


def _need(name):
    if not (DATA / name).exists():
        pytest.skip(f"ClassBench data not found at {DATA / name} (../shared/data/classbench)")
    return DATA / name


@pytest.mark.parametrize("name, rows", [("acl1_1k", 878), ("fw1_1k", 761), ("ipc1_1k", 923),
                                        ("acl1_10k", 9761), ("fw1_10k", 9416), ("ipc1_10k", 8739)])
def test_real_files(name, rows):
    lo, hi = read_rules(_need(name))
    assert lo.shape == (rows, 5) and np.all(lo <= hi)
    keys, bound = read_trace(_need(name + "_trace"), with_bound=True)
    assert keys.shape[1] == 5 and len(keys) >= 10 * rows - rows // 10
    assert np.all(keys[:, 2:4] <= 65535) and np.all(keys[:, 4] <= 255)
    assert np.all(bound >= 0)


def test_parse_speed_100k():
    path = _need("acl1_100k")
    read_rules(path)                      # warm (JIT)
    t = time.perf_counter()
    lo, _ = read_rules(path)
    keys = read_trace(_need("acl1_100k_trace"))
    elapsed = time.perf_counter() - t
    assert lo.shape == (99340, 5) and keys.shape == (99340, 5)
    assert elapsed < 1.0, f"parsing 100K rules and a 100K trace took {elapsed:.2f}s"
