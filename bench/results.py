"""Benchmark figures as data: a run saves its table to `bench/results/NAME.json`, and the README's
table between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` is rendered from that file.

So a figure in the README is always one a run produced, with the machine, load and commit it was
measured on beside it; nobody edits those tables by hand. `python bench/results.py` renders the
README again from the saved files.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"


def machine() -> dict:
    """Where and when a figure was measured: processor, cores, load, versions, commit."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += "+changes" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    import numba
    import numpy

    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cores": os.cpu_count(), "load": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "numpy": numpy.__version__, "numba": numba.__version__, "commit": commit}


def save(name: str, command: str, columns: list[str], rows: list[list], note: str = "") -> Path:
    """Store one benchmark table (rows of plain values) with its command and machine, then render the README."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"name": name, "command": command, "columns": columns, "rows": rows, "note": note, "machine": machine()}
    path.write_text(json.dumps(data, indent=1) + "\n")
    render(README)
    return path


def cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "(not timed)"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(data: dict) -> str:
    """The Markdown of one saved table, with where it was measured."""
    cols = data["columns"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(cols))) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in data["rows"]]
    m = data["machine"]
    lines.append("")
    lines.append(f"Measured {m['date']} by `{data['command']}` at commit {m['commit']}: {m['cpu']}, {m['cores']} cores, "
                 f"load average {' / '.join(str(x) for x in m['load'])}; numba {m['numba']}, Python {m['python']}."
                 + (f" {data['note']}" if data.get("note") else ""))
    return "\n".join(lines)


def render(readme: Path) -> int:
    """Rewrite every marked table in `readme` from its saved results; the number of tables rendered."""
    text = readme.read_text()
    done = 0

    def fill(match: re.Match) -> str:
        nonlocal done
        path = RESULTS / f"{match.group(1)}.json"
        if not path.exists():
            return match.group(0)
        done += 1
        return f"<!-- bench:{match.group(1)} -->\n{table(json.loads(path.read_text()))}\n<!-- /bench:{match.group(1)} -->"

    new = re.sub(r"<!-- bench:([\w-]+) -->\n.*?<!-- /bench:\1 -->", fill, text, flags=re.S)
    if new != text:
        readme.write_text(new)
    return done


if __name__ == "__main__":
    print(f"{render(README)} table(s) rendered into {README}", file=sys.stderr)
