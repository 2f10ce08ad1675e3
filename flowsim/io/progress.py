"""Progress of long work, on a terminal only."""
from __future__ import annotations

import sys
import time


class Progress:
    """A one-line progress meter on stderr, for terminals only."""

    def __init__(self, enabled: bool, total_rows: int | None):
        self.enabled, self.total, self.start = enabled, total_rows, time.perf_counter()

    def update(self, rows: int) -> None:
        if self.enabled:
            rate = rows / max(time.perf_counter() - self.start, 1e-9)
            share = f" of {self.total:,} ({rows / max(self.total, 1):.0%})" if self.total else ""
            sys.stderr.write(f"\rflowsim: {rows:,} flows{share}, {rate / 1e6:.2f} M flows/s")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
