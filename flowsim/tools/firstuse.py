"""A word on the terminal while numba compiles flowsim's kernels the first time.

numba caches compiled kernels on disk (beside the kernel sources, or under NUMBA_CACHE_DIR);
the first command that evaluates flows on a machine compiles them, which takes seconds, and
every later run loads them. First use is told cheaply: no cache index of the
per-chunk evaluation kernel (which every evaluation compiles) yet.
"""
from __future__ import annotations

import os
import sys
from typing import TextIO

NOTICE = "flowsim: compiling kernels for first use (once; about 10 s)…"


def kernels_cached() -> bool:
    """Whether the evaluation kernels have a cache index on disk (numba wrote one when it compiled them)."""
    from ..kernels import evaluate

    cache = getattr(evaluate.evaluate_flows, "_cache", None)
    directory = getattr(cache, "_cache_path", None)
    if not directory:  # numba caching unavailable: nothing to tell apart
        return True
    try:
        return any(name.startswith("evaluate._evaluate_range-") and name.endswith(".nbi") for name in os.listdir(directory))
    except OSError:
        return False


def notice_first_compile(stream: TextIO | None = None, quiet: bool = False) -> bool:
    """Print NOTICE to `stream` (stderr) if it is a terminal and the kernels are not compiled yet; True if printed."""
    stream = stream or sys.stderr
    if quiet or not stream.isatty() or kernels_cached():
        return False
    print(NOTICE, file=stream, flush=True)
    return True
