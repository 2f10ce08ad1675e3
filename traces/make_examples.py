"""Regenerate the bundled example traces for traces/example.yaml (run from the repository root).

example.pcap          a capture: allowed and denied connections, stateful replies, an expired
                      session, IPv6, an ARP frame and a truncated packet (skipped records)
example-flowlog.csv   the same story as an Alibaba Cloud VPC flow log of eni-db-1 and eni-web-1,
                      with NODATA/SKIPDATA records and one record that disagrees with the configuration
"""
from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
T0 = 1_764_547_200.0  # 2025-12-01T00:00:00Z


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _l4(proto: int, sport: int, dport: int, flags: int) -> bytes:
    if proto == 6:
        return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)
    return struct.pack("!HHHH", sport, dport, 8, 0)


def packet(src: str, dst: str, proto: int, sport: int, dport: int, flags: int = 0x02) -> bytes:
    """An Ethernet frame carrying one TCP or UDP packet over IPv4 or IPv6."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    payload = _l4(proto, sport, dport, flags)
    if s.version == 4:
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0, s.packed, d.packed)
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x02" + b"\x08\x00" + header + payload
    header = struct.pack("!IHBB16s16s", 6 << 28, len(payload), proto, 64, s.packed, d.packed)
    return b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x02" + b"\x86\xdd" + header + payload


ARP = b"\xff" * 6 + b"\x02\0\0\0\0\x01" + b"\x08\x06" + bytes(28)

# (seconds after T0, frame, what it shows)
CAPTURE = [
    (0.0, packet("198.51.100.7", "10.0.1.10", 6, 40001, 22), "ssh from the office: allowed by sg-web/ssh-office"),
    (0.1, packet("10.0.1.10", "198.51.100.7", 6, 22, 40001, 0x12), "its reply: stateful"),
    (1.0, packet("192.0.2.50", "10.0.1.10", 6, 40002, 22), "ssh from elsewhere: denied"),
    (2.0, packet("10.0.3.10", "100.100.2.136", 17, 40008, 53), "db asks the resolver: allowed by sg-db/dns"),
    (2.1, packet("100.100.2.136", "10.0.3.10", 17, 53, 40008), "the answer: stateful (no inbound rule would allow it)"),
    (3.0, packet("10.0.3.10", "8.8.8.8", 17, 40009, 53), "db asks a public resolver: advanced group denies outbound"),
    (3.1, packet("8.8.8.8", "10.0.3.10", 17, 53, 40009), "an unsolicited answer: denied"),
    (4.0, ARP, "ARP: not IP, skipped"),
    (5.0, packet("2001:db8:ffff::1", "2001:db8:1::10", 6, 40012, 443), "https over IPv6: allowed"),
    (6.0, packet("10.0.1.10", "10.0.2.10", 6, 40004, 8080)[:30], "truncated: skipped"),
    (2000.0, packet("100.100.2.136", "10.0.3.10", 17, 53, 40008), "an answer after 910 s of silence: denied"),
]

FIELDS = ["version", "vswitch-id", "vm-id", "vpc-id", "account-id", "eni-id", "srcaddr", "srcport", "dstaddr",
          "dstport", "protocol", "direction", "packets", "bytes", "start", "end", "log-status", "action"]
# (eni, src, sport, dst, dport, protocol, direction, start offset, log-status, action)
FLOW_LOG = [
    ("eni-db-1", "10.0.3.10", 40008, "100.100.2.136", 53, 17, "out", 2, "OK", "ACCEPT"),
    ("eni-db-1", "100.100.2.136", 53, "10.0.3.10", 40008, 17, "in", 2, "OK", "ACCEPT"),
    ("eni-db-1", "10.0.3.10", 40009, "8.8.8.8", 53, 17, "out", 3, "OK", "REJECT"),
    ("eni-db-1", "10.0.2.10", 51000, "10.0.3.10", 3306, 6, "in", 4, "OK", "ACCEPT"),
    ("eni-db-1", "10.0.1.12", 51001, "10.0.3.10", 3306, 6, "in", 5, "OK", "ACCEPT"),
    ("eni-db-1", "", "", "", "", "", "", 6, "NODATA", ""),
    ("eni-web-1", "198.51.100.7", 40001, "10.0.1.10", 22, 6, "in", 7, "OK", "ACCEPT"),
    ("eni-web-1", "10.0.1.10", 22, "198.51.100.7", 40001, 6, "out", 7, "OK", "ACCEPT"),
    ("eni-web-1", "192.0.2.50", 40002, "10.0.1.10", 22, 6, "in", 8, "OK", "REJECT"),
    ("eni-web-1", "", "", "", "", "", "", 9, "SKIPDATA", ""),
]


def write_pcap(path: Path) -> None:
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for offset, frame, _ in CAPTURE:
            ts = T0 + offset
            sec, usec = int(ts), int(round((ts - int(ts)) * 1e6))
            full = len(frame) if len(frame) > 30 else 54  # the truncated frame claims more than it holds
            out.write(struct.pack("<IIII", sec, usec, len(frame), max(full, len(frame))))
            out.write(frame)


def write_flow_log(path: Path) -> None:
    lines = [",".join(FIELDS)]
    for eni, src, sport, dst, dport, proto, direction, offset, status, action in FLOW_LOG:
        start = int(T0 + offset)
        lines.append(",".join(str(v) for v in (2, "vsw-1", "i-x", "vpc-prod", "1234", eni, src, sport, dst, dport,
                                                proto, direction, 1 if src else 0, 60 if src else 0, start, start + 5,
                                                status, action)))
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write_pcap(HERE / "example.pcap")
    write_flow_log(HERE / "example-flowlog.csv")
    print("wrote", HERE / "example.pcap", "and", HERE / "example-flowlog.csv")
