"""Exact first-match packet classification over ranges, at the speed of C classifiers.

``build(lo, hi, set_id, n_sets)`` compiles rule rows into a flat structure (see
:mod:`flowsim.kernels.classify` for the layout); ``Classifier.lookup(keys, set_ids)``
returns, for each packet, the smallest row index of its set whose ranges all contain
the packet's fields, or -1.  The result is identical to a first-match linear scan.

Design (chosen by measurement on ClassBench, see ``bench/bench_classbench.py``):

1. Rows of each set are partitioned by which of the "partition dimensions" (by default
   the two widest-domain dimensions with most narrow ranges: source and destination
   address for 5-tuples) are narrow (``hi - lo < 2**16``) and which are wide.
2. Each partition gets a direct-index table on the top bits of a dimension where all
   its rules are narrow, then per table cell a HyperSplit-style binary tree whose
   leaves hold up to ``binth`` rules, checked with SIMD compares.
3. Lookup searches the partitions of a packet's set in the order of their smallest
   row and stops early when no remaining partition can beat the best match.

The per-packet lookup ``kernels.classify.lookup_one`` takes only plain arrays, so
other numba kernels (the security-group engine) can inline it; ``Classifier.arrays``
are its structure arguments in order, and ``Classifier.dims`` its ``dims`` tuple.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..kernels import classify as K

__all__ = ["Classifier", "build"]

NARROW = 1 << 16          # a range narrower than this is "small" for partitioning
DEFAULT_BINTH = 16        # rules per leaf before a node is split
DEFAULT_WMAX = 2          # split cost: wmax * max(left, right) + left + right
MAX_TABLE_BITS = 16       # direct-index table size cap (2**16 cells)
MIN_TABLE_ROWS = 24       # partitions smaller than this get no table
MAX_DEPTH = 64            # tree depth cap (a node at the cap becomes a leaf)


@dataclass
class Classifier:
    """A compiled rule structure; see the module docstring."""

    n_rules: int
    n_dims: int
    n_sets: int
    build_seconds: float
    set_ptr: np.ndarray      # (n_sets + 1,) int64: partitions of set s are [set_ptr[s], set_ptr[s+1])
    part_min: np.ndarray     # (n_parts,) int32: smallest row of each partition
    part_tab: np.ndarray     # (n_parts, 6) int64: [tdim, tshift, tmax, toff, depth, tbase]
    tables: np.ndarray       # (n_cells, 2) int32: concatenated direct-index tables: [target, min row]
    nodes: np.ndarray        # (n_nodes, 8) uint32: 2-level tree nodes (kernels.classify.to_quad)
    leaves: np.ndarray       # uint32: leaf records (see kernels.classify)
    depths: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int32))
    part_rows: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))

    @property
    def dims(self) -> tuple:
        """The ``dims`` argument of the kernels: a tuple whose length is D."""
        return tuple(range(self.n_dims))

    @property
    def arrays(self) -> tuple:
        """Structure arguments of ``lookup_one`` / ``lookup_batch``, in order."""
        return (self.set_ptr, self.part_min, self.part_tab, self.tables, self.nodes, self.leaves)

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays))

    def stats(self) -> dict:
        nodes = self.nodes
        is_leaf = (nodes[:, 1] == 0) & (nodes[:, 5] == 0) & \
            (nodes[:, 6].astype(np.int64) == np.arange(len(nodes)) - 3)
        n_leaves = int(is_leaf.sum())
        entries = int(self.leaves[nodes[is_leaf, 7].astype(np.int64)].sum())
        return {
            "rules": self.n_rules,
            "dims": self.n_dims,
            "sets": self.n_sets,
            "partitions": int(len(self.part_min)),
            "partition_rows": [int(x) for x in self.part_rows[:16]],
            "table_cells": int(len(self.tables)),
            "empty_cells": int((self.tables[:, 1] == K.NO_ROW).sum()),
            "nodes": int(len(nodes)),
            "leaves": n_leaves,
            "leaf_entries": entries,
            "replication": float(entries / max(1, self.n_rules)),
            "max_depth": int(self.depths.max()) if self.depths.size else 0,
            "mean_depth": float(self.depths.mean()) if self.depths.size else 0.0,
            "bytes": self.nbytes,
            "build_seconds": self.build_seconds,
        }

    def lookup(self, keys: np.ndarray, set_ids: np.ndarray | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """First matching row for each packet (int32, -1 for none)."""
        keys = np.asarray(keys)
        if keys.ndim != 2 or keys.shape[1] != self.n_dims:
            raise ValueError(f"keys must have shape (n, {self.n_dims}), got {keys.shape}")
        if keys.dtype != np.uint32 or not keys.flags.c_contiguous:
            keys = np.ascontiguousarray(keys, dtype=np.uint32)
        n = keys.shape[0]
        if set_ids is None and self.n_sets != 1:
            raise ValueError("set_ids is required when the classifier has several sets")
        set_ids = _set_ids(set_ids, n, self.n_sets, "set_ids")
        if out is None:
            out = np.empty(n, np.int32)
        elif out.shape != (n,) or out.dtype != np.int32:
            raise ValueError(f"out must be an int32 array of shape ({n},)")
        if n:
            K.lookup_batch(*self.arrays, keys, set_ids, self.dims, out)
        return out


def _validate(lo, hi, set_id, n_sets):
    lo = np.asarray(lo)
    hi = np.asarray(hi)
    if lo.ndim != 2 or hi.shape != lo.shape:
        raise ValueError(f"lo and hi must be 2-D arrays of one shape, got {lo.shape} and {hi.shape}")
    if lo.shape[1] < 1:
        raise ValueError("rules need at least one dimension")
    for name, a in (("lo", lo), ("hi", hi)):
        if a.dtype != np.uint32:
            if a.size and (a.min() < 0 or a.max() > 0xFFFFFFFF):
                raise ValueError(f"{name} values must fit in uint32")
    lo = np.ascontiguousarray(lo, dtype=np.uint32)
    hi = np.ascontiguousarray(hi, dtype=np.uint32)
    if lo.size and np.any(lo > hi):
        bad = int(np.argwhere(lo > hi)[0, 0])
        raise ValueError(f"row {bad}: lo > hi")
    n = lo.shape[0]
    if set_id is None and n_sets < 1:
        raise ValueError("n_sets must be at least 1")
    return lo, hi, _set_ids(set_id, n, n_sets, "set_id")


def _set_ids(ids, n: int, n_sets: int, name: str) -> np.ndarray:
    """Checked int32 set ids for n rows or packets (all 0 when none are given)."""
    if ids is None:
        return np.zeros(n, np.int32)
    ids = np.asarray(ids)
    if ids.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {ids.shape}")
    if n and (ids.min() < 0 or ids.max() >= n_sets):
        raise ValueError(f"set ids must lie in [0, {n_sets})")
    return np.ascontiguousarray(ids, dtype=np.int32)


def _partition_dims(lo, hi, limit=2):
    """Wide-domain dimensions (values beyond 16 bits) with the most narrow rules."""
    if lo.shape[0] == 0:
        return []
    width = hi.astype(np.int64) - lo
    wide_domain = hi.max(axis=0) >= NARROW
    narrow = (width < NARROW).sum(axis=0)
    cand = [d for d in range(lo.shape[1]) if wide_domain[d] and 0 < narrow[d]]
    cand.sort(key=lambda d: -narrow[d])
    return sorted(cand[:limit])


def build(lo: np.ndarray, hi: np.ndarray, set_id: np.ndarray | None = None, n_sets: int = 1,
          *, binth: int = DEFAULT_BINTH, wmax: int = DEFAULT_WMAX,
          partition_dims: list[int] | None = None, part_order: str = "min",
          cells_per_rule: int = 4, max_table_bits: int = MAX_TABLE_BITS,
          merge_narrow: bool = True) -> Classifier:
    """Compile rule rows (inclusive uint32 ranges per dimension) into a Classifier.

    Row order is priority order; ``set_id`` (default all 0) names each row's rule set and
    lookups name the set a packet is classified against.  ``partition_dims`` overrides
    the dimensions used to separate narrow from wide rules.
    """
    t0 = time.perf_counter()
    lo, hi, set_id = _validate(lo, hi, set_id, n_sets)
    n, D = lo.shape
    if n == 0:  # every set empty: no partitions to visit, and no JIT to start
        return Classifier(
            n_rules=0, n_dims=D, n_sets=n_sets, build_seconds=time.perf_counter() - t0,
            set_ptr=np.zeros(n_sets + 1, np.int64), part_min=np.zeros(0, np.int32),
            part_tab=np.zeros((0, 6), np.int64), tables=np.zeros((0, 2), np.int32),
            nodes=np.zeros((0, 8), np.uint32), leaves=np.zeros(0, np.uint32))
    if partition_dims is None:
        partition_dims = _partition_dims(lo, hi)
    cls = np.zeros(n, np.int64)
    if n:
        width = hi.astype(np.int64) - lo
        for i, d in enumerate(partition_dims):
            cls |= (width[:, d] >= NARROW).astype(np.int64) << i
    n_cls = 1 << len(partition_dims)
    if merge_narrow and n and len(partition_dims) > 1:
        # rows narrow in every partition dimension also fit the table of a partition that is
        # wide in just one of them: join the largest such partition of the set (one fewer
        # partition to visit per packet)
        counts = np.bincount(set_id.astype(np.int64) * n_cls + cls, minlength=n_sets * n_cls)
        counts = counts.reshape(n_sets, n_cls)
        singles = np.array([1 << i for i in range(len(partition_dims))])
        pick = singles[np.argmax(counts[:, singles], axis=1)]
        has = counts[np.arange(n_sets), pick] > 0
        narrow_rows = cls == 0
        target = np.where(has[set_id], pick[set_id], 0)
        cls = np.where(narrow_rows, target, cls)
    # partitions: (set, class) groups of rows, ascending rows within; ordered per set by min row
    key = set_id.astype(np.int64) * n_cls + cls
    order = np.argsort(key, kind="stable")
    skey = key[order]
    starts = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]]) if n else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], n].astype(np.int64) if n else np.zeros(0, np.int64)
    gset = skey[starts] // n_cls if n else np.zeros(0, np.int64)
    gmin = order[starts] if n else np.zeros(0, np.int64)
    gsize = ends - starts
    gorder = np.lexsort((gmin, -gsize, gset)) if part_order == "size" else np.lexsort((gmin, gset))
    sizes = (ends - starts)[gorder]
    prow = np.concatenate([order[starts[g]:ends[g]] for g in gorder]).astype(np.int32) if n \
        else np.zeros(0, np.int32)
    pptr = np.zeros(len(gorder) + 1, np.int64)
    np.cumsum(sizes, out=pptr[1:])
    part_set = gset[gorder]
    set_ptr = np.zeros(n_sets + 1, np.int64)
    np.cumsum(np.bincount(part_set, minlength=n_sets), out=set_ptr[1:])
    part_min = gmin[gorder].astype(np.int32)

    tdim, tshift, tmax, tbase = K.plan_tables(lo, hi, prow, pptr, max_table_bits, MIN_TABLE_ROWS,
                                        cells_per_rule)
    job_rows, job_ptr, job_box, job_part, job_cell, toff = K.make_cells(lo, hi, prow, pptr,
                                                                        tdim, tshift, tmax, tbase)
    nodes, leaves, roots, depths = K.build_forest(
        lo, hi, job_rows, job_ptr, job_box, binth, wmax, MAX_DEPTH)
    quad, qroots = K.to_quad(nodes, roots)
    tables = K.fill_tables(toff, job_part, job_cell, job_rows, job_ptr, roots, nodes, qroots)
    nodes = quad
    part_depth = np.zeros(len(tdim), np.int64)
    if len(job_part):
        np.maximum.at(part_depth, job_part, depths.astype(np.int64))
    part_tab = np.stack([tdim, tshift, tmax, toff[:-1], part_depth, tbase], axis=1).astype(np.int64)
    if part_tab.shape[0] == 0:
        part_tab = np.zeros((0, 6), np.int64)
    return Classifier(
        n_rules=n, n_dims=D, n_sets=n_sets, build_seconds=time.perf_counter() - t0,
        set_ptr=set_ptr, part_min=part_min, part_tab=np.ascontiguousarray(part_tab),
        tables=tables, nodes=nodes, leaves=leaves,
        depths=depths, part_rows=sizes.astype(np.int64))
