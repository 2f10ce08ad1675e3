"""The first-use notice: printed once, on a terminal, while numba compiles the kernels the first time."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from flowsim.tools.firstuse import NOTICE

ROOT = Path(__file__).resolve().parent.parent


def _run_on_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `python -m flowsim ARGV` with stderr (and stdout) on a pseudo-terminal; its exit status and output."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "flowsim", *argv], stdin=subprocess.DEVNULL, stdout=terminal,
                            stderr=terminal, env=env, cwd=ROOT)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is done writing
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return proc.wait(timeout=600), b"".join(chunks).decode(errors="replace")


def test_notice_once_on_a_terminal_only(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    argv = ["query", "traces/example.yaml", "traces/example-flows.csv", "-o", str(tmp_path / "out.csv")]
    code, first = _run_on_terminal(argv, env)
    assert code == 0, first
    assert NOTICE in first
    code, second = _run_on_terminal(argv, env)
    assert code == 0, second
    assert NOTICE not in second
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "other-cache")
    piped = subprocess.run([sys.executable, "-m", "flowsim", *argv], env=env, cwd=ROOT, capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    assert NOTICE not in piped.stderr  # not a terminal: nothing said
