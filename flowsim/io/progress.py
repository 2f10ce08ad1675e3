"""Progress of long work, on a terminal only."""
from __future__ import annotations

import sys
import time


class Progress:
    """A one-line progress meter on stderr, for terminals only."""

    def __init__(self, enabled: bool, total_rows: int | None):
        self.enabled, self.total, self.start = enabled, total_rows, time.perf_counter()

    def update(self, rows: int) -> None:
        """Rows done so far: `flowsim: 1,000,000 flows of 4,000,000 (25%), 3.10 M flows/s`."""
        if self.enabled:
            rate = rows / max(time.perf_counter() - self.start, 1e-9)
            share = f" of {self.total:,} ({rows / max(self.total, 1):.0%})" if self.total else ""
            self._line(f"{rows:,} flows{share}, {rate / 1e6:.2f} M flows/s")

    def stage(self, stage: str, done: int, total: int, unit: str) -> None:
        """Tasks of a stage done so far: `flowsim: replaying: 3 of 8 shards`."""
        if self.enabled:
            self._line(f"{stage}: {done:,} of {total:,} {unit}")

    def _line(self, text: str) -> None:
        sys.stderr.write(f"\rflowsim: {text}\x1b[K")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
