"""The hand-written vector intrinsics against obvious scalar versions."""
from __future__ import annotations

import numba as nb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsim.kernels.intrinsics import BLOCK_LANES, block_hits, trailing_zeros

U32 = st.integers(0, 2**32 - 1)


@nb.njit
def _block_hits(words, base, peer, port, protocol):
    return block_hits(words, base, peer, port, protocol)


@nb.njit
def _trailing_zeros(x):
    return trailing_zeros(x)


def scalar_hits(words: np.ndarray, base: int, peer: int, port: int, protocol: int) -> int:
    """Row by row, the test the layout documents."""
    out = 0
    for lane in range(BLOCK_LANES):
        plo, pspan, ports, other = (int(words[base + k * BLOCK_LANES + lane]) for k in range(4))
        ok = ((peer - plo) % 2**32 <= pspan and (port - (ports & 0xFFFF)) % 2**32 <= ports >> 16
              and (protocol - (other & 0xFF)) % 2**32 <= (other >> 8) & 0xFF and other >= 1 << 24)
        out |= ok << lane
    return out


@st.composite
def blocks(draw):
    """Two blocks of rows whose ranges often contain the packet drawn beside them."""
    peer, port, protocol = draw(U32), draw(st.integers(0, 65535)), draw(st.integers(0, 255))
    words = np.zeros(8 * BLOCK_LANES, dtype=np.uint32)
    for block in range(2):
        for lane in range(BLOCK_LANES):
            near = draw(st.booleans())
            plo = (peer - draw(st.integers(0, 3))) % 2**32 if near else draw(U32)
            dlo = max(0, port - draw(st.integers(0, 2))) if near else draw(st.integers(0, 65535))
            prlo, prspan = draw(st.sampled_from([(protocol, 0), (0, 255), ((protocol + 1) % 256, 0)]))
            at = block * 4 * BLOCK_LANES + lane
            words[at] = plo
            words[at + BLOCK_LANES] = draw(st.sampled_from([0, 1, 2, 5, 2**32 - 1]))
            words[at + 2 * BLOCK_LANES] = dlo | (draw(st.sampled_from([0, 1, 3, 65535 - dlo])) << 16)
            words[at + 3 * BLOCK_LANES] = prlo | (prspan << 8) | (draw(st.integers(0, 15)) << 16) | (draw(st.booleans()) << 24)
    return words, peer, port, protocol


@settings(max_examples=300, deadline=None)
@given(blocks())
def test_block_hits_equals_row_by_row(case):
    words, peer, port, protocol = case
    for base in (0, 4 * BLOCK_LANES):
        assert _block_hits(words, np.uint64(base), np.uint32(peer), np.uint32(port), np.uint32(protocol)) \
            == scalar_hits(words, base, peer, port, protocol)


@given(st.integers(1, 2**32 - 1))
def test_trailing_zeros(x):
    assert _trailing_zeros(np.uint32(x)) == (x & -x).bit_length() - 1
