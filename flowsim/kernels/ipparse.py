"""Parse IPv4/IPv6 text held in an Arrow-style (bytes, offsets) buffer.

An address is three numbers: family (4 or 6; 0 when the text is not an address),
the high and the low 64 bits. IPv4 keeps its 32 bits in the low word.
"""
import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always")
def _hexval(c):
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@nb.njit(cache=True)
def _parse_v4(data, start, end):
    """Dotted quad in data[start:end] -> (ok, value)."""
    value = 0
    parts = 0
    i = start
    while parts < 4:
        if i >= end:
            return False, 0
        octet = 0
        digits = 0
        while i < end and 48 <= data[i] <= 57:
            octet = octet * 10 + (data[i] - 48)
            digits += 1
            i += 1
        if digits == 0 or digits > 3 or octet > 255:
            return False, 0
        if digits > 1 and data[i - digits] == 48:
            return False, 0
        value = (value << 8) | octet
        parts += 1
        if parts < 4:
            if i >= end or data[i] != 46:
                return False, 0
            i += 1
    if i != end:
        return False, 0
    return True, value


@nb.njit(cache=True)
def _parse_v6(data, start, end, groups):
    """IPv6 text in data[start:end] into 8 16-bit groups; returns ok."""
    n = 0
    gap = -1
    i = start
    if end - start >= 2 and data[i] == 58 and data[i + 1] == 58:
        gap = 0
        i += 2
        if i == end:
            for k in range(8):
                groups[k] = 0
            return True
    elif i < end and data[i] == 58:
        return False
    while i < end:
        if n >= 8:
            return False
        j = i
        val = 0
        while j < end and j - i < 5:
            h = _hexval(data[j])
            if h < 0:
                break
            val = val * 16 + h
            j += 1
        if j < end and data[j] == 46:
            if n > 6:
                return False
            ok, v4 = _parse_v4(data, i, end)
            if not ok:
                return False
            groups[n] = (v4 >> 16) & 0xFFFF
            groups[n + 1] = v4 & 0xFFFF
            n += 2
            i = end
            break
        if j == i or j - i > 4:
            return False
        groups[n] = val
        n += 1
        i = j
        if i == end:
            break
        if data[i] != 58:
            return False
        i += 1
        if i < end and data[i] == 58:
            if gap >= 0:
                return False
            gap = n
            i += 1
            if i == end:
                break
        elif i == end:
            return False
    if gap < 0:
        if n != 8:
            return False
    else:
        if n > 7:
            return False
        move = n - gap
        for k in range(move):
            groups[7 - k] = groups[n - 1 - k]
        for k in range(gap, 8 - move):
            groups[k] = 0
    return True


@nb.njit(cache=True, inline="always")
def _trimmed(data, s, e):
    """data[s:e] without leading and trailing spaces, as (start, end)."""
    while s < e and data[s] == 32:
        s += 1
    while e > s and data[e - 1] == 32:
        e -= 1
    return s, e


@nb.njit(cache=True, nogil=True)
def parse_ips(data, offsets, valid):
    """Parse every string i = data[offsets[i]:offsets[i+1]] where valid[i]."""
    n = offsets.shape[0] - 1
    fam = np.zeros(n, np.uint8)
    hi = np.zeros(n, np.uint64)
    lo = np.zeros(n, np.uint64)
    groups = np.zeros(8, np.int64)
    for r in range(n):
        if not valid[r]:
            continue
        s, e = _trimmed(data, offsets[r], offsets[r + 1])
        is6 = False
        for k in range(s, e):
            if data[k] == 58:
                is6 = True
                break
        if is6:
            if _parse_v6(data, s, e, groups):
                h = np.uint64(0)
                l = np.uint64(0)
                for k in range(4):
                    h = (h << np.uint64(16)) | np.uint64(groups[k])
                    l = (l << np.uint64(16)) | np.uint64(groups[k + 4])
                fam[r] = 6
                hi[r] = h
                lo[r] = l
        else:
            ok, v = _parse_v4(data, s, e)
            if ok:
                fam[r] = 4
                lo[r] = np.uint64(v)
    return fam, hi, lo


@nb.njit(cache=True, nogil=True)
def parse_ints(data, offsets, valid, lo_bound, hi_bound):
    """Parse decimal integers; out-of-range or non-numeric text gives ok=False."""
    n = offsets.shape[0] - 1
    out = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    for r in range(n):
        if not valid[r]:
            continue
        s, e = _trimmed(data, offsets[r], offsets[r + 1])
        if s == e or e - s > 18:
            continue
        v = 0
        good = True
        for k in range(s, e):
            c = data[k]
            if c < 48 or c > 57:
                good = False
                break
            v = v * 10 + (c - 48)
        if good and lo_bound <= v <= hi_bound:
            out[r] = v
            ok[r] = True
    return out, ok
