"""pcap and pcapng captures, decoded in numba over blocks of the file's bytes.

The file is read in blocks (64 MiB by default); a record cut by the end of a
block is carried over to the next one, so memory stays bounded whatever the
capture's size.
"""
from __future__ import annotations

import struct
from typing import BinaryIO, Callable, Iterator

import numpy as np

from ...kernels import pcapdecode as k
from . import PCAP_MAGICS, PCAPNG_MAGIC, SkipCounts, TraceChunk, TraceReader

BLOCK_BYTES = 64 << 20
MIN_MAX_CAPLEN = 262_144  # libpcap's largest snapshot length
PCAP_HEADER = "IHHiIII"  # magic, major, minor, thiszone, sigfigs, snaplen, linktype
PCAP_HEADER_BYTES = struct.calcsize("<" + PCAP_HEADER)

DECODE_REASONS = {k.TRUNCATED: "truncated packet", k.NON_IP: "non-IP frame",
                  k.MALFORMED_IP: "malformed IP header"}
FRAME_ERRORS = {
    k.FRAME_CORRUPT: "impossible record length: the capture is corrupt from here on",
    k.FRAME_BAD_MAGIC: "pcapng section header with an unknown byte-order magic",
    k.FRAME_BAD_INTERFACE: "pcapng packet on an interface that no interface block describes",
    k.FRAME_BAD_RESOLUTION: "pcapng interface with an impossible timestamp resolution",
}

# (offsets, capture lengths, link types, times, next position, framing status)
Framed = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]
Framer = Callable[[np.ndarray, int, int, int], Framed]


class CaptureReader(TraceReader):
    """Packets of a pcap or pcapng capture, in path mode (no ENI, direction or action)."""

    block_bytes = BLOCK_BYTES

    def _chunks(self) -> Iterator[TraceChunk]:
        framer, start = self._framer(self.source.head[:PCAP_HEADER_BYTES])
        with self.source.open() as f:
            yield from self._walk(f, framer, start)

    def _framer(self, head: bytes) -> tuple[Framer, int]:
        """The framing function for this file and where its first record starts."""
        magic = head[:4]
        if magic == PCAPNG_MAGIC and self.format != "pcap":
            return _pcapng_framer(), 0
        if magic not in PCAP_MAGICS or self.format == "pcapng":
            raise self.error(f"not a {self.format or 'pcap/pcapng'} capture (magic {magic.hex() or 'missing'})",
                             line=1)
        if len(head) < PCAP_HEADER_BYTES:
            raise self.error("pcap file header is truncated", line=1)
        big = magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")
        units = 10**9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d") else 10**6
        *_, snaplen, linktype = struct.unpack((">" if big else "<") + PCAP_HEADER, head)
        max_caplen = max(snaplen, MIN_MAX_CAPLEN)
        link = linktype & 0xFFFF

        def frame(buf: np.ndarray, pos: int, end: int, max_n: int) -> Framed:
            off, caplen, time, pos, status = k.frame_pcap(buf, pos, end, big, units, max_caplen, max_n)
            return off, caplen, np.full(len(off), link, np.int64), time, pos, status

        return frame, PCAP_HEADER_BYTES

    def _walk(self, f: BinaryIO, framer: Framer, start: int) -> Iterator[TraceChunk]:
        """Frame and decode the whole file block by block, yielding chunks of chunk_rows packets."""
        buf = np.empty(self.block_bytes, np.uint8)
        end = f.readinto(memoryview(buf))
        base = 0  # file offset of buf[0]
        pos = start
        eof = end < len(buf)
        out, filled, framed = k.decoded_arrays(self.chunk_rows), 0, 0
        corrupt_at = None
        while True:
            off, caplen, link, time, pos_next, status = framer(buf, pos, end, self.chunk_rows - framed)
            if status != k.FRAME_OK:  # the packets framed before it are read; nothing after it can be trusted
                if self.records_read + len(off) == 0:  # corrupt from the start: it is not a capture to replay
                    raise self.error(FRAME_ERRORS[status], subject=f"byte {base + pos_next}, packet 1")
                corrupt_at = (FRAME_ERRORS[status], base + pos_next)
            if len(off):
                filled, decoded = k.decode_packets(buf, off, caplen, link, time, self.records_read, out, filled)
                self._count_skipped(decoded, link)
                self.records_read += len(off)
                framed += len(off)
            pos = pos_next
            if corrupt_at is not None:
                break
            if framed == self.chunk_rows:
                yield _chunk(out, filled)
                out, filled, framed = k.decoded_arrays(self.chunk_rows), 0, 0
                continue
            if eof:
                break
            if pos == 0 and end == len(buf):
                raise self.error(f"a record is larger than the {len(buf) >> 20} MiB read block",
                                 subject=f"byte {base}")
            kept = end - pos
            buf[:kept] = buf[pos:end]
            base += pos
            pos = 0
            got = f.readinto(memoryview(buf)[kept:])
            end = kept + got
            eof = got == 0 or end < len(buf)
        yield _chunk(out, filled)
        if corrupt_at is not None:
            reason, at = corrupt_at
            self.records_read += 1
            self.skipped.add(f"{reason} (read up to byte {at:,}; the rest of the file is not replayed)", 1,
                             [f"byte {at}, packet {self.records_read}"])
        elif pos < end:
            self.records_read += 1
            self.skipped.add("truncated record at end of file", 1, [f"byte {base + pos}"])

    def _count_skipped(self, status: np.ndarray, link: np.ndarray) -> None:
        """Count the packets (numbered from records_read) that could not be decoded, by reason."""
        for code in np.flatnonzero(np.bincount(status)).tolist():
            if code == k.OK:
                continue
            at = np.flatnonzero(status == code)
            if code == k.UNSUPPORTED_LINK:
                groups = [(f"unsupported link type {v}", at[link[at] == v]) for v in np.unique(link[at]).tolist()]
            else:
                groups = [(DECODE_REASONS[code], at)]
            for reason, where in groups:
                self.skipped.add(reason, len(where), (f"packet {self.records_read + i + 1}"
                                                      for i in where[:SkipCounts.EXAMPLES].tolist()))


def _chunk(out: tuple[np.ndarray, ...], n: int) -> TraceChunk:
    return TraceChunk(**{name: column[:n] for (name, _), column in zip(k.DECODED, out)})


def _pcapng_framer() -> Framer:
    """A framing function carrying pcapng section and interface state between blocks."""
    state = np.zeros(2, np.int64)
    last_time = np.zeros(1, np.float64)
    tables = [np.zeros(16, np.int64) for _ in range(3)]  # link, time units, time offset

    def frame(buf: np.ndarray, pos: int, end: int, max_n: int) -> Framed:
        parts = []
        while True:
            *columns, pos, status = k.frame_pcapng(buf, pos, end, state, *tables, last_time, max_n)
            parts.append(columns)
            max_n -= len(columns[0])
            if status != k.FRAME_NEED_INTERFACES:
                break
            tables[:] = [np.concatenate([t, np.zeros_like(t)]) for t in tables]
        if len(parts) > 1:
            columns = [np.concatenate(c) for c in zip(*parts)]
        return (*columns, pos, status)

    return frame
