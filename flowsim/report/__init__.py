"""Self-contained HTML reports of a command's results (replay, bench, lint, diff): inline SVG figures,
no script, nothing fetched, so a file can be mailed or attached to a change request."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import InputError, Problem
from .bench import bench_report
from .replay import ReplayRecorder, replay_report

__all__ = ["ReplayRecorder", "bench_report", "replay_report", "write_report"]


def write_report(path: str, html: str) -> None:
    """Write the page beside its target and rename it into place: a failed write leaves no page."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent if str(target.parent) else ".")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's owner-only mode
        os.replace(tmp, target)
    except OSError as exc:
        if "tmp" in locals() and os.path.exists(tmp):
            os.unlink(tmp)
        raise InputError(Problem(f"cannot write report: {exc.strerror or exc}", source=path)) from None
