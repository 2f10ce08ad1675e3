"""First use on a machine: numba compiles flowsim's kernels, once, and says so on a terminal.

numba caches compiled kernels on disk (beside the kernel sources, or under NUMBA_CACHE_DIR); the first
command that evaluates flows on a machine compiles them, which takes seconds, and every later run loads
them. numba compiles one function at a time in a process (a global lock), so on a cold cache a replay
(or `diff --trace`) or a query shares the work with a helper process: the helper compiles the input
reader's kernels (reading the trace's or flow table's first records) and a replay's session kernels
(replaying one record against a one-group configuration), while the command compiles the evaluation
(and a replay's counting) kernels for its own configuration; then the command waits for the helper and
finds those kernels in numba's cache. The helper is only a head start: whatever it did not compile (it
failed, it was late, the input is a pipe) the command compiles itself as it goes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..engine.engine import Engine

NOTICE = "flowsim: compiling kernels for first use (once; some seconds)…"
HELPER_WAIT = 120.0  # seconds the command waits for the helper before compiling the rest itself
_ONE_GROUP = {"security_groups": {"sg-warm": {"type": "basic", "vpc": "vpc-warm", "rules": []}}}


def kernels_cached() -> bool:
    """Whether the evaluation kernels have a cache index on disk (numba wrote one when it compiled them)."""
    from ..kernels import evaluate

    index = evaluate.evaluation_cache_index()
    return index is None or os.path.exists(index)  # (None: numba caching unavailable, nothing to tell apart)


def notice_first_compile(stream: TextIO | None = None, quiet: bool = False) -> bool:
    """Print NOTICE to `stream` (stderr) if it is a terminal and the kernels are not compiled yet; True if printed."""
    return not kernels_cached() and _tell(stream, quiet)


def _tell(stream: TextIO | None, quiet: bool) -> bool:
    stream = stream or sys.stderr
    if quiet or not stream.isatty():
        return False
    print(NOTICE, file=stream, flush=True)
    return True


def warm_evaluation(engine: Engine) -> None:
    """Compile the evaluation kernel for `engine`'s tables: evaluate no flows, as a replay's chunk would."""
    from ..io.traces import TraceChunk
    from .replay import flow_arrays

    engine.evaluate_arrays(flow_arrays(TraceChunk.empty()))


def warm_trace_reading(trace: str, fmt: str | None) -> None:
    """Compile the kernels that read `trace` (a regular file; pipes are left alone) by reading its first records."""
    from ..io.traces import open_trace

    if trace != "-" and os.path.isfile(trace):
        next(iter(open_trace(trace, fmt, chunk_rows=64)), None)


def warm_flow_reading(flows: str) -> None:
    """Compile the kernels that read the flow table `flows` (a regular file) by preparing its first rows."""
    import pyarrow as pa

    from ..io.flows import prepare_flows
    from .query import open_flow_table

    if flows != "-" and os.path.isfile(flows):
        batch = next(iter(open_flow_table(flows, chunk_rows=64).batches), None)
        if batch is not None:
            prepare_flows(pa.Table.from_batches([batch]))


def warm_sessions() -> None:
    """Compile the session kernels: replay one record over no sessions, with a one-group configuration."""
    from ..config.loader import load_config
    from ..engine.engine import compile_config

    replayer, chunk, flows, raw = _one_record(compile_config(load_config(_ONE_GROUP)))
    replayer.apply_state(chunk, flows, raw)


def warm_counting(engine: Engine) -> None:
    """Compile the counting kernels for `engine`: count one denied record, as a replay counts each chunk."""
    replayer, chunk, flows, raw = _one_record(engine)
    replayer.account(chunk, flows, raw, np.zeros(1, bool), np.ones(1, bool), np.ones(1, bool))


def _one_record(engine: Engine) -> tuple:
    """A replayer for `engine`, and one all-zero capture record (its chunk, flows and verdicts: denied, no ENI)."""
    from ..engine.engine import RawVerdicts
    from ..io.traces import TraceChunk
    from ..kernels import codes as C
    from .replay import Replayer, ReplaySummary, flow_arrays

    chunk = TraceChunk.empty(1)
    raw = RawVerdicts.allocate(1)
    raw.verdict[:], raw.egress_code[:], raw.ingress_code[:], raw.src_eni[:], raw.dst_eni[:] = C.DENY, -1, -1, -1, -1
    return Replayer(engine, ReplaySummary(trace="", format="")), chunk, flow_arrays(chunk), raw


class FirstUse:
    """Around a command's first steps: on a cold cache, tells a terminal (NOTICE) and, for a replay
    (`reads="trace"`) or a query (`reads="flows"`), starts the helper (see the module's docstring; it
    reads only a regular file, never standard input or a pipe); `ready(engine)` compiles the command's
    share and waits for the helper. On a warm cache it does nothing."""

    def __init__(self, reads: str | None = None, path: str | None = None, fmt: str | None = None,
                 quiet: bool = False) -> None:
        """`reads`: "trace" (a replay's `path`, of format `fmt`), "flows" (a query's flow table) or None (no helper)."""
        self.reads, self.path, self.fmt, self.quiet = reads, path, fmt, quiet
        self.helper: subprocess.Popen | None = None

    def __enter__(self) -> FirstUse:
        if not kernels_cached():
            _tell(None, self.quiet)
            if self.reads is not None and self.path is not None and _cores() > 1:  # (on one core it only takes turns)
                path = self.path if self.path == "-" else os.path.abspath(self.path)
                self.helper = _start_helper([self.reads, path, *([self.fmt] if self.fmt else [])])
        return self

    def ready(self, engine: Engine) -> None:
        """Compile the evaluation kernel for `engine` (and a replay's counting kernels) here while the
        helper compiles the rest; wait for it."""
        if self.helper is None:
            return
        warm_evaluation(engine)
        if self.reads == "trace":
            warm_counting(engine)
        try:
            self.helper.wait(HELPER_WAIT)
        except subprocess.TimeoutExpired:
            pass
        self._stop()

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.helper is not None and self.helper.poll() is None:
            self.helper.kill()
            self.helper.wait()
        self.helper = None


def _cores() -> int:
    """The processors this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _start_helper(argv: list[str]) -> subprocess.Popen | None:
    """The helper process, importing this very flowsim (numba's cache is keyed by the kernel sources' paths)."""
    if not sys.executable:  # (an embedded interpreter: no program to start)
        return None
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    try:
        return subprocess.Popen([sys.executable, "-m", __name__, *argv], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    except OSError:
        return None


def helper_main(argv: list[str]) -> int:
    """The helper, given `trace PATH [FORMAT]` or `flows PATH`: compile what `warm_trace_reading` and
    `warm_sessions`, or `warm_flow_reading`, compile; silent, whatever happens (the command reports its
    inputs' problems itself)."""
    reads, path, fmt = (argv + [None, None, None])[:3]
    steps = ((lambda: warm_trace_reading(path, fmt), warm_sessions) if reads == "trace" else
             (lambda: warm_flow_reading(path),) if reads == "flows" else ())
    for warm in steps:
        try:
            warm()
        except Exception:  # noqa: BLE001 - a head start only: the command compiles whatever is missing
            pass
    return 0


if __name__ == "__main__":
    sys.exit(helper_main(sys.argv[1:]))
