"""Removal from linear-probing hash tables (the flow counter) without tombstones, and their probe order.

A table is a structured array whose records have a `used` flag; `home(entry, size)` is the slot
where the probe for the entry's key starts in a table of `size` slots. Removing an entry shifts
back the later entries of its run that may live in the freed slot, so every key stays reachable
from its home.
"""
import numba as nb


@nb.njit(cache=True, inline="always")
def next_slot(s, size):
    """The slot after s, wrapping to 0: the probe order of a table of any size."""
    return s + 1 if s + 1 < size else 0


@nb.njit(cache=True, inline="always")
def remove_where(table, home, doomed, arg):
    """Remove in place every entry for which doomed(entry, arg) is true; returns how many remain.

    The sweep starts after an empty slot, so no run wraps past its end; an entry shifted back into
    the slot being swept is judged there, one shifted elsewhere when the sweep reaches it: each entry
    is judged once. A full table (no empty slot) is not supported: callers keep theirs under half full.
    The callbacks take an entry, not the table: numba reference-counts an array handed to a function
    (atomic operations, once per entry here)."""
    n = table.shape[0]
    start = 0
    while start < n and table[start].used:
        start += 1
    live = 0
    for step in range(1, n + 1):
        s = (start + step) % n
        while table[s].used and doomed(table[s], arg):
            hole = s
            k = s
            while True:
                k = next_slot(k, n)
                if not table[k].used:
                    break
                h = home(table[k], n)
                # table[k] may move to the hole unless its home lies cyclically in (hole, k]
                if (hole < k and (h <= hole or h > k)) or (hole > k and h <= hole and h > k):
                    table[hole] = table[k]
                    hole = k
            table[hole].used = False
        if table[s].used:
            live += 1
    return live
