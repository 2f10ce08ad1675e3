"""Self-contained HTML reports of a command's results (replay, bench, lint, diff): inline SVG figures,
no script, nothing fetched, so a file can be mailed or attached to a change request."""
from __future__ import annotations

import os

from ..io.outputs import Output, writing
from .bench import bench_report
from .diff import space_diff_report, trace_diff_report
from .lint import lint_report
from .replay import ReplayRecorder, replay_report

__all__ = ["ReplayRecorder", "bench_report", "lint_report", "replay_report", "space_diff_report", "trace_diff_report", "write_report"]


def write_report(path: str | os.PathLike | Output, html: str) -> None:
    """Write a page as every output is written: beside its target, renamed in once whole."""
    with writing(path, "--report") as target:
        target.write_text(html, "report")
