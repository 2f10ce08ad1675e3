"""The chunk tally must agree with counting by numpy; the flow counter with a Counter of tuples, whether rows
come once or weighted; pruning it must keep the most counted flows, each still found where counting looks."""
from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsim.kernels.counting import FLOW_COUNT, TALLIES, add_flows, keep_most_counted, tally

FIELDS = ("fam", "shi", "slo", "dhi", "dlo", "proto", "dport")
DTYPES = (np.uint8, np.uint64, np.uint64, np.uint64, np.uint64, np.int16, np.int32)
flow = st.tuples(st.sampled_from([4, 6]), st.integers(0, 2) | st.integers(0, 2**64 - 1), st.integers(0, 3),
                 st.integers(0, 2**64 - 1) | st.integers(0, 1), st.integers(0, 3), st.sampled_from([1, 6, 17]),
                 st.integers(0, 65535))


def counted(arena: np.ndarray, used: int) -> Counter:
    return Counter({tuple(int(row[f]) for f in FIELDS): int(row["count"]) for row in arena[:used]})


@settings(max_examples=80, deadline=None)
@given(st.lists(flow, max_size=200), st.lists(st.integers(1, 10**12), min_size=200, max_size=200), st.data())
def test_counts_equal_a_counter(flows, weights, data):
    columns = [np.array([f[k] for f in flows], dtype=t) for k, t in enumerate(DTYPES)]
    rows = np.array(data.draw(st.lists(st.integers(0, max(0, len(flows) - 1)), max_size=len(flows)))
                    if flows else [], np.int64)
    directory, arena = np.zeros(1024, np.uint64), np.zeros(512, FLOW_COUNT)
    used = add_flows(rows, np.zeros(0, np.int64), *columns, directory, arena, 0)
    expected = Counter(flows[i] for i in rows.tolist())
    assert counted(arena, used) == expected and used == len(expected)
    # weighted rows add their weight, onto what is there
    w = np.array(weights[: len(rows)], np.int64)
    used = add_flows(rows, w, *columns, directory, arena, used)
    for i, weight in zip(rows.tolist(), w.tolist()):
        expected[flows[i]] += weight
    assert counted(arena, used) == expected and used == len(expected)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(flow, st.integers(1, 5)), max_size=31, unique_by=lambda fw: fw[0]), st.integers(0, 31),
       st.sampled_from([32, 64]))
def test_pruning_keeps_the_most_counted_flows_where_they_are_found(weighted, keep, slots):
    # directories at least twice the arena, small enough that probe runs wrap past their last slot
    flows = [f for f, _ in weighted][: slots // 2]
    columns = [np.array([f[k] for f in flows], dtype=t) for k, t in enumerate(DTYPES)]
    weights = np.array([w for _, w in weighted][: len(flows)], np.int64)
    directory, arena = np.zeros(slots, np.uint64), np.zeros(slots // 2, FLOW_COUNT)
    rows = np.arange(len(flows), dtype=np.int64)
    used = add_flows(rows, weights, *columns, directory, arena, 0)
    before = counted(arena, used)
    used = keep_most_counted(directory, arena, used, keep)
    after = counted(arena, used)
    assert used == len(after) == min(keep, len(before))
    assert all(before[f] == c for f, c in after.items())
    # the most counted stay, and among equal counts those counted first, in the order they came
    expected = sorted(range(len(flows)), key=lambda k: (-weights[k], k))[: len(after)]
    assert [tuple(int(row[f]) for f in FIELDS) for row in arena[:used]] == [flows[k] for k in sorted(expected)]
    # every kept flow is reachable: counting it again by zero adds an entry only for the dropped ones
    dropped = len(before) - len(after)
    assert add_flows(rows, np.zeros(len(rows), np.int64), *columns, directory, arena, used) == used + dropped
    assert Counter({f: c for f, c in counted(arena, used + dropped).items() if c}) == after


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 3), st.booleans(), st.integers(-1, 6),
                          st.integers(-1, 6)), max_size=60))
def test_tally_equals_counting_by_numpy(records):
    valid, timed, verdict, stateful, egress, ingress = (np.array(c, dtype=t) for c, t in zip(
        zip(*records) if records else [[]] * 6, (bool, bool, np.int8, bool, np.int32, np.int32)))
    counts, hits, denied = np.zeros(len(TALLIES), np.int64), np.zeros(8, np.int64), np.empty(len(valid), np.int64)
    hits[3] = 5  # hits add to what is there
    n = tally(valid, timed, verdict, stateful, egress, ingress, counts, hits, denied)
    v = verdict[valid]
    assert counts.tolist() == [int(valid.sum()), int((v == 0).sum()), int((v == 1).sum()), int((v == 2).sum()),
                               int(stateful[valid].sum()), int((valid & ~timed).sum())]
    expected = np.bincount(egress[valid] + 1, minlength=8) + np.bincount(ingress[valid] + 1, minlength=8)
    expected[3] += 5
    assert hits.tolist() == expected.tolist()
    assert denied[:n].tolist() == np.flatnonzero(valid & (verdict == 1)).tolist()
