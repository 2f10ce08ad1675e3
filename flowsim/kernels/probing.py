"""Hash tables as a directory of tagged words over an arena of entries (the session table, the flow counter).

Entries sit in the arena in the order they were added. The directory, a linear-probing
hash table of uint64 words, points at them: word = tag << 32 | (index + 1), 0 for a free
slot, where the tag is the top 32 bits of the key's hash; scaled to the directory's size
it is also the slot where the key's probe starts, so any size works. A probe reads the
directory, an eighth of the entries' size or less and so mostly in cache, and reads an
entry only where the tags agree: a key not in the table costs no read of the arena, and
its new entry is written at the arena's end, in order. Removing entries is compacting the
arena and pointing a cleared directory at what is left (`point_at`, per entry).
"""
import numba as nb
import numpy as np

from .intrinsics import prefetch


@nb.njit(cache=True, inline="always")
def home(tag, size):
    """The directory slot where a tag's probe starts."""
    return np.int64((tag * np.uint64(size)) >> np.uint64(32))


@nb.njit(cache=True, inline="always")
def next_slot(s, size):
    """The slot after s, wrapping to 0: the probe order of a directory of any size."""
    return s + 1 if s + 1 < size else 0


@nb.njit(cache=True, inline="always")
def word(tag, index):
    """The directory word for the entry at `index` with key tag `tag`."""
    return (tag << np.uint64(32)) | np.uint64(index + 1)


@nb.njit(cache=True, inline="always")
def word_tag(w):
    return w >> np.uint64(32)


@nb.njit(cache=True, inline="always")
def word_index(w):
    return np.int64(w & np.uint64(0xFFFFFFFF)) - 1


@nb.njit(cache=True, inline="always")
def point_at(directory, tag, index):
    """Point the first free slot of the tag's probe at entry `index`: for keys not in the directory
    (rebuilding it after compaction, where keys are distinct). Not for per-record loops: numba
    reference-counts an array handed to a function."""
    size = directory.shape[0]
    s = home(tag, size)
    while directory[s] != 0:
        s = next_slot(s, size)
    directory[s] = word(tag, index)


@nb.njit(cache=True, inline="always")
def ask_for_entry(directory, tag, arena_at, itemsize):
    """Prefetch the first arena entry (at address arena_at, `itemsize` bytes each) that the tag's probe
    names: a stage ahead of the probe itself, once the directory line is in cache."""
    size = directory.shape[0]
    s = home(tag, size)
    while directory[s] != 0:
        if word_tag(directory[s]) == tag:
            prefetch(arena_at + word_index(directory[s]) * itemsize)
            return
        s = next_slot(s, size)
