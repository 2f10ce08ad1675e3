"""The distinct-key counter must agree with numpy's sort-based unique."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsim.replay import _distinct_counts


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 5), max_size=300))
def test_distinct_counts_equal_unique(values):
    keys = np.array(values, dtype=np.uint64)
    first, counts = _distinct_counts(keys)
    uniq, ref_first, ref_counts = np.unique(keys, return_index=True, return_counts=True)
    assert dict(zip(first.tolist(), counts.tolist())) == dict(zip(ref_first.tolist(), ref_counts.tolist()))
    assert counts.sum() == len(keys)
