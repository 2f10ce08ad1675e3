"""The distinct-key counter must agree with numpy's sort-based unique."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsim.kernels.counting import count_keys


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 5), max_size=300))
def test_count_keys_equals_unique(values):
    keys = np.array(values, dtype=np.uint64)
    first, counts = count_keys(keys)
    uniq, ref_first, ref_counts = np.unique(keys, return_index=True, return_counts=True)
    order = np.argsort(ref_first)
    assert first.tolist() == ref_first[order].tolist()
    assert counts.tolist() == ref_counts[order].tolist()
    assert counts.sum() == len(keys)
