"""pcap/pcapng reader: real captures and synthetic ones, checked against a slow pure-Python walker."""
from __future__ import annotations

import ipaddress
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsim.errors import InputError
from flowsim.io.arrays import format_ips
from flowsim.io.traces import TraceChunk, detect_format, open_trace

PCAP_DIR = Path(__file__).parents[1].parent / "shared" / "data" / "real" / "pcap"

# Packet counts and TCP/UDP flow counts from shared/data/README.md.
REAL = {
    "chrissanders_http_espn.pcapng": (956, 25, 14),
    "ndpi_1kxun.pcap": (1723, 98, 99),
    "ndpi_alexa-app.pcapng": (3103, 121, 33),
    "ndpi_gnutella.pcap": (3905, 137, 613),
    "ndpi_netflix.pcap": (1793, 47, 13),
    "ndpi_synscan.pcap": (2011, 1994, 0),
    "ndpi_wechat.pcap": (1672, 59, 37),
    "tcpreplay_test.pcap": (179, 7, 12),
    "zeek_var-services-std-ports.pcap": (263, 6, 32),
    "zeek_wikipedia.pcap": (136, 10, 24),
}


# ---------------------------------------------------------------- reference walker
# Obviously-correct, one packet at a time, struct only. Returns, per packet, either
# a skip reason or (src, dst, protocol, sport, dport, time).

def _ref_ip(data: bytes, version: int | None = None):
    """version: what the link layer announced; None to read it from the header."""
    if version is None:
        if not data:
            return "truncated packet"
        version = data[0] >> 4
        if version not in (4, 6):
            return "malformed IP header"
    if version == 4:
        if len(data) < 20:
            return "truncated packet"
        ihl = (data[0] & 15) * 4
        if data[0] >> 4 != 4 or ihl < 20:
            return "malformed IP header"
        if len(data) < ihl:
            return "truncated packet"
        total, frag, proto = struct.unpack("!H2xHxB", data[2:10])
        if total >= ihl:
            data = data[:total]
        src, dst = ipaddress.IPv4Address(data[12:16]), ipaddress.IPv4Address(data[16:20])
        return _ref_ports(src, dst, proto, data[ihl:], frag & 0x1FFF == 0)
    if len(data) < 40:
        return "truncated packet"
    if data[0] >> 4 != 6:
        return "malformed IP header"
    payload, nh = struct.unpack("!HB", data[4:7])
    if payload:
        data = data[:40 + payload]
    src, dst = ipaddress.IPv6Address(data[8:24]), ipaddress.IPv6Address(data[24:40])
    rest, first = data[40:], True
    for _ in range(16):
        if nh == 44:
            if len(rest) < 8:
                return "truncated packet"
            first = struct.unpack("!H", rest[2:4])[0] >> 3 == 0
            nh, rest = rest[0], rest[8:]
            if not first:
                break
        elif nh in (0, 43, 60, 51):
            if len(rest) < 2:
                return "truncated packet"
            size = (rest[1] + 2) * 4 if nh == 51 else (rest[1] + 1) * 8
            nh, rest = rest[0], rest[size:]
        else:
            break
    return _ref_ports(src, dst, nh, rest, first)


def _ref_ports(src, dst, proto, l4: bytes, first: bool):
    if proto in (6, 17) and first:
        if len(l4) < 4:
            return "truncated packet"
        sport, dport = struct.unpack("!HH", l4[:4])
        return str(src), str(dst), proto, sport, dport
    return str(src), str(dst), proto, 0, 0


def _ref_ethertype(ethertype: int, rest: bytes):
    while ethertype in (0x8100, 0x88A8, 0x9100):
        if len(rest) < 4:
            return "truncated packet"
        ethertype, rest = struct.unpack("!H", rest[2:4])[0], rest[4:]
    if ethertype in (0x0800, 0x86DD):
        return _ref_ip(rest, 4 if ethertype == 0x0800 else 6)
    return "non-IP frame"


def _ref_link(link: int, data: bytes):
    if link == 1:
        return "truncated packet" if len(data) < 14 else _ref_ethertype(struct.unpack("!H", data[12:14])[0], data[14:])
    if link == 113:
        return "truncated packet" if len(data) < 16 else _ref_ethertype(struct.unpack("!H", data[14:16])[0], data[16:])
    if link == 276:
        return "truncated packet" if len(data) < 20 else _ref_ethertype(struct.unpack("!H", data[0:2])[0], data[20:])
    if link in (101, 12, 228, 229):
        return _ref_ip(data, {228: 4, 229: 6}.get(link))
    if link in (0, 108):
        if len(data) < 4:
            return "truncated packet"
        family = struct.unpack("<I", data[:4])[0]
        if family > 0xFFFF:
            family = struct.unpack(">I", data[:4])[0]
        return _ref_ip(data[4:], 4 if family == 2 else 6) if family in (2, 24, 28, 30) else "non-IP frame"
    return f"unsupported link type {link}"


def ref_walk(path: Path) -> list:
    """Every packet of a pcap/pcapng file: a skip reason, or (src, dst, proto, sport, dport, time)."""
    blob = path.read_bytes()
    out = []
    if blob[:4] == b"\x0a\x0d\x0d\x0a":
        pos, order, ifaces, last = 0, "<", [], 0.0
        while pos < len(blob):
            if blob[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
                order = "<" if blob[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            btype, blen = struct.unpack(order + "II", blob[pos:pos + 8].ljust(8, b"\xff"))
            if pos + 12 > len(blob) or pos + blen > len(blob):
                out.append("truncated record at end of file")
                break
            body = blob[pos + 8:pos + blen - 4]
            if btype == 0x0A0D0D0A:
                ifaces = []
            elif btype == 1:
                link = struct.unpack(order + "H", body[:2])[0]
                units, offset, opts = 10**6, 0, body[8:]
                while len(opts) >= 4:
                    code, length = struct.unpack(order + "HH", opts[:4])
                    if code == 0:
                        break
                    value = opts[4:4 + length]
                    if code == 9:
                        units = 2 ** (value[0] & 0x7F) if value[0] & 0x80 else 10 ** value[0]
                    if code == 14:
                        offset = struct.unpack(order + "q", value[:8])[0]
                    opts = opts[4 + (length + 3) // 4 * 4:]
                ifaces.append((link, units, offset))
            elif btype in (2, 6):
                iface = struct.unpack(order + ("I" if btype == 6 else "H"), body[:4 if btype == 6 else 2])[0]
                hi, lo, caplen = struct.unpack(order + "III", body[4:16])
                link, units, offset = ifaces[iface]
                ts = (hi << 32) | lo
                last = ts // units + offset + (ts % units) / units
                out.append(_with_time(_ref_link(link, body[20:20 + caplen]), last))
            elif btype == 3:
                origlen = struct.unpack(order + "I", body[:4])[0]
                out.append(_with_time(_ref_link(ifaces[0][0], body[4:4 + origlen]), last))
            pos += blen
        return out
    magic = blob[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    units = 10**9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 10**6
    link = struct.unpack(order + "I", blob[20:24])[0] & 0xFFFF
    pos = 24
    while pos < len(blob):
        if pos + 16 > len(blob):
            out.append("truncated record at end of file")
            break
        sec, frac, caplen, _ = struct.unpack(order + "IIII", blob[pos:pos + 16])
        if pos + 16 + caplen > len(blob):
            out.append("truncated record at end of file")
            break
        out.append(_with_time(_ref_link(link, blob[pos + 16:pos + 16 + caplen]), sec + frac / units))
        pos += 16 + caplen
    return out


def _with_time(decoded, time: float):
    return decoded if isinstance(decoded, str) else (*decoded, time)


def decoded_rows(path: Path, **kw) -> tuple[list, dict, int]:
    """Decode with flowsim: (per-record rows keyed by record number, skipped, records_read)."""
    reader = open_trace(path, **kw)
    rows = {}
    for chunk in reader:
        src = format_ips(chunk.src_fam, chunk.src_hi, chunk.src_lo)
        dst = format_ips(chunk.dst_fam, chunk.dst_hi, chunk.dst_lo)
        for i, rec in enumerate(chunk.record.tolist()):
            rows[rec] = (src[i], dst[i], int(chunk.protocol[i]), int(chunk.src_port[i]),
                         int(chunk.dst_port[i]), float(chunk.time[i]))
    return rows, dict(reader.skipped), reader.records_read


def assert_matches_reference(path: Path, **kw) -> list:
    """flowsim and the reference walker agree packet by packet; returns the reference."""
    ref = ref_walk(path)
    rows, skipped, records = decoded_rows(path, **kw)
    assert records == len(ref)
    assert skipped == dict(Counter(r for r in ref if isinstance(r, str)))
    expected = {i: r for i, r in enumerate(ref) if not isinstance(r, str)}
    assert rows.keys() == expected.keys()
    for i, want in expected.items():
        got = rows[i]
        assert got[:5] == want[:5], f"packet {i + 1}"
        assert got[5] == pytest.approx(want[5], abs=1e-6), f"packet {i + 1} time"
    return ref


# ---------------------------------------------------------------- real captures

def _real(name: str) -> Path:
    path = PCAP_DIR / name
    if not path.exists():
        pytest.skip(f"real capture {path} is absent (shared/data not laid out beside the repository)")
    return path


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_capture_matches_reference_walker(name: str) -> None:
    path = _real(name)
    packets, tcp_flows, udp_flows = REAL[name]
    assert detect_format(path) == ("pcapng" if name.endswith(".pcapng") else "pcap")
    ref = assert_matches_reference(path)
    assert len(ref) == packets
    flows = Counter()
    for r in {tuple(sorted([(r[0], r[3]), (r[1], r[4])])) + (r[2],) for r in ref
              if not isinstance(r, str) and r[2] in (6, 17)}:
        flows[r[-1]] += 1
    assert (flows[6], flows[17]) == (tcp_flows, udp_flows)


def test_real_synscan_decoded_fields() -> None:
    path = _real("ndpi_synscan.pcap")
    chunks = list(open_trace(path))
    chunk = TraceChunk.concat(chunks)
    assert len(chunk) == 2011
    assert set(chunk.protocol.tolist()) == {6}
    assert len(set(format_ips(chunk.src_fam, chunk.src_hi, chunk.src_lo)) |
               set(format_ips(chunk.dst_fam, chunk.dst_hi, chunk.dst_lo))) == 2
    assert chunk.eni is None and chunk.direction is None and chunk.columns is None
    assert np.all(np.diff(chunk.time) >= 0)


def test_real_capture_in_small_blocks_and_chunks() -> None:
    """A record cut by the end of a read block is carried over; chunks never exceed chunk_rows."""
    path = _real("zeek_wikipedia.pcap")
    whole, _, _ = decoded_rows(path)
    reader = open_trace(path, chunk_rows=7)
    reader.block_bytes = 4096
    sizes, rows = [], {}
    for chunk in reader:
        sizes.append(len(chunk))
        rows.update({r: int(p) for r, p in zip(chunk.record.tolist(), chunk.src_port.tolist())})
    assert max(sizes) <= 7
    assert rows == {r: v[3] for r, v in whole.items()}
    assert reader.records_read == 136


# ---------------------------------------------------------------- synthetic packets

def mac_header(ethertype: int, vlans: tuple[int, ...] = ()) -> bytes:
    tags = b"".join(struct.pack("!HH", tpid, 100 + i) for i, tpid in enumerate(vlans))
    return b"\x02" * 6 + b"\x04" * 6 + tags + struct.pack("!H", ethertype)


def ipv4(src: str, dst: str, proto: int, payload: bytes, options: bytes = b"", frag: int = 0) -> bytes:
    ihl = 5 + len(options) // 4
    total = ihl * 4 + len(payload)
    return (struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, frag, 64, proto, 0,
                        ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
            + options + payload)


def ipv6(src: str, dst: str, nh: int, payload: bytes) -> bytes:
    return (struct.pack("!IHBB", 6 << 28, len(payload), nh, 64) + ipaddress.IPv6Address(src).packed
            + ipaddress.IPv6Address(dst).packed + payload)


def l4(sport: int, dport: int, size: int = 8) -> bytes:
    return struct.pack("!HH", sport, dport) + b"\x00" * (size - 4)


def ext(nh: int, length_units: int = 0) -> bytes:
    """A hop-by-hop/routing/destination-options header of (length_units + 1) * 8 bytes."""
    return bytes([nh, length_units]) + b"\x00" * (6 + 8 * length_units)


def eth4(src="10.0.0.1", dst="10.0.0.2", proto=6, sport=1234, dport=80) -> bytes:
    return mac_header(0x0800) + ipv4(src, dst, proto, l4(sport, dport, 20))


def write_pcap(path: Path, packets: list[bytes], order: str = "<", nanos: bool = False, link: int = 1,
               times: list[float] | None = None) -> Path:
    units = 10**9 if nanos else 10**6
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, link)]
    for i, pkt in enumerate(packets):
        t = times[i] if times else 1_600_000_000 + i + 0.25
        sec = int(t)
        out.append(struct.pack(order + "IIII", sec, round((t - sec) * units), len(pkt), len(pkt)) + pkt)
    path.write_bytes(b"".join(out))
    return path


def _pad(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def _block(order: str, btype: int, body: bytes) -> bytes:
    body = _pad(body)
    return struct.pack(order + "II", btype, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def shb(order: str) -> bytes:
    return _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str, link: int, tsresol: int | None = None, tsoffset: int | None = None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += struct.pack(order + "HH", 9, 1) + _pad(bytes([tsresol]))
    if tsoffset is not None:
        opts += struct.pack(order + "HHq", 14, 8, tsoffset)
    if opts:
        opts += struct.pack(order + "HH", 0, 0)
    return _block(order, 1, struct.pack(order + "HHI", link, 0, 65535) + opts)


def epb(order: str, iface: int, ts: int, pkt: bytes, caplen: int | None = None) -> bytes:
    caplen = len(pkt) if caplen is None else caplen
    return _block(order, 6, struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, caplen, len(pkt))
                  + pkt[:caplen])


def spb(order: str, pkt: bytes) -> bytes:
    return _block(order, 3, struct.pack(order + "I", len(pkt)) + pkt)


def opb(order: str, iface: int, ts: int, pkt: bytes) -> bytes:
    return _block(order, 2, struct.pack(order + "HHIIII", iface, 0, ts >> 32, ts & 0xFFFFFFFF, len(pkt), len(pkt))
                  + pkt)


def one_chunk(path: Path, **kw) -> tuple[TraceChunk | None, dict]:
    reader = open_trace(path, **kw)
    chunks = list(reader)
    return (TraceChunk.concat(chunks) if chunks else None), dict(reader.skipped)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, order: str, nanos: bool) -> None:
    times = [1_700_000_000.123456, 1_700_000_001.5, 1_700_000_002.000001]
    path = write_pcap(tmp_path / "t.pcap", [eth4(sport=1000 + i) for i in range(3)], order, nanos, times=times)
    assert detect_format(path) == "pcap"
    chunk, skipped = one_chunk(path)
    assert skipped == {}
    assert chunk.src_port.tolist() == [1000, 1001, 1002]
    assert chunk.dst_port.tolist() == [80] * 3
    assert chunk.protocol.dtype == np.int16 and chunk.src_port.dtype == np.int32
    assert chunk.time == pytest.approx(times, abs=1e-6)
    assert format_ips(chunk.src_fam, chunk.src_hi, chunk.src_lo) == ["10.0.0.1"] * 3
    assert chunk.record.tolist() == [0, 1, 2]
    assert_matches_reference(path)


def test_vlan_ipv4_options_fragments_and_portless_protocols(tmp_path: Path) -> None:
    packets = [
        mac_header(0x0800, (0x88A8, 0x8100)) + ipv4("192.0.2.1", "192.0.2.2", 17, l4(53, 5353)),
        mac_header(0x0800, (0x8100,)) + ipv4("192.0.2.1", "192.0.2.2", 6, l4(22, 40000, 20), options=b"\x01" * 8),
        mac_header(0x0800) + ipv4("192.0.2.1", "192.0.2.2", 6, l4(7, 7), frag=0x2000),  # first fragment: ports
        mac_header(0x0800) + ipv4("192.0.2.1", "192.0.2.2", 6, l4(7, 7), frag=0x0010),  # later fragment: none
        mac_header(0x0800) + ipv4("192.0.2.1", "192.0.2.2", 1, b"\x08\x00" + b"\x00" * 6),  # ICMP
        mac_header(0x0800) + ipv4("192.0.2.1", "192.0.2.2", 47, b"\x00" * 8),  # GRE
        mac_header(0x0800) + ipv4("192.0.2.1", "192.0.2.2", 132, l4(9, 9)),  # SCTP: by number, no ports
        mac_header(0x0800) + ipv4("192.0.2.1", "192.0.2.2", 6, l4(1, 2, 20)) + b"\x00" * 10,  # Ethernet padding
    ]
    path = write_pcap(tmp_path / "v.pcap", packets)
    chunk, skipped = one_chunk(path)
    assert skipped == {}
    assert chunk.protocol.tolist() == [17, 6, 6, 6, 1, 47, 132, 6]
    assert chunk.src_port.tolist() == [53, 22, 7, 0, 0, 0, 0, 1]
    assert chunk.dst_port.tolist() == [5353, 40000, 7, 0, 0, 0, 0, 2]
    assert_matches_reference(path)


def test_ipv6_extension_headers(tmp_path: Path) -> None:
    a, b = "2001:db8::1", "2001:db8:ffff::abcd"
    frag_first = bytes([6, 0]) + struct.pack("!HI", 0x0001, 7)  # offset 0, more fragments
    frag_later = bytes([6, 0]) + struct.pack("!HI", 0x0100, 7)  # offset 32 (in 8-byte units)
    ah = bytes([17, 1]) + b"\x00" * 10  # AH: (1 + 2) * 4 = 12 bytes
    packets = [
        # hop-by-hop -> routing -> destination options (16 bytes) -> TCP
        mac_header(0x86DD) + ipv6(a, b, 0, ext(43) + ext(60) + ext(6, 1) + l4(443, 50000, 20)),
        mac_header(0x86DD) + ipv6(a, b, 44, frag_first + l4(1111, 2222, 20)),
        mac_header(0x86DD) + ipv6(a, b, 44, frag_later + b"\x00" * 16),
        mac_header(0x86DD) + ipv6(a, b, 51, ah + l4(123, 123)),
        mac_header(0x86DD) + ipv6(a, b, 58, b"\x80\x00" + b"\x00" * 6),  # ICMPv6 echo
        mac_header(0x86DD) + ipv6(a, b, 59, b""),  # no next header
    ]
    path = write_pcap(tmp_path / "v6.pcap", packets)
    chunk, skipped = one_chunk(path)
    assert skipped == {}
    assert chunk.protocol.tolist() == [6, 6, 6, 17, 58, 59]
    assert chunk.src_port.tolist() == [443, 1111, 0, 123, 0, 0]
    assert set(chunk.src_fam.tolist()) == {6}
    assert format_ips(chunk.dst_fam, chunk.dst_hi, chunk.dst_lo)[0] == b
    assert_matches_reference(path)


def test_truncated_non_ip_and_unknown_frames_are_counted(tmp_path: Path) -> None:
    arp = mac_header(0x0806) + b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20
    good = eth4()
    packets = [good, arp, good[:30], good[:14 + 20 + 2], mac_header(0x0800)[:10], good,
               mac_header(0x0800) + b"\x55" * 20, mac_header(0x88CC) + b"\x00" * 30]
    path = write_pcap(tmp_path / "bad.pcap", packets)
    chunk, skipped = one_chunk(path)
    assert skipped == {"truncated packet": 3, "non-IP frame": 2, "malformed IP header": 1}
    assert chunk.record.tolist() == [0, 5]
    assert_matches_reference(path)


def test_unsupported_link_type_is_counted(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "usb.pcap", [b"\x00" * 40] * 3, link=189)
    chunk, skipped = one_chunk(path)
    assert chunk is None
    assert skipped == {"unsupported link type 189": 3}


@pytest.mark.parametrize("link,prefix", [
    (101, b""), (12, b""), (228, b""),
    (113, b"\x00\x00\x00\x01\x00\x06" + b"\x00" * 8 + b"\x08\x00"),
    (276, b"\x08\x00\x00\x00" + b"\x00" * 16),
    (0, struct.pack("<I", 2)), (0, struct.pack(">I", 2)), (108, struct.pack(">I", 2)),
])
def test_link_types_ipv4(tmp_path: Path, link: int, prefix: bytes) -> None:
    path = write_pcap(tmp_path / "l.pcap", [prefix + ipv4("1.2.3.4", "5.6.7.8", 17, l4(68, 67))], link=link)
    chunk, skipped = one_chunk(path)
    assert skipped == {}
    assert (chunk.src_port[0], chunk.dst_port[0], chunk.protocol[0]) == (68, 67, 17)
    assert format_ips(chunk.src_fam, chunk.src_hi, chunk.src_lo) == ["1.2.3.4"]
    assert_matches_reference(path)


@pytest.mark.parametrize("link,prefix", [(101, b""), (229, b""), (0, struct.pack("<I", 30)),
                                         (113, b"\x00" * 14 + b"\x86\xdd")])
def test_link_types_ipv6(tmp_path: Path, link: int, prefix: bytes) -> None:
    path = write_pcap(tmp_path / "l6.pcap", [prefix + ipv6("::1", "fe80::2", 6, l4(5, 6, 20))], link=link)
    chunk, skipped = one_chunk(path)
    assert skipped == {}
    assert format_ips(chunk.dst_fam, chunk.dst_hi, chunk.dst_lo) == ["fe80::2"]
    assert_matches_reference(path)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_blocks_interfaces_and_resolutions(tmp_path: Path, order: str) -> None:
    t_us = 1_700_000_000_250_000
    raw = ipv4("10.1.1.1", "10.2.2.2", 17, l4(1, 2))
    blob = b"".join([
        shb(order),
        idb(order, 1),                               # microseconds by default
        idb(order, 101, tsresol=9, tsoffset=100),    # nanoseconds, 100 s offset
        idb(order, 1, tsresol=0x80 | 10),            # 2**-10 s
        _block(order, 4, b"\x00" * 8),               # name resolution block: skipped
        epb(order, 0, t_us, eth4(sport=10)),
        epb(order, 1, 1_600_000_000_500_000_000, raw),
        opb(order, 2, (1_650_000_000 << 10) + 512, eth4(sport=12)),
        spb(order, eth4(sport=13)),                  # no time: the previous packet's
        _block(order, 5, b"\x00" * 16),              # interface statistics: skipped
        epb(order, 0, t_us, mac_header(0x0806) + b"\x00" * 28),
    ])
    path = tmp_path / "t.pcapng"
    path.write_bytes(blob)
    assert detect_format(path) == "pcapng"
    chunk, skipped = one_chunk(path)
    assert skipped == {"non-IP frame": 1}
    assert chunk.src_port.tolist() == [10, 1, 12, 13]
    assert chunk.time == pytest.approx([1_700_000_000.25, 1_600_000_100.5, 1_650_000_000.5, 1_650_000_000.5])
    assert_matches_reference(path)


def test_pcapng_sections_switch_byte_order(tmp_path: Path) -> None:
    blob = (shb("<") + idb("<", 1) + epb("<", 0, 5_000_000, eth4(sport=1))
            + shb(">") + idb(">", 228) + epb(">", 0, 6_000_000, ipv4("9.9.9.9", "8.8.8.8", 6, l4(2, 3, 20))))
    path = tmp_path / "two.pcapng"
    path.write_bytes(blob)
    chunk, skipped = one_chunk(path)
    assert skipped == {}
    assert chunk.src_port.tolist() == [1, 2]
    assert chunk.time.tolist() == [5.0, 6.0]
    assert_matches_reference(path)


def test_pcapng_many_interfaces_grow_the_table(tmp_path: Path) -> None:
    blob = shb("<") + b"".join(idb("<", 1) for _ in range(40)) + b"".join(
        epb("<", i, i * 1_000_000, eth4(sport=i)) for i in range(40))
    path = tmp_path / "many.pcapng"
    path.write_bytes(blob)
    chunk, _ = one_chunk(path)
    assert chunk.src_port.tolist() == list(range(40))


def test_snapshot_cut_packet_and_truncated_file(tmp_path: Path) -> None:
    ng = tmp_path / "cut.pcapng"
    ng.write_bytes(shb("<") + idb("<", 1) + epb("<", 0, 0, eth4(), caplen=14 + 12) + epb("<", 0, 0, eth4())[:-9])
    assert one_chunk(ng) == (None, {"truncated packet": 1, "truncated record at end of file": 1})
    assert_matches_reference(ng)
    pcap = write_pcap(tmp_path / "cut.pcap", [eth4(), eth4()])
    pcap.write_bytes(pcap.read_bytes()[:-5])
    chunk, skipped = one_chunk(pcap)
    assert len(chunk) == 1 and skipped == {"truncated record at end of file": 1}
    assert_matches_reference(pcap)


def test_not_a_capture_is_an_input_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01\x02hello\xff" * 20)
    with pytest.raises(InputError, match="junk.bin:1: cannot detect trace format"):
        detect_format(junk)
    with pytest.raises(InputError, match=r"junk.bin:1: not a pcap capture"):
        list(open_trace(junk, format="pcap"))
    ng = tmp_path / "x.pcapng"
    ng.write_bytes(shb("<"))
    with pytest.raises(InputError, match="not a pcap capture"):
        list(open_trace(ng, format="pcap"))
    short = tmp_path / "short.pcap"
    short.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00")
    with pytest.raises(InputError, match="short.pcap:1: pcap file header is truncated"):
        list(open_trace(short))


def test_a_corrupt_record_ends_the_capture_with_what_came_before_counted(tmp_path: Path) -> None:
    pcap = write_pcap(tmp_path / "corrupt.pcap", [eth4(), eth4(), eth4()])
    blob = bytearray(pcap.read_bytes())
    blob[24 + 16 + 54 + 8:24 + 16 + 54 + 12] = struct.pack("<I", 10**8)  # second record's caplen
    pcap.write_bytes(bytes(blob))
    reader = open_trace(pcap)
    assert sum(len(c) for c in reader) == 1 and reader.records_read == 2
    (reason,) = reader.skipped
    assert "impossible record length" in reason and "read up to byte 94" in reason
    assert list(reader.skipped.examples[reason]) == ["byte 94, packet 2"]
    first = write_pcap(tmp_path / "first.pcap", [eth4()])
    blob = bytearray(first.read_bytes())
    blob[24 + 8:24 + 12] = struct.pack("<I", 10**8)  # corrupt from the first record: not a capture to replay
    first.write_bytes(bytes(blob))
    with pytest.raises(InputError, match=r"first.pcap: byte 24, packet 1: impossible record length"):
        list(open_trace(first))
    ng = tmp_path / "noif.pcapng"
    ng.write_bytes(shb("<") + epb("<", 3, 0, eth4()))
    with pytest.raises(InputError, match="noif.pcapng: .*packet on an interface"):
        list(open_trace(ng))
    bad = tmp_path / "badorder.pcapng"
    bad.write_bytes(shb("<")[:8] + b"\x00\x00\x00\x00" + shb("<")[12:])
    with pytest.raises(InputError, match="byte-order magic"):
        list(open_trace(bad))


# ---------------------------------------------------------------- property: kernel == reference

PACKETS = st.sampled_from([
    eth4(), mac_header(0x0800, (0x8100,)) + ipv4("1.1.1.1", "2.2.2.2", 17, l4(5, 6)),
    mac_header(0x86DD) + ipv6("::1", "::2", 44, bytes([6, 0, 0, 0, 0, 0, 0, 0]) + l4(1, 2, 20)),
    mac_header(0x86DD) + ipv6("::1", "::2", 60, ext(17, 2) + l4(1, 2)),
    mac_header(0x0806) + b"\x00" * 28,
])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(PACKETS, st.integers(0, 80), st.integers(0, 60), st.binary(max_size=3)),
                min_size=1, max_size=12),
       st.sampled_from(["<", ">"]))
def test_cut_and_mangled_packets_match_reference(packets, order) -> None:
    """Packets cut at any length, with bytes overwritten anywhere, decode as the walker says."""
    import tempfile

    frames = [(pkt[:at] + junk + pkt[at + len(junk):])[:cut] for pkt, cut, at, junk in packets]
    with tempfile.TemporaryDirectory() as tmp:
        path = write_pcap(Path(tmp) / "h.pcap", frames, order)
        assert_matches_reference(path)
