"""The packet classifier must agree exactly with a brute-force first-match linear scan."""
from __future__ import annotations

from pathlib import Path

import numba as nb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowsim.engine.classifier import build
from flowsim.io.classbench import read_rules, read_trace
from flowsim.kernels import classify as K
from flowsim.testing.oracles import linear_scan

DATA = Path(__file__).parents[1].parent / "shared" / "data" / "classbench"
MAXU = 0xFFFFFFFF


def _need(name):
    if not (DATA / name).exists():
        pytest.skip(f"ClassBench data not found at {DATA / name} (../shared/data/classbench)")
    return DATA / name


def _load(name):
    lo, hi = read_rules(_need(name))
    keys = read_trace(_need(name + "_trace"))
    return lo, hi, keys


def _boundary_keys(lo, hi, n, rng, p_boundary=0.85):
    """Packets biased to rule edges: lo-1, lo, hi, hi+1, and the extremes 0 and 2**32-1."""
    D = lo.shape[1]
    keys = rng.integers(0, MAXU + 1, (n, D), dtype=np.uint64)
    if lo.shape[0]:
        pick = rng.integers(0, lo.shape[0], n)
        cand = np.stack([lo[pick].astype(np.int64) - 1, lo[pick], hi[pick],
                         hi[pick].astype(np.int64) + 1,
                         np.zeros((n, D), np.int64), np.full((n, D), MAXU, np.int64)], axis=-1)
        which = rng.integers(0, 6, (n, D))
        edge = np.take_along_axis(cand, which[..., None], -1)[..., 0]
        use = rng.random((n, D)) < p_boundary
        keys = np.where(use, np.clip(edge, 0, MAXU), keys)
    return np.ascontiguousarray(keys.astype(np.uint32))


def _check(lo, hi, keys, set_id=None, n_sets=1, key_set=None, **kw):
    c = build(lo, hi, set_id, n_sets, **kw)
    got = c.lookup(keys, key_set)
    ref = linear_scan(lo, hi, keys, set_id, key_set)
    if not np.array_equal(got, ref):
        bad = np.flatnonzero(got != ref)[:5]
        raise AssertionError(f"{len(np.flatnonzero(got != ref))} mismatches, e.g. packets {bad.tolist()}: "
                             f"got {got[bad].tolist()} want {ref[bad].tolist()}")
    return c, got


# --- ClassBench --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["acl1_1k", "fw1_1k", "ipc1_1k"])
def test_classbench_1k_whole_trace(name):
    lo, hi, keys = _load(name)
    c, got = _check(lo, hi, keys)
    assert (got >= 0).all()               # every ClassBench trace header matches its rule
    rng = np.random.default_rng(1)
    _check(lo, hi, _boundary_keys(lo, hi, 20_000, rng))


@pytest.mark.parametrize("name", ["acl1_10k", "fw1_10k", "ipc1_10k"])
def test_classbench_10k_whole_trace(name):
    lo, hi, keys = _load(name)
    c, got = _check(lo, hi, keys)
    rng = np.random.default_rng(2)
    _check(lo, hi, _boundary_keys(lo, hi, 10_000, rng))


def test_classbench_100k_sample():
    lo, hi, keys = _load("acl1_100k")
    c = build(lo, hi)
    got = c.lookup(keys)
    rng = np.random.default_rng(3)
    sample = rng.choice(len(keys), 20_000, replace=False)
    ref = linear_scan(lo, hi, keys[sample])
    assert np.array_equal(got[sample], ref)
    probe = _boundary_keys(lo, hi, 5_000, rng)
    assert np.array_equal(c.lookup(probe), linear_scan(lo, hi, probe))


def test_build_100k_fast_and_small():
    lo, hi = read_rules(_need("acl1_100k"))
    build(lo[:2000], hi[:2000])           # warm the JIT
    c = build(lo, hi)
    assert c.build_seconds < 2.0 * 3      # < 2 s on an idle machine; slack for a busy CI box
    assert c.nbytes < 1 << 30
    s = c.stats()
    assert s["rules"] == len(lo) and s["nodes"] > 0 and s["bytes"] == c.nbytes


# --- random rule sets (hypothesis) ---------------------------------------------------------

@st.composite
def rule_sets(draw):
    D = draw(st.integers(1, 11))
    n = draw(st.integers(0, 120))
    n_sets = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lo = np.empty((n, D), np.uint64)
    hi = np.empty((n, D), np.uint64)
    for d in range(D):
        kind = draw(st.sampled_from(["prefix", "port", "wide", "exact", "few"]))
        if kind == "prefix":
            a = rng.integers(0, MAXU + 1, n, dtype=np.uint64)
            ln = rng.integers(0, 33, n).astype(np.uint64)
            mask = (np.uint64(MAXU) << (np.uint64(32) - ln)) & np.uint64(MAXU)
            lo[:, d] = a & mask
            hi[:, d] = lo[:, d] | (~mask & np.uint64(MAXU))
        elif kind == "port":
            a = rng.integers(0, 65536, n).astype(np.uint64)
            lo[:, d] = a
            hi[:, d] = np.minimum(a + rng.choice([0, 0, 1, 100, 65535], n).astype(np.uint64), 65535)
        elif kind == "wide":
            a = rng.integers(0, MAXU + 1, n, dtype=np.uint64)
            b = rng.integers(0, MAXU + 1, n, dtype=np.uint64)
            lo[:, d], hi[:, d] = np.minimum(a, b), np.maximum(a, b)
        elif kind == "exact":
            lo[:, d] = hi[:, d] = rng.integers(0, MAXU + 1, n, dtype=np.uint64)
        else:  # few distinct small values: heavy overlap
            a = rng.integers(0, 4, n).astype(np.uint64)
            lo[:, d] = a
            hi[:, d] = a + rng.integers(0, 3, n).astype(np.uint64)
    set_id = rng.integers(0, n_sets, n).astype(np.int32)
    return lo.astype(np.uint32), hi.astype(np.uint32), set_id, n_sets, seed


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), st.sampled_from([2, 8, 16]))
def test_random_rule_sets(rs, binth):
    lo, hi, set_id, n_sets, seed = rs
    rng = np.random.default_rng(seed + 1)
    keys = _boundary_keys(lo, hi, 600, rng)
    key_set = rng.integers(0, n_sets, len(keys)).astype(np.int32)
    _check(lo, hi, keys, set_id, n_sets, key_set, binth=binth)


# --- adversarial sets -----------------------------------------------------------------------

def _five(n):
    return np.zeros((n, 5), np.uint32), np.full((n, 5), MAXU, np.uint32)


def test_all_wildcards():
    lo, hi = _five(500)
    keys = _boundary_keys(lo, hi, 2000, np.random.default_rng(4))
    c, got = _check(lo, hi, keys)
    assert (got == 0).all()


def test_all_exact_and_duplicates():
    rng = np.random.default_rng(5)
    pts = rng.integers(0, 50, (3000, 5)).astype(np.uint32)    # many duplicate rows
    keys = np.concatenate([pts[rng.integers(0, 3000, 3000)], _boundary_keys(pts, pts, 3000, rng)])
    _check(pts, pts.copy(), keys)


def test_heavy_overlap_nested():
    # 2000 nested boxes around one point, in random priority order: every packet near the
    # centre matches hundreds of rows and the answer is the smallest one
    rng = np.random.default_rng(6)
    n = 2000
    w = rng.integers(0, 1 << 20, (n, 5)).astype(np.int64)
    centre = np.int64(1 << 31)
    lo = (centre - w).astype(np.uint32)
    hi = (centre + w[:, ::-1]).astype(np.uint32)
    keys = np.concatenate([_boundary_keys(lo, hi, 4000, rng),
                           (centre + rng.integers(-1000, 1000, (2000, 5))).astype(np.uint32)])
    _check(lo, hi, keys)


def test_many_rules_at_one_address():
    # distinct priorities at one address: src/dst exact, ports and protocol vary
    rng = np.random.default_rng(7)
    n = 3000
    lo = np.zeros((n, 5), np.uint32)
    hi = np.zeros((n, 5), np.uint32)
    lo[:, 0] = hi[:, 0] = 0x0A000001
    lo[:, 1] = hi[:, 1] = 0xC0A80001
    a = rng.integers(0, 65536, (n, 2))
    b = np.minimum(a + rng.integers(0, 3000, (n, 2)), 65535)
    lo[:, 2:4], hi[:, 2:4] = a, b
    lo[:, 4] = rng.choice([0, 6, 17], n)
    hi[:, 4] = np.where(lo[:, 4] == 0, 255, lo[:, 4])
    keys = _boundary_keys(lo, hi, 6000, rng, p_boundary=1.0)
    keys[:, 0], keys[:, 1] = 0x0A000001, 0xC0A80001
    c, got = _check(lo, hi, keys)
    assert (got >= 0).mean() > 0.1


def test_wildcards_crossing_fields():
    # the firewall pattern that blows up a single decision tree: rows wild in src but exact in
    # dst interleaved with rows exact in src but wild in dst
    rng = np.random.default_rng(8)
    n = 4000
    lo, hi = _five(n)
    v = rng.integers(0, MAXU + 1, n, dtype=np.uint64).astype(np.uint32)
    half = rng.random(n) < 0.5
    lo[half, 0] = hi[half, 0] = v[half]
    lo[~half, 1] = hi[~half, 1] = v[~half]
    lo[:, 3] = hi[:, 3] = rng.integers(0, 100, n)
    keys = _boundary_keys(lo, hi, 6000, rng)
    c, _ = _check(lo, hi, keys)
    assert c.build_seconds < 10 and c.nbytes < 64 << 20


def test_empty_and_single_rule_sets():
    lo = np.zeros((0, 5), np.uint32)
    c = build(lo, lo.copy())
    assert c.n_rules == 0
    assert (c.lookup(np.zeros((10, 5), np.uint32)) == -1).all()
    assert c.lookup(np.zeros((0, 5), np.uint32)).shape == (0,)
    one_lo = np.array([[5, 0, 0, 80, 6]], np.uint32)
    one_hi = np.array([[5, MAXU, 65535, 80, 6]], np.uint32)
    keys = _boundary_keys(one_lo, one_hi, 1000, np.random.default_rng(9), p_boundary=1.0)
    _check(one_lo, one_hi, keys)


def test_many_sets_some_empty():
    # thousands of small independent sets (like one per ENI group-set), ids with no rows
    rng = np.random.default_rng(10)
    n_sets = 3000
    sizes = rng.integers(0, 40, n_sets)
    sizes[rng.random(n_sets) < 0.2] = 0
    set_id = np.repeat(np.arange(n_sets), sizes).astype(np.int32)
    rng.shuffle(set_id)                   # rows of one set need not be contiguous
    n = len(set_id)
    lo, hi = _five(n)
    lo[:, 1] = rng.integers(0, 1 << 16, n) << 16
    hi[:, 1] = lo[:, 1] | rng.choice([0, 255, 0xFFFF], n)
    lo[:, 3] = rng.integers(0, 1024, n)
    hi[:, 3] = lo[:, 3] + rng.choice([0, 0, 10], n)
    keys = _boundary_keys(lo, hi, 20_000, rng)
    key_set = rng.integers(0, n_sets, len(keys)).astype(np.int32)
    c, got = _check(lo, hi, keys, set_id, n_sets, key_set)
    assert c.n_sets == n_sets
    assert (got[sizes[key_set] == 0] == -1).all()


def test_priority_is_row_order():
    lo = np.array([[10, 0], [0, 0], [10, 5]], np.uint32)
    hi = np.array([[20, 9], [MAXU, MAXU], [10, 5]], np.uint32)
    c = build(lo, hi)
    keys = np.array([[10, 5], [15, 3], [21, 0], [10, 10]], np.uint32)
    assert c.lookup(keys).tolist() == [0, 0, 1, 1]
    c2 = build(lo[::-1], hi[::-1])
    assert c2.lookup(keys).tolist() == [0, 1, 1, 1]


# --- API ------------------------------------------------------------------------------------

def test_api_and_validation():
    lo = np.array([[1, 2], [3, 4]], np.uint32)
    hi = np.array([[1, 9], [8, 4]], np.uint32)
    c = build(lo, hi, np.array([0, 1]), 2)
    keys = np.array([[1, 5], [4, 4], [1, 5]], np.uint32)
    sets = np.array([0, 1, 1])
    out = np.full(3, 99, np.int32)
    res = c.lookup(keys, sets, out=out)
    assert res is out and out.tolist() == [0, 1, -1]
    assert c.lookup(keys.astype(np.int64), sets.astype(np.int64)).tolist() == [0, 1, -1]
    assert c.lookup(np.asfortranarray(keys), sets).tolist() == [0, 1, -1]
    assert c.n_rules == 2 and c.n_sets == 2 and c.nbytes > 0 and c.build_seconds >= 0
    assert isinstance(c.stats(), dict)
    with pytest.raises(ValueError):
        c.lookup(keys)                    # several sets: set ids required
    with pytest.raises(ValueError):
        c.lookup(keys, np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        c.lookup(keys[:, :1], sets)
    with pytest.raises(ValueError):
        build(hi, lo)                     # lo > hi
    with pytest.raises(ValueError):
        build(lo, hi, np.array([0, 5]), 2)
    with pytest.raises(ValueError):
        build(lo.astype(np.int64) - 2, hi)


@nb.njit(parallel=True)
def _external_kernel(arrays, keys, set_ids, dims, out):
    set_ptr, part_min, part_tab, tables, nodes, leaves = arrays
    for p in nb.prange(keys.shape[0]):
        out[p] = K.lookup_one(set_ptr, part_min, part_tab, tables, nodes, leaves, keys, p, dims,
                               set_ids[p])
    return out


def test_lookup_one_callable_from_other_kernels():
    rng = np.random.default_rng(11)
    lo, hi = _five(300)
    lo[:, 1] = rng.integers(0, 1 << 24, 300) << 8
    hi[:, 1] = lo[:, 1] + 255
    c = build(lo, hi)
    keys = _boundary_keys(lo, hi, 3000, rng)
    out = np.empty(len(keys), np.int32)
    _external_kernel(c.arrays, keys, np.zeros(len(keys), np.int32), c.dims, out)
    assert np.array_equal(out, c.lookup(keys))


def test_no_rules_matches_nothing():
    c = build(np.zeros((0, 5), np.uint32), np.zeros((0, 5), np.uint32), np.zeros(0, np.int32), 3)
    keys = np.array([[0, 0, 0, 0, 0], [2**32 - 1] * 5], np.uint32)
    assert c.lookup(keys, np.array([0, 2], np.int32)).tolist() == [-1, -1]
