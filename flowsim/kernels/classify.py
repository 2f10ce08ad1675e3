"""Packet classification kernels: exact first-match over ranges, at classifier speed.

The structure (built by :mod:`flowsim.engine.classifier`, flattened here into plain arrays):

* A rule *set* is split into *partitions* by which address-like fields of a rule are
  "small" (narrow ranges) and which are "large" (wildcard-like), as CutSplit does, so
  that one partition's tree never has to replicate another partition's wide rules
  (rules narrow everywhere join a partition wide in one field: one visit fewer).
* Each partition starts with a direct-index *table* on the top bits of one dimension in
  which all its rules are narrow (each rule in at most two cells), then per non-empty
  cell a HyperSplit-style binary decision tree (a threshold on one dimension per node;
  rules straddling it go to both sides; a rule covering the whole node region ends the
  node's rule list, since no later rule can win there), folded two levels per node.
* Lookup visits the partitions of the packet's set; a table cell whose smallest row
  cannot beat the best match so far is skipped without touching its tree or leaf.

Arrays (the ``arrays`` tuple of a Classifier, in this order):

``set_ptr`` (n_sets + 1,) int64
    partitions of set s are ``set_ptr[s]:set_ptr[s + 1]``.
``part_min`` (n_parts,) int32
    smallest row of each partition.
``part_tab`` (n_parts, 6) int64
    ``[tdim, tshift, tmax, toff, depth, tbase]``: the cell of key k is
    ``toff + min(max(k[tdim] - tbase, 0) >> tshift, tmax)``; depth is the binary tree
    depth (stats only).
``tables`` (n_cells, 2) int32
    ``[target, min row]``: target >= 0 is a node, < 0 is ``~leaf`` (the cell is one
    leaf); empty cells have min row ``NO_ROW``.
``nodes`` (n_nodes, 8) uint32
    ``[d0, t0, dL, tL, dR, tR, base, leaf]``: with ``c = key[d] >= t`` the packet moves
    to ``base + 2*c0 + (cR if c0 else cL)``; a leaf maps to itself (t0 = tR = 0,
    base = self - 3) and names its leaf record.
``leaves`` uint32
    leaf records: n, then chunks of ``m = min(C, rest)`` entries, each field-major
    (rows[m], lo[d][m] per d, (hi - lo)[d][m] per d), rows ascending; C words of slack
    per field at the end, since a chunk is checked with C-lane vector compares.

Kernels here import only numpy and numba and take plain arrays.
"""
import numba as nb
import numpy as np

C = 16                  # leaf entries checked per vector step (16 uint32 lanes)
NO_ROW = 0x7FFFFFFF     # "no match" inside kernels (returned as -1)
EMPTY_LEAF = 1          # node index of the shared empty leaf
EMPTY_LEAF_REF = 0      # offset of the shared empty leaf record
BIG = np.int64(1) << 62


# ---------------------------------------------------------------------------
# small growable-array helpers
# ---------------------------------------------------------------------------

@nb.njit(cache=True)
def _grow1(a, need):
    cap = a.shape[0]
    if need <= cap:
        return a
    b = np.empty(max(need, 2 * cap), a.dtype)
    b[:cap] = a
    return b


@nb.njit(cache=True)
def _grow2(a, need):
    cap = a.shape[0]
    if need <= cap:
        return a
    b = np.empty((max(need, 2 * cap), a.shape[1]), a.dtype)
    b[:cap] = a
    return b


# ---------------------------------------------------------------------------
# Build: tables
# ---------------------------------------------------------------------------

@nb.njit(cache=True)
def plan_tables(lo, hi, prow, pptr, max_bits, min_rows, cells_per_rule):
    """Choose a direct-index table for each partition.

    prow[pptr[q]:pptr[q+1]] are partition q's rows (ascending).  The table of dimension d
    covers the window [min lo, max hi] of the partition's rules in d with cells of
    2**shift values, shift being the smallest such that every rule spans at most two
    cells and there are at most min(2**max_bits, cells_per_rule * n) cells; among the
    dimensions the one with most distinct cells wins.  Returns per partition
    (tdim, tshift, tmax, tbase): the cell of key k is
    ``min(max(k - tbase, 0) >> tshift, tmax)``; tmax == 0 means no table.  (A key
    outside the window matches no rule of the partition, so any cell will do for it.)
    """
    n_parts = pptr.shape[0] - 1
    D = lo.shape[1]
    tdim = np.zeros(n_parts, np.int64)
    tshift = np.full(n_parts, 32, np.int64)
    tmax = np.zeros(n_parts, np.int64)
    tbase = np.zeros(n_parts, np.int64)
    for q in range(n_parts):
        s = pptr[q]
        n = pptr[q + 1] - s
        if n < min_rows:
            continue
        budget = min(np.int64(1) << max_bits, cells_per_rule * n)
        best_cells = 1
        cells = np.empty(n, np.int64)
        for d in range(D):
            base = np.int64(0xFFFFFFFF)
            top = np.int64(0)
            wmax = np.int64(0)
            for j in range(n):
                r = prow[s + j]
                a = np.int64(lo[r, d])
                b = np.int64(hi[r, d])
                base = min(base, a)
                top = max(top, b)
                wmax = max(wmax, b - a)
            sh = 0
            while (np.int64(1) << sh) <= wmax:
                sh += 1              # a rule narrower than a cell spans at most two cells
            while ((top - base) >> sh) + 1 > budget:
                sh += 1
            if ((top - base) >> sh) == 0:
                continue
            for j in range(n):
                cells[j] = (np.int64(lo[prow[s + j], d]) - base) >> sh
            cells.sort()
            distinct = 1
            for j in range(1, n):
                if cells[j] != cells[j - 1]:
                    distinct += 1
            if distinct > best_cells:
                best_cells = distinct
                tdim[q] = d
                tshift[q] = sh
                tmax[q] = (top - base) >> sh
                tbase[q] = base
    return tdim, tshift, tmax, tbase


@nb.njit(cache=True)
def make_cells(lo, hi, prow, pptr, tdim, tshift, tmax, tbase):
    """Expand partitions into per-cell build jobs.

    Returns (job_rows, job_ptr, job_box (n_jobs, 2D) int64, job_part, job_cell, toff)
    where toff[q] is partition q's offset into the concatenated tables (tmax[q] + 1
    entries each).  Only non-empty cells get a job.
    """
    n_parts = pptr.shape[0] - 1
    D = lo.shape[1]
    toff = np.zeros(n_parts + 1, np.int64)
    for q in range(n_parts):
        toff[q + 1] = toff[q] + tmax[q] + 1
    total = 0
    for q in range(n_parts):
        total += 2 * (pptr[q + 1] - pptr[q])
    job_rows = np.empty(total, np.int32)
    job_ptr = np.empty(total + 1, np.int64)
    job_part = np.empty(total, np.int64)
    job_cell = np.empty(total, np.int64)
    job_box = np.empty((total, 2 * D), np.int64)
    nj = 0
    nr = 0
    job_ptr[0] = 0
    for q in range(n_parts):
        s = pptr[q]
        n = pptr[q + 1] - s
        d = tdim[q]
        sh = tshift[q]
        tm = tmax[q]
        tb = tbase[q]
        ncell = tm + 1
        cnt = np.zeros(ncell + 1, np.int64)
        for j in range(n):
            r = prow[s + j]
            c0 = min(max(np.int64(lo[r, d]) - tb, 0) >> sh, tm)
            c1 = min(max(np.int64(hi[r, d]) - tb, 0) >> sh, tm)
            for c in range(c0, c1 + 1):
                cnt[c + 1] += 1
        for c in range(ncell):
            cnt[c + 1] += cnt[c]
        fill = cnt[:ncell].copy()
        base = nr
        for j in range(n):
            r = prow[s + j]
            c0 = min(max(np.int64(lo[r, d]) - tb, 0) >> sh, tm)
            c1 = min(max(np.int64(hi[r, d]) - tb, 0) >> sh, tm)
            for c in range(c0, c1 + 1):
                job_rows[base + fill[c]] = r
                fill[c] += 1
        for c in range(ncell):
            m = cnt[c + 1] - cnt[c]
            if m == 0:
                continue
            job_part[nj] = q
            job_cell[nj] = c
            for k in range(D):
                job_box[nj, k] = 0
                job_box[nj, D + k] = 0xFFFFFFFF
            if tm > 0:
                job_box[nj, d] = tb + (c << sh)
                if c < tm:
                    job_box[nj, D + d] = min(tb + ((c + 1) << sh) - 1, 0xFFFFFFFF)
            nr += m
            job_ptr[nj + 1] = nr
            nj += 1
        # rows were written densely from `base`, cell by cell: job ranges follow cnt
    return job_rows[:nr], job_ptr[:nj + 1].copy(), job_box[:nj].copy(), job_part[:nj].copy(), \
        job_cell[:nj].copy(), toff


# ---------------------------------------------------------------------------
# Build: HyperSplit-style trees with block leaves
# ---------------------------------------------------------------------------

# build_forest's stages.  Each runs once per tree node and keeps its loops over the node's
# rows inside itself, so the arrays it takes are reference-counted per node, not per row.
# They are inlined (numba IR): compiled as functions of their own they made the first
# compile of build_forest about 30% slower (each one more trip through LLVM).

_ST = 4                 # stack row: [node, start, n, depth, box (2D)]


@nb.njit(cache=True, inline="always")
def _push(st, sp, node, start, n, depth, box):
    """Put a node to build at stack slot sp (pool[start:start + n] its rows, box its region);
    returns the stack, grown if full."""
    st = _grow2(st, sp + 1)
    st[sp, 0] = node
    st[sp, 1] = start
    st[sp, 2] = n
    st[sp, 3] = depth
    st[sp, _ST:] = box
    return st


@nb.njit(cache=True, inline="always")
def _covered_prefix(lo, hi, pool, s, n, box):
    """How many of the rows pool[s:s + n] count: a row covering the whole region ``box``
    ends the list, since no later row can win there."""
    D = lo.shape[1]
    for j in range(n):
        r = pool[s + j]
        cov = True
        for d in range(D):
            if lo[r, d] > box[d] or hi[r, d] < box[D + d]:
                cov = False
                break
        if cov:
            return j + 1
    return n


@nb.njit(cache=True, inline="always")
def _choose_cut(lo, hi, pool, s, n, box, wmax, A, B):
    """The dimension and threshold t in (box lo, box hi] splitting rows pool[s:s + n] that
    minimise ``wmax * max(left, right) + left + right`` among those making the larger side
    smaller; (-1, 0) if none.  A and B are scratch of at least n entries."""
    D = lo.shape[1]
    best_d = -1
    best_t = np.int64(0)
    best_cost = BIG
    for d in range(D):
        blo = box[d]
        bhi = box[D + d]
        full = True
        for j in range(n):
            r = pool[s + j]
            a = max(np.int64(lo[r, d]), blo)
            b = min(np.int64(hi[r, d]), bhi)
            A[j] = a
            B[j] = b
            if a != blo or b != bhi:
                full = False
        if full:
            continue
        sA = np.sort(A[:n])
        sB = np.sort(B[:n])
        ia = 0
        ib = 0
        pa = 0
        pb = 0
        while True:
            # candidate thresholds t in (blo, bhi]: rule starts and ends + 1
            while pa < n and sA[pa] <= blo:
                pa += 1
            while pb < n and sB[pb] + 1 > bhi:
                pb += 1
            if pa >= n and pb >= n:
                break
            if pb >= n or (pa < n and sA[pa] <= sB[pb] + 1):
                t = sA[pa]
            else:
                t = sB[pb] + 1
            while pa < n and sA[pa] <= t:
                pa += 1
            while pb < n and sB[pb] + 1 <= t:
                pb += 1
            while ia < n and sA[ia] < t:
                ia += 1
            while ib < n and sB[ib] < t:
                ib += 1
            nl = ia
            nr = n - ib
            mx = max(nl, nr)
            if mx < n:
                cost = wmax * mx + nl + nr
                if cost < best_cost:
                    best_cost = cost
                    best_d = d
                    best_t = t
    return best_d, best_t


@nb.njit(cache=True, inline="always")
def _emit_leaf(lo, hi, pool, s, n, leaves, nl_):
    """Append the leaf record of rows pool[s:s + n] at leaves[nl_]: n, then chunks of
    m = min(C, left) entries, each field-major: rows[m], lo[d][m] for each d,
    (hi - lo)[d][m] for each d.  Returns (leaves, grown if needed; the record's offset;
    the new end)."""
    D = lo.shape[1]
    leaves = _grow1(leaves, nl_ + 1 + (2 * D + 1) * n + C * (2 * D + 1))
    leaves[nl_] = n
    pos = nl_ + 1
    e0 = 0
    while e0 < n:
        m = min(C, n - e0)
        for j in range(m):
            r = pool[s + e0 + j]
            leaves[pos + j] = r
            for d in range(D):
                leaves[pos + (1 + d) * m + j] = lo[r, d]
                leaves[pos + (1 + D + d) * m + j] = hi[r, d] - lo[r, d]
        pos += (2 * D + 1) * m
        e0 += m
    return leaves, nl_, pos


@nb.njit(cache=True, inline="always")
def _split_rows(lo, hi, pool, s, n, d, t, tmp):
    """Replace rows pool[s:s + n] by the left child's (lo[., d] < t) and then the right
    child's (hi[., d] >= t), both ascending; rows straddling t go to both.  tmp is scratch
    of at least 2n.  Returns (pool, grown if needed; left count; right count)."""
    nl = 0
    for j in range(n):
        r = pool[s + j]
        if lo[r, d] < t:
            tmp[nl] = r
            nl += 1
    nr = 0
    for j in range(n):
        r = pool[s + j]
        if hi[r, d] >= t:
            tmp[nl + nr] = r
            nr += 1
    pool = _grow1(pool, s + nl + nr)
    pool[s:s + nl + nr] = tmp[:nl + nr]
    return pool, nl, nr


@nb.njit(cache=True, inline="always")
def _set_node(nodes, i, dim, thr, child, leaf):
    nodes[i, 0] = dim
    nodes[i, 1] = thr
    nodes[i, 2] = child
    nodes[i, 3] = leaf


@nb.njit(cache=True)
def build_forest(lo, hi, job_rows, job_ptr, job_box, binth, wmax, max_depth):
    """Build one binary decision tree per job (a table cell's rows, ascending, and its
    region ``job_box``).  Returns (nodes (n, 4) uint32 ``[dim, thr, child, leaf]``, where
    an internal node sends a packet to ``child + (key[dim] >= thr)`` and a leaf is
    ``[0, 0, self - 1, leaf record offset]``; leaf records; root and depth per job).
    A node with more than ``binth`` rows is split at the dimension and threshold that
    minimise ``wmax * max(left, right) + left + right``, unless no split makes the larger
    side smaller or ``max_depth`` is reached.  Depth first, the left child's rows at the
    front of the node's slice of ``pool``, so the right child's build keeps them."""
    D = lo.shape[1]
    n_jobs = job_ptr.shape[0] - 1
    nodes = np.empty((1024, 4), np.uint32)
    leaves = np.zeros(4096, np.uint32)
    # node 0: filler (never reached); node 1: the shared empty leaf; record 0: empty
    _set_node(nodes, 0, 0, 0, 0, 0)
    _set_node(nodes, EMPTY_LEAF, 0, 0, 0, EMPTY_LEAF_REF)
    nn = 2
    leaves[EMPTY_LEAF_REF] = 0
    nl_ = 1
    roots = np.empty(n_jobs, np.int32)
    depths = np.zeros(n_jobs, np.int32)
    pool = np.empty(max(1024, 2 * job_rows.shape[0]), np.int32)
    st = np.empty((64, _ST + 2 * D), np.int64)
    tmp = np.empty(1024, np.int32)
    A = np.empty(1024, np.int64)
    B = np.empty(1024, np.int64)
    box = np.empty(2 * D, np.int64)
    for job in range(n_jobs):
        s0 = job_ptr[job]
        n0 = job_ptr[job + 1] - s0
        if n0 == 0:
            roots[job] = EMPTY_LEAF
            continue
        nodes = _grow2(nodes, nn + 1)
        roots[job] = nn
        pool = _grow1(pool, n0)
        pool[:n0] = job_rows[s0:s0 + n0]
        st = _push(st, 0, nn, 0, n0, 0, job_box[job])
        nn += 1
        sp = 1
        jdepth = 0
        while sp > 0:
            sp -= 1
            node = st[sp, 0]
            s = st[sp, 1]
            depth = st[sp, 3]
            jdepth = max(jdepth, depth)
            box[:] = st[sp, _ST:]
            n = _covered_prefix(lo, hi, pool, s, st[sp, 2], box)
            d = -1
            t = np.int64(0)
            if n > binth and depth < max_depth:
                A = _grow1(A, n)
                B = _grow1(B, n)
                d, t = _choose_cut(lo, hi, pool, s, n, box, wmax, A, B)
            if d < 0:
                leaves, ref, nl_ = _emit_leaf(lo, hi, pool, s, n, leaves, nl_)
                _set_node(nodes, node, 0, 0, node - 1, ref)
                continue
            tmp = _grow1(tmp, 2 * n)
            pool, nl, nr = _split_rows(lo, hi, pool, s, n, d, t, tmp)
            nodes = _grow2(nodes, nn + 2)
            _set_node(nodes, node, d, t, nn, 0)
            st = _push(st, sp, nn, s, nl, depth + 1, box)
            st[sp, _ST + D + d] = t - 1
            st = _push(st, sp + 1, nn + 1, s + nl, nr, depth + 1, box)
            st[sp + 1, _ST + d] = t
            sp += 2
            nn += 2
        depths[job] = jdepth
    # C words of slack at the end: a leaf check reads C lanes of every field
    out_leaves = np.zeros(nl_ + C * (2 * D + 1), np.uint32)
    out_leaves[:nl_] = leaves[:nl_]
    return nodes[:nn].copy(), out_leaves, roots, depths


@nb.njit(cache=True, inline="always")
def _is_leaf(nodes, b):
    return nodes[b, 0] == 0 and nodes[b, 1] == 0 and np.int64(nodes[b, 2]) == b - 1


@nb.njit(cache=True)
def to_quad(nodes, roots):
    """Fold each binary node and its two children into one 2-level "quad" node.

    quad (M, 8) uint32: ``[d0, t0, dL, tL, dR, tR, base, ref]``; a packet goes to
    ``base + 2*c0 + (cR if c0 else cL)`` with ``c = key[d] >= t``, so the three compares
    of two tree levels run in parallel.  A leaf maps to itself (t0 = tR = 0 and
    base = self - 3) and keeps its leaf record offset in ``ref``.  Returns (quad,
    quad root per root; -1 where the root is a leaf).  Quad 0..3 are fillers, 4 the
    empty leaf.
    """
    cap = max(16, 2 * nodes.shape[0] + 8)
    quad = np.zeros((cap, 8), np.uint32)
    nq = 5
    quad[4, 6] = 1                    # empty leaf: base = 4 - 3
    quad[4, 7] = nodes[EMPTY_LEAF, 3]
    qroots = np.full(roots.shape[0], -1, np.int64)
    st_b = np.empty(64, np.int64)
    st_q = np.empty(64, np.int64)
    for r in range(roots.shape[0]):
        b0 = np.int64(roots[r])
        if _is_leaf(nodes, b0):
            continue
        quad = _grow2(quad, nq + 1)
        qroots[r] = nq
        st_b[0] = b0
        st_q[0] = nq
        nq += 1
        sp = 1
        while sp > 0:
            sp -= 1
            b = st_b[sp]
            x = st_q[sp]
            if _is_leaf(nodes, b):
                quad[x, 0] = 0
                quad[x, 1] = 0
                quad[x, 2] = 0
                quad[x, 3] = 0
                quad[x, 4] = 0
                quad[x, 5] = 0
                quad[x, 6] = x - 3
                quad[x, 7] = nodes[b, 3]
                continue
            quad = _grow2(quad, nq + 4)
            base = nq
            nq += 4
            quad[x, 0] = nodes[b, 0]
            quad[x, 1] = nodes[b, 1]
            quad[x, 6] = base
            quad[x, 7] = 0
            for side in range(2):
                c = np.int64(nodes[b, 2]) + side
                if _is_leaf(nodes, c):
                    # cL/cR always 1: only slot base + 2*side + 1 is used
                    quad[x, 2 + 2 * side] = 0
                    quad[x, 3 + 2 * side] = 0
                    g0 = c
                    g1 = c
                else:
                    quad[x, 2 + 2 * side] = nodes[c, 0]
                    quad[x, 3 + 2 * side] = nodes[c, 1]
                    g0 = np.int64(nodes[c, 2])
                    g1 = g0 + 1
                if sp + 2 > st_b.shape[0]:
                    st_b = _grow1(st_b, sp + 2)
                    st_q = _grow1(st_q, sp + 2)
                st_b[sp] = g0
                st_q[sp] = base + 2 * side
                sp += 1
                st_b[sp] = g1
                st_q[sp] = base + 2 * side + 1
                sp += 1
    return quad[:nq].copy(), qroots


@nb.njit(cache=True)
def fill_tables(toff, job_part, job_cell, job_rows, job_ptr, roots, nodes, qroots):
    """Concatenated tables (T, 2) int32: ``[target, min row]`` per cell, where target is
    the cell's tree root node, or ~leaf reference when that root is a leaf (saves a
    dependent load); empty cells name the empty leaf with min row NO_ROW, so a lookup
    skips any cell that cannot beat its best match without touching the cell's tree."""
    tables = np.empty((toff[-1], 2), np.int32)
    empty = ~np.int64(nodes[EMPTY_LEAF, 3])
    for t in range(toff[-1]):
        tables[t, 0] = empty
        tables[t, 1] = NO_ROW
    for j in range(job_part.shape[0]):
        r = roots[j]
        t = toff[job_part[j]] + job_cell[j]
        if qroots[j] < 0:
            tables[t, 0] = ~np.int64(nodes[r, 3])
        else:
            tables[t, 0] = qroots[j]
        tables[t, 1] = job_rows[job_ptr[j]]
    return tables


# ---------------------------------------------------------------------------
# Lookup
# ---------------------------------------------------------------------------

@nb.njit(cache=True, inline="always")
def _leaf_best(leaves, ref, keys, p, dims, best):
    """Smallest row < best matching keys[p] in the leaf record at ``ref`` (else best).

    A record is n followed by chunks of m = min(C, rest) entries, each field-major:
    rows[m], lo[d][m] for each d, (hi - lo)[d][m] for each d.  Each chunk is checked
    with C-lane vector compares; lanes >= m read the following words (there is slack
    at the end of the array) and are masked out.  Rows ascend, so a chunk whose first
    row is not below best ends the search.
    """
    D = len(dims)
    n = np.uint64(leaves[ref])
    pos = np.uint64(ref) + np.uint64(1)
    while n > 0:
        if np.int32(leaves[pos]) >= best:
            break
        m = min(n, np.uint64(C))
        acc = best
        # unsigned indices: no negative-index wraparound code, so loads stay contiguous
        for j in range(C):
            uj = np.uint64(j)
            ok = uj < m
            for d in range(D):
                ok = ok & (np.uint32(keys[p, d] - leaves[pos + np.uint64(1 + d) * m + uj])
                           <= leaves[pos + np.uint64(1 + D + d) * m + uj])
            acc = min(acc, np.int32(leaves[pos + uj]) if ok else best)
        if acc < best:
            return acc
        pos += np.uint64(2 * D + 1) * m
        n -= m
    return best


@nb.njit(cache=True, inline="always")
def lookup_one(set_ptr, part_min, part_tab, tables, nodes, leaves, keys, p, dims, s):
    """First (smallest) matching row of set s for packet keys[p], or -1.

    ``dims`` is a tuple of length D (its length, known at compile time, lets the
    compiler unroll the per-field loops); the other arguments are the structure arrays
    described in the module docstring.  Inline this into a kernel compiled with
    ``parallel=True`` (numba prunes the reference counts of the inlined arrays
    there; in a plain ``@njit`` loop they cost about 2x).
    """
    best = np.int32(NO_ROW)
    for q in range(set_ptr[s], set_ptr[s + 1]):
        if part_min[q] >= best:
            continue
        k = max(np.int64(keys[p, part_tab[q, 0]]) - part_tab[q, 5], 0)
        t = part_tab[q, 3] + min(k >> part_tab[q, 1], part_tab[q, 2])
        if tables[t, 1] >= best:
            continue
        i = np.int64(tables[t, 0])
        if i < 0:
            ref = ~i
        else:
            while True:
                c0 = keys[p, nodes[i, 0]] >= nodes[i, 1]
                cl = keys[p, nodes[i, 2]] >= nodes[i, 3]
                cr = keys[p, nodes[i, 4]] >= nodes[i, 5]
                j = np.int64(nodes[i, 6]) + 2 * np.int64(c0) + np.int64(cr if c0 else cl)
                if j == i:
                    break
                i = j
            ref = np.int64(nodes[i, 7])
        best = _leaf_best(leaves, ref, keys, p, dims, best)
    return np.int32(-1) if best == NO_ROW else best


@nb.njit(cache=True, parallel=True)
def lookup_batch(set_ptr, part_min, part_tab, tables, nodes, leaves, keys, key_set, dims, out):
    """out[p] = first matching row of set key_set[p] for keys[p], or -1 (prange over packets)."""
    for p in nb.prange(keys.shape[0]):
        out[p] = lookup_one(set_ptr, part_min, part_tab, tables, nodes, leaves, keys, p, dims,
                             key_set[p])
    return out


# ---------------------------------------------------------------------------
# ClassBench text parsing (rule files and traces), byte level.
# ---------------------------------------------------------------------------

# error codes returned by the parsers (the Python layer turns them into text)
PARSE_OK = 0
PE_AT = 1          # rule line does not start with '@'
PE_SRC = 2         # bad source address/prefix
PE_DST = 3         # bad destination address/prefix
PE_SPORT = 4       # bad source port range
PE_DPORT = 5       # bad destination port range
PE_PROTO = 6       # bad protocol value/mask
PE_FLAGS = 7       # bad flags field
PE_TRAILING = 8    # unexpected text after the last field
PE_FIELDS = 9      # trace line: too few or non-numeric fields
PE_RANGE = 10      # trace line: value out of range
PE_SHORT = 11      # rule line ends before the protocol field
FIELD_ERRORS = (PE_SRC, PE_DST, PE_SPORT, PE_DPORT)  # by rule field


@nb.njit(cache=True, inline="always")
def _line_count(buf):
    """Lines in the buffer (a last line without a newline counts)."""
    n = 1
    for k in range(buf.shape[0]):
        if buf[k] == 10:
            n += 1
    return n


@nb.njit(cache=True, inline="always")
def _line_end(buf, pos):
    """Index of the newline ending the line that starts at pos (or the buffer's end)."""
    end = pos
    while end < buf.shape[0] and buf[end] != 10:
        end += 1
    return end


@nb.njit(cache=True, inline="always")
def _skip_blank(buf, i, end):
    while i < end and (buf[i] == 32 or buf[i] == 9 or buf[i] == 13):
        i += 1
    return i


@nb.njit(cache=True)
def _dec(buf, i, end, limit):
    """Decimal number at buf[i:]; returns (next index, value), value -1 when bad."""
    v = 0
    j = i
    while j < end and 48 <= buf[j] <= 57 and j - i < 12:
        v = v * 10 + (buf[j] - 48)
        j += 1
    if j == i or v > limit or (j < end and 48 <= buf[j] <= 57):
        return j, -1
    return j, v


@nb.njit(cache=True)
def _hex(buf, i, end, limit):
    """'0x'-prefixed hexadecimal number at buf[i:]; returns (next index, value or -1)."""
    if i + 1 >= end or buf[i] != 48 or (buf[i + 1] != 120 and buf[i + 1] != 88):
        return i, -1
    j = i + 2
    v = 0
    while j < end and j - i < 12:
        c = buf[j]
        if 48 <= c <= 57:
            h = c - 48
        elif 97 <= c <= 102:
            h = c - 87
        elif 65 <= c <= 70:
            h = c - 55
        else:
            break
        v = v * 16 + h
        j += 1
    if j == i + 2 or v > limit:
        return j, -1
    return j, v


@nb.njit(cache=True)
def _prefix(buf, i, end):
    """a.b.c.d/len at buf[i:]; returns (next index, lo, hi, ok)."""
    ip = 0
    for part in range(4):
        i, o = _dec(buf, i, end, 255)
        if o < 0:
            return i, 0, 0, False
        ip = (ip << 8) | o
        if part < 3:
            if i >= end or buf[i] != 46:
                return i, 0, 0, False
            i += 1
    if i >= end or buf[i] != 47:
        return i, 0, 0, False
    i, ln = _dec(buf, i + 1, end, 32)
    if ln < 0:
        return i, 0, 0, False
    if ln == 0:
        return i, 0, 0xFFFFFFFF, True
    mask = (0xFFFFFFFF << (32 - ln)) & 0xFFFFFFFF
    lo = ip & mask
    return i, lo, lo | (0xFFFFFFFF ^ mask), True


@nb.njit(cache=True)
def _port_range(buf, i, end):
    """'lo : hi' at buf[i:]; returns (next index, lo, hi, ok)."""
    i, a = _dec(buf, i, end, 65535)
    if a < 0:
        return i, 0, 0, False
    i = _skip_blank(buf, i, end)
    if i >= end or buf[i] != 58:
        return i, 0, 0, False
    i = _skip_blank(buf, i + 1, end)
    i, b = _dec(buf, i, end, 65535)
    if b < 0 or b < a:
        return i, 0, 0, False
    return i, a, b, True


@nb.njit(cache=True)
def parse_rules(buf):
    """Parse a ClassBench filter file held in a uint8 array.

    Returns (lo (n,5) uint32, hi (n,5) uint32, line (n,) int64 1-based line numbers,
    status, bad_line).  Blank lines are skipped.  On error status is a PE_* code and
    bad_line the 1-based line number; the arrays then hold the rows parsed so far.
    """
    size = buf.shape[0]
    n_lines = _line_count(buf)
    lo = np.empty((n_lines, 5), np.uint32)
    hi = np.empty((n_lines, 5), np.uint32)
    lines = np.empty(n_lines, np.int64)
    n = 0
    pos = 0
    line_no = 0
    while pos < size:
        line_no += 1
        end = _line_end(buf, pos)
        nxt = end + 1
        i = _skip_blank(buf, pos, end)
        if i == end:
            pos = nxt
            continue
        if buf[i] != 64:
            return lo[:n], hi[:n], lines[:n], PE_AT, line_no
        i += 1
        for field in range(4):  # source and destination prefixes, then source and destination port ranges
            if field > 0:
                i = _skip_blank(buf, i, end)
            if field < 2:
                i, a, b, ok = _prefix(buf, i, end)
            else:
                i, a, b, ok = _port_range(buf, i, end)
            if ok and i >= end:
                return lo[:n], hi[:n], lines[:n], PE_SHORT, line_no
            if not ok or (buf[i] != 32 and buf[i] != 9):
                return lo[:n], hi[:n], lines[:n], FIELD_ERRORS[field], line_no
            lo[n, field] = a
            hi[n, field] = b
        i = _skip_blank(buf, i, end)
        i, pv = _hex(buf, i, end, 255)
        if pv < 0 or i >= end or buf[i] != 47:
            return lo[:n], hi[:n], lines[:n], PE_PROTO, line_no
        i, pm = _hex(buf, i + 1, end, 255)
        if pm == 255:
            lo[n, 4] = pv
            hi[n, 4] = pv
        elif pm == 0:
            lo[n, 4] = 0
            hi[n, 4] = 255
        else:
            return lo[:n], hi[:n], lines[:n], PE_PROTO, line_no
        if i < end and buf[i] != 32 and buf[i] != 9 and buf[i] != 13:
            return lo[:n], hi[:n], lines[:n], PE_PROTO, line_no
        i = _skip_blank(buf, i, end)
        if i < end:
            # optional flags value/mask, ignored by classification
            i, fv = _hex(buf, i, end, 0xFFFFFFFF)
            if fv < 0 or i >= end or buf[i] != 47:
                return lo[:n], hi[:n], lines[:n], PE_FLAGS, line_no
            i, fm = _hex(buf, i + 1, end, 0xFFFFFFFF)
            if fm < 0:
                return lo[:n], hi[:n], lines[:n], PE_FLAGS, line_no
            i = _skip_blank(buf, i, end)
            if i < end:
                return lo[:n], hi[:n], lines[:n], PE_TRAILING, line_no
        lines[n] = line_no
        n += 1
        pos = nxt
    return lo[:n], hi[:n], lines[:n], PARSE_OK, 0


@nb.njit(cache=True)
def parse_trace(buf):
    """Parse a ClassBench trace (whitespace-separated: src dst sport dport proto [flags [rule]]).

    Returns (keys (n,5) uint32, bound (n,) int64: the last column when there are 7 or more
    fields, else -1; status, bad_line).
    """
    size = buf.shape[0]
    n_lines = _line_count(buf)
    keys = np.empty((n_lines, 5), np.uint32)
    bound = np.empty(n_lines, np.int64)
    limits = (0xFFFFFFFF, 0xFFFFFFFF, 65535, 65535, 255)
    n = 0
    pos = 0
    line_no = 0
    while pos < size:
        line_no += 1
        end = _line_end(buf, pos)
        nxt = end + 1
        i = _skip_blank(buf, pos, end)
        if i == end:
            pos = nxt
            continue
        nf = 0
        last = -1
        while i < end:
            j = i
            v = 0
            while j < end and 48 <= buf[j] <= 57 and j - i < 20:
                v = v * 10 + (buf[j] - 48)
                j += 1
            if j == i or (j < end and buf[j] != 32 and buf[j] != 9 and buf[j] != 13):
                return keys[:n], bound[:n], PE_FIELDS, line_no
            if nf < 5:
                if j - i > 10 or v > limits[nf]:
                    return keys[:n], bound[:n], PE_RANGE, line_no
                keys[n, nf] = v
            last = v
            nf += 1
            i = _skip_blank(buf, j, end)
        if nf < 5:
            return keys[:n], bound[:n], PE_FIELDS, line_no
        bound[n] = last if nf >= 7 else -1
        n += 1
        pos = nxt
    return keys[:n], bound[:n], PARSE_OK, 0
