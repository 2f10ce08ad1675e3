"""Trace-reader throughput: decode a synthetic 1M-packet pcap (pytest-benchmark).

Run: python -m pytest bench/bench_trace_readers.py --benchmark-only -s
"""
from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import numpy as np
import pytest

from flowsim.io.traces import open_trace

PACKETS = 1_000_000
FRAME = 86  # every synthetic frame is padded to this size


def _v4(proto: int, l4: bytes) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 1, 1])) + l4


def _templates() -> list[bytes]:
    """Ethernet frames: IPv4/TCP, IPv4/UDP behind a VLAN tag, IPv6/UDP, and an ARP frame."""
    mac = b"\x02" * 6 + b"\x04" * 6
    v6 = (struct.pack("!IHBB", 6 << 28, 8, 17, 64) + ipaddress.IPv6Address("2001:db8::1").packed
          + ipaddress.IPv6Address("2001:db8::2").packed + struct.pack("!HHHH", 5353, 53, 8, 0))
    frames = [
        mac + b"\x08\x00" + _v4(6, struct.pack("!HH", 40000, 443) + b"\x00" * 16),
        mac + b"\x81\x00\x00\x64\x08\x00" + _v4(17, struct.pack("!HHHH", 40000, 53, 8, 0)),
        mac + b"\x86\xdd" + v6,
        mac + b"\x08\x06" + b"\x00" * 28,
    ]
    return [f.ljust(FRAME, b"\x00") for f in frames]


def write_capture(path: Path, n: int = PACKETS) -> Path:
    """A pcap of n packets, mostly IPv4 with varying addresses and ports, built with numpy."""
    rng = np.random.default_rng(1)
    kinds = rng.choice(4, n, p=[0.6, 0.25, 0.14, 0.01])
    rec = np.zeros((n, 16 + FRAME), np.uint8)
    rec[:, 16:] = np.frombuffer(b"".join(_templates()), np.uint8).reshape(4, FRAME)[kinds]
    header = np.zeros((n, 4), "<u4")
    header[:, 0] = 1_700_000_000 + np.arange(n) // 1000
    header[:, 1] = np.arange(n) % 1000 * 1000
    header[:, 2:] = FRAME
    rec[:, :16] = header.view(np.uint8)
    ipv4 = kinds < 2
    ip_at = np.where(kinds == 1, 18, 14)
    rows = np.flatnonzero(ipv4)
    src = rng.integers(0, 1 << 16, n).astype(">u2").view(np.uint8).reshape(n, 2)
    sport = rng.integers(1024, 65536, n).astype(">u2").view(np.uint8).reshape(n, 2)
    for k in range(2):
        rec[rows, 16 + ip_at[rows] + 14 + k] = src[rows, k]  # low half of the source address
        rec[rows, 16 + ip_at[rows] + 20 + k] = sport[rows, k]
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        rec.tofile(f)
    return path


def read_capture(path: Path) -> int:
    reader = open_trace(path)
    n = sum(len(chunk) for chunk in reader)
    assert reader.records_read == PACKETS
    return n


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_capture(tmp_path_factory.mktemp("bench") / "synthetic.pcap")
    small = write_capture(path.with_name("warm.pcap"), 1000)
    list(open_trace(small))  # compile (or load) the numba kernels before timing
    return path


def test_pcap_decode_throughput(benchmark, capture: Path) -> None:
    decoded = benchmark.pedantic(read_capture, args=(capture,), rounds=3, iterations=1)
    assert 0.98 * PACKETS < decoded < PACKETS  # about 1% are ARP frames, counted as skipped
    rate = PACKETS / benchmark.stats.stats.mean
    benchmark.extra_info["packets_per_second"] = round(rate)
    print(f"\npcap decode: {rate / 1e6:.1f} M packets/s ({PACKETS} packets, mean of 3 rounds)")
