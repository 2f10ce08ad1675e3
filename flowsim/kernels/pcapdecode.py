"""Frame pcap/pcapng records and decode their IP headers, over a block of raw file bytes.

Framing walks record (pcap) or block (pcapng) headers and returns, per packet,
where its bytes start, how many were captured, its link type and its time; it
stops before a record cut by the end of the block, so a caller can carry that
record over to the next block. Decoding reads the link-layer, IP and TCP/UDP
headers of every framed packet, appends the 5-tuples of the decodable ones to
output columns and returns a status per packet (``OK`` or why it was skipped).
"""
import numba as nb
import numpy as np

# Decode status per packet.
OK = 0
TRUNCATED = 1
NON_IP = 2
UNSUPPORTED_LINK = 3
MALFORMED_IP = 4

# Framing status per call.
FRAME_OK = 0
FRAME_CORRUPT = 1  # impossible record or block length
FRAME_BAD_MAGIC = 2  # pcapng section header with an unknown byte-order magic
FRAME_BAD_INTERFACE = 3  # pcapng packet on an interface that was never described
FRAME_BAD_RESOLUTION = 4  # pcapng if_tsresol out of range
FRAME_NEED_INTERFACES = 5  # pcapng interface table full: grow it and call again

# Link types (tcpdump.org/linktypes.html).
LINK_NULL = 0
LINK_ETHERNET = 1
LINK_RAW_BSD = 12
LINK_RAW = 101
LINK_LOOP = 108
LINK_SLL = 113
LINK_IPV4 = 228
LINK_IPV6 = 229
LINK_SLL2 = 276

# Ethernet types.
ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = (0x8100, 0x88A8, 0x9100)

# pcapng block types.
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 1
PCAPNG_OPB = 2
PCAPNG_SPB = 3
PCAPNG_EPB = 6
PCAPNG_BYTE_ORDER = 0x1A2B3C4D
OPT_TSRESOL = 9
OPT_TSOFFSET = 14

# IPv6 extension headers walked to reach the upper-layer protocol.
IP6_HOPOPTS = 0
IP6_ROUTING = 43
IP6_FRAGMENT = 44
IP6_AH = 51
IP6_DSTOPTS = 60
MAX_IP6_HEADERS = 16

PROTO_TCP = 6
PROTO_UDP = 17


@nb.njit(cache=True)
def _be16(b, i):
    return (np.int64(b[i]) << 8) | np.int64(b[i + 1])


@nb.njit(cache=True)
def _u16(b, i, big):
    if big:
        return _be16(b, i)
    return (np.int64(b[i + 1]) << 8) | np.int64(b[i])


@nb.njit(cache=True)
def _u32(b, i, big):
    if big:
        return (_be16(b, i) << 16) | _be16(b, i + 2)
    return (_u16(b, i + 2, False) << 16) | _u16(b, i, False)


@nb.njit(cache=True)
def _be64(b, i):
    v = np.uint64(0)
    for k in range(8):
        v = (v << np.uint64(8)) | np.uint64(b[i + k])
    return v


@nb.njit(cache=True)
def _frame_pcap(buf, pos, end, big, units, max_caplen, off, caplen, time):
    n = 0
    while n < off.shape[0] and pos + 16 <= end:
        incl = _u32(buf, pos + 8, big)
        if incl > max_caplen:
            return n, pos, FRAME_CORRUPT
        if pos + 16 + incl > end:
            break
        time[n] = _u32(buf, pos, big) + _u32(buf, pos + 4, big) / units
        off[n] = pos + 16
        caplen[n] = incl
        n += 1
        pos += 16 + incl
    return n, pos, FRAME_OK


def frame_pcap(buf: np.ndarray, pos: int, end: int, big: bool, units: int, max_caplen: int,
               max_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Walk pcap records in buf[pos:end]: (offset, caplen, time, next pos, framing status).

    ``units`` is 10**6 for microsecond files and 10**9 for nanosecond ones.
    """
    off = np.empty(max_n, np.int64)
    caplen = np.empty(max_n, np.int64)
    time = np.empty(max_n, np.float64)
    n, pos, status = _frame_pcap(buf, pos, end, big, units, max_caplen, off, caplen, time)
    return off[:n], caplen[:n], time[:n], pos, status


@nb.njit(cache=True)
def _interface(buf, body, body_end, big, n_if, if_link, if_units, if_offset):
    """Record one pcapng interface description; returns a framing status."""
    if n_if >= if_link.shape[0]:
        return FRAME_NEED_INTERFACES
    if_link[n_if] = _u16(buf, body, big)
    units = np.int64(1_000_000)
    offset = np.int64(0)
    p = body + 8
    while p + 4 <= body_end:
        code = _u16(buf, p, big)
        length = _u16(buf, p + 2, big)
        if code == 0 or p + 4 + length > body_end:
            break
        if code == OPT_TSRESOL and length >= 1:
            r = np.int64(buf[p + 4])
            exp = r & 0x7F
            if (r & 0x80 and exp > 62) or (not r & 0x80 and exp > 18):
                return FRAME_BAD_RESOLUTION
            base = 2 if r & 0x80 else 10
            units = np.int64(1)
            for _ in range(exp):
                units *= base
        elif code == OPT_TSOFFSET and length >= 8:
            w0 = _u32(buf, p + 4, big)
            w1 = _u32(buf, p + 8, big)
            offset = (w0 << 32) | w1 if big else (w1 << 32) | w0
        p += 4 + ((length + 3) & ~3)
    if_units[n_if] = units
    if_offset[n_if] = offset
    return FRAME_OK


@nb.njit(cache=True)
def _frame_pcapng(buf, pos, end, state, if_link, if_units, if_offset, last_time,
                  off, caplen, link, time):
    """state = [big-endian section, interfaces described]; last_time[0] dates simple packets."""
    n = 0
    while n < off.shape[0] and pos + 12 <= end:
        if _u32(buf, pos, False) == PCAPNG_SHB:
            if _u32(buf, pos + 8, False) == PCAPNG_BYTE_ORDER:
                state[0] = 0
            elif _u32(buf, pos + 8, True) == PCAPNG_BYTE_ORDER:
                state[0] = 1
            else:
                return n, pos, FRAME_BAD_MAGIC
        big = state[0] == 1
        btype = _u32(buf, pos, big)
        blen = _u32(buf, pos + 4, big)
        if blen < 12 or blen % 4:
            return n, pos, FRAME_CORRUPT
        if pos + blen > end:
            break
        body = pos + 8
        body_end = pos + blen - 4
        iface, ts, cl, data = -1, np.int64(0), np.int64(0), np.int64(0)
        if btype == PCAPNG_SHB:
            state[1] = 0
        elif btype == PCAPNG_IDB:
            if body + 8 > body_end:
                return n, pos, FRAME_CORRUPT
            status = _interface(buf, body, body_end, big, state[1], if_link, if_units, if_offset)
            if status != FRAME_OK:
                return n, pos, status
            state[1] += 1
        elif btype == PCAPNG_EPB or btype == PCAPNG_OPB:
            if body + 20 > body_end:
                return n, pos, FRAME_CORRUPT
            iface = _u32(buf, body, big) if btype == PCAPNG_EPB else _u16(buf, body, big)
            ts = (_u32(buf, body + 4, big) << 32) | _u32(buf, body + 8, big)
            cl = _u32(buf, body + 12, big)
            data = body + 20
            if data + cl > body_end:
                return n, pos, FRAME_CORRUPT
        elif btype == PCAPNG_SPB:
            if body + 4 > body_end:
                return n, pos, FRAME_CORRUPT
            iface = 0
            data = body + 4
            cl = min(_u32(buf, body, big), body_end - data)
        if iface >= 0:
            if iface >= state[1]:
                return n, pos, FRAME_BAD_INTERFACE
            if btype != PCAPNG_SPB:
                u = if_units[iface]
                last_time[0] = (ts // u + if_offset[iface]) + (ts % u) / u
            off[n] = data
            caplen[n] = cl
            link[n] = if_link[iface]
            time[n] = last_time[0]
            n += 1
        pos += blen
    return n, pos, FRAME_OK


def frame_pcapng(buf: np.ndarray, pos: int, end: int, state: np.ndarray, if_link: np.ndarray,
                 if_units: np.ndarray, if_offset: np.ndarray, last_time: np.ndarray, max_n: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Walk pcapng blocks in buf[pos:end]: (offset, caplen, link, time, next pos, framing status).

    The section state, interface tables and last time persist between calls
    (they are updated in place). A simple packet block has no time of its own
    and takes the time of the packet before it.
    """
    off = np.empty(max_n, np.int64)
    caplen = np.empty(max_n, np.int64)
    link = np.empty(max_n, np.int64)
    time = np.empty(max_n, np.float64)
    n, pos, status = _frame_pcapng(buf, pos, end, state, if_link, if_units, if_offset, last_time,
                                   off, caplen, link, time)
    return off[:n], caplen[:n], link[:n], time[:n], pos, status


@nb.njit(cache=True)
def _ethertype_version(et):
    if et == ETH_IPV4:
        return 4
    if et == ETH_IPV6:
        return 6
    return -NON_IP


@nb.njit(cache=True)
def _network(buf, p, e, link):
    """(start of the IP header, IP version 4/6, or 0 to read it from the header); -status on failure."""
    if link == LINK_ETHERNET or link == LINK_SLL or link == LINK_SLL2:
        if link == LINK_ETHERNET:
            hdr, at = 14, 12
        elif link == LINK_SLL:
            hdr, at = 16, 14
        else:
            hdr, at = 20, 0
        if p + hdr > e:
            return 0, -TRUNCATED
        et = _be16(buf, p + at)
        q = p + hdr
        while et == ETH_VLAN[0] or et == ETH_VLAN[1] or et == ETH_VLAN[2]:
            if q + 4 > e:
                return 0, -TRUNCATED
            et = _be16(buf, q + 2)
            q += 4
        return q, _ethertype_version(et)
    if link == LINK_RAW or link == LINK_RAW_BSD:
        return p, 0
    if link == LINK_IPV4:
        return p, 4
    if link == LINK_IPV6:
        return p, 6
    if link == LINK_NULL or link == LINK_LOOP:
        if p + 4 > e:
            return 0, -TRUNCATED
        family = _u32(buf, p, False)
        if family > 0xFFFF:  # written in the other byte order
            family = _u32(buf, p, True)
        if family == 2:
            return p + 4, 4
        if family == 24 or family == 28 or family == 30:
            return p + 4, 6
        return 0, -NON_IP
    return 0, -UNSUPPORTED_LINK


@nb.njit(cache=True)
def _ports(buf, l4, e, proto, first_fragment):
    """(status, source port, destination port) of the TCP/UDP header at l4; 0s for other protocols."""
    if (proto == PROTO_TCP or proto == PROTO_UDP) and first_fragment:
        if l4 + 4 > e:
            return TRUNCATED, 0, 0
        return OK, _be16(buf, l4), _be16(buf, l4 + 2)
    return OK, 0, 0


# The IP decoders return (status, src hi, src lo, dst hi, dst lo, protocol, sport, dport):
# scalars rather than writes into the caller's arrays, which numba makes far slower.

@nb.njit(cache=True)
def _ipv4(buf, q, e):
    z = np.uint64(0)
    if q + 20 > e:
        return TRUNCATED, z, z, z, z, 0, 0, 0
    ihl = np.int64(buf[q] & 0x0F) * 4
    if buf[q] >> 4 != 4 or ihl < 20:
        return MALFORMED_IP, z, z, z, z, 0, 0, 0
    if q + ihl > e:
        return TRUNCATED, z, z, z, z, 0, 0, 0
    total = _be16(buf, q + 2)
    if total >= ihl:  # zero with segmentation offload: trust the capture length
        e = min(e, q + total)
    proto = np.int64(buf[q + 9])
    status, sport, dport = _ports(buf, q + ihl, e, proto, (_be16(buf, q + 6) & 0x1FFF) == 0)
    return (status, z, np.uint64(_u32(buf, q + 12, True)), z, np.uint64(_u32(buf, q + 16, True)),
            proto, sport, dport)


@nb.njit(cache=True)
def _ipv6(buf, q, e):
    z = np.uint64(0)
    if q + 40 > e:
        return TRUNCATED, z, z, z, z, 0, 0, 0
    if buf[q] >> 4 != 6:
        return MALFORMED_IP, z, z, z, z, 0, 0, 0
    payload = _be16(buf, q + 4)
    if payload > 0:  # zero for jumbograms
        e = min(e, q + 40 + payload)
    nh = np.int64(buf[q + 6])
    p = q + 40
    first_fragment = True
    for _ in range(MAX_IP6_HEADERS):
        if nh == IP6_FRAGMENT:
            if p + 8 > e:
                return TRUNCATED, z, z, z, z, 0, 0, 0
            first_fragment = (_be16(buf, p + 2) >> 3) == 0
            nh = np.int64(buf[p])
            p += 8
            if not first_fragment:
                break
        elif nh == IP6_HOPOPTS or nh == IP6_ROUTING or nh == IP6_DSTOPTS or nh == IP6_AH:
            if p + 2 > e:
                return TRUNCATED, z, z, z, z, 0, 0, 0
            size = (np.int64(buf[p + 1]) + 2) * 4 if nh == IP6_AH else (np.int64(buf[p + 1]) + 1) * 8
            nh = np.int64(buf[p])
            p += size
        else:
            break
    status, sport, dport = _ports(buf, p, e, nh, first_fragment)
    return (status, _be64(buf, q + 8), _be64(buf, q + 16), _be64(buf, q + 24), _be64(buf, q + 32),
            nh, sport, dport)


@nb.njit(cache=True)
def _decode(buf, off, caplen, link, time, first_record, status, start, o_time, o_sfam, o_shi, o_slo,
            o_dfam, o_dhi, o_dlo, o_proto, o_sport, o_dport, o_record):
    j = start
    for k in range(off.shape[0]):
        p = off[k]
        e = p + caplen[k]
        q, version = _network(buf, p, e, link[k])
        if version == 0:
            if q >= e:
                status[k] = TRUNCATED
                continue
            version = buf[q] >> 4
            if version != 4 and version != 6:
                status[k] = MALFORMED_IP
                continue
        if version == 4:
            st, shi, slo, dhi, dlo, proto, sport, dport = _ipv4(buf, q, e)
        elif version == 6:
            st, shi, slo, dhi, dlo, proto, sport, dport = _ipv6(buf, q, e)
        else:
            status[k] = -version
            continue
        status[k] = st
        if st != OK:
            continue
        o_time[j] = time[k]
        o_sfam[j] = version
        o_shi[j] = shi
        o_slo[j] = slo
        o_dfam[j] = version
        o_dhi[j] = dhi
        o_dlo[j] = dlo
        o_proto[j] = proto
        o_sport[j] = sport
        o_dport[j] = dport
        o_record[j] = first_record + k
        j += 1
    return j


# Output columns of decode_packets, in order, with their types.
DECODED = (("time", np.float64), ("src_fam", np.uint8), ("src_hi", np.uint64), ("src_lo", np.uint64),
           ("dst_fam", np.uint8), ("dst_hi", np.uint64), ("dst_lo", np.uint64), ("protocol", np.int16),
           ("src_port", np.int32), ("dst_port", np.int32), ("record", np.int64))


def decoded_arrays(n: int) -> tuple[np.ndarray, ...]:
    """Empty output columns (see DECODED) for n packets."""
    return tuple(np.empty(n, dtype) for _, dtype in DECODED)


def decode_packets(buf: np.ndarray, off: np.ndarray, caplen: np.ndarray, link: np.ndarray, time: np.ndarray,
                   first_record: int, out: tuple[np.ndarray, ...], start: int) -> tuple[int, np.ndarray]:
    """Decode framed packets, appending the decodable ones to the ``out`` columns from row ``start``.

    Returns the row after the last one written and each framed packet's
    status (``OK`` or why it was skipped). Packet k is record
    ``first_record + k``; ports are 0 for protocols other than TCP and UDP
    and for non-first fragments.
    """
    status = np.empty(off.shape[0], np.int8)
    end = _decode(buf, off, caplen, link, time, first_record, status, start, *out)
    return end, status
