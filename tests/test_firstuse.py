"""First use: the notice, printed once on a terminal while numba compiles the kernels the first time, and
the helper process that compiles half of a replay's kernels beside the command."""
from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from flowsim.batch.firstuse import NOTICE

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


def _env(tmp_path) -> dict[str, str]:
    """An environment with a cache of its own for numba (empty: the kernels are not compiled yet)."""
    return dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"), FLOWSIM_NO_CACHE="1",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


# the README's commands: replays of a capture and of a flow log (whose records name ENIs and VPCs), a query
COMMANDS = [["replay", "traces/example.yaml", "traces/example.pcap"],
            ["replay", "traces/example.yaml", "traces/example-flowlog.csv"],
            ["query", "traces/example.yaml", "traces/example-flows.csv", "-o", "{out}"]]


@pytest.mark.parametrize("commands", [COMMANDS[:2], COMMANDS[2:]], ids=["replays", "query"])
def test_the_warm_ups_compile_every_kernel_the_commands_need(tmp_path, commands):
    """What the helper compiles (reading the input; a replay's sessions) and what the command compiles
    beside it (evaluation; a replay's counting) are the very specialisations the commands call:
    afterwards they compile nothing. (Replays and the query apart: a flow log's reader compiles the
    address parsing a query's reader needs.)"""
    env = _env(tmp_path)
    warm = ["from flowsim.batch.firstuse import helper_main, warm_counting, warm_evaluation",
            "from flowsim.engine.cache import load_engine",
            "engine = load_engine('traces/example.yaml')",
            "warm_evaluation(engine); warm_counting(engine)"]
    warm += [f"helper_main([{'trace' if argv[0] == 'replay' else 'flows'!r}, {argv[2]!r}])" for argv in commands]
    _python("\n".join(warm), env)
    commands = [[a.format(out=tmp_path / "verdicts.csv") for a in argv] for argv in commands]
    compiled = _python("\n".join([
        "from numba.core import event",
        "compiled = []",
        "class Listener(event.Listener):",
        "    def on_start(self, e): compiled.append(e.data['dispatcher'].py_func.__qualname__)",
        "    def on_end(self, e): pass",
        "event.register('numba:compile', Listener())",
        "from flowsim.cli import main",
        *[f"assert main({argv!r}) == 0" for argv in commands],
        "print('compiled:', *compiled)"]), env)
    assert compiled.splitlines()[-1] == "compiled:"  # (the commands' summaries come first)


def test_a_cold_replay_shares_compiling_with_its_helper_and_answers_as_a_warm_one(tmp_path):
    env = _env(tmp_path)
    argv = [*COMMANDS[0], "--summary", str(tmp_path / "cold.json")]
    cold = subprocess.run([sys.executable, "-m", "flowsim", *argv], env=env, cwd=ROOT, capture_output=True, text=True)
    assert cold.returncode == 0, cold.stderr
    assert any(name.startswith("sessions.apply_sessions") for _, _, files in os.walk(env["NUMBA_CACHE_DIR"])
               for name in files)  # the helper (or the command) compiled the session kernel into the cache
    argv[-1] = str(tmp_path / "warm.json")
    warm = subprocess.run([sys.executable, "-m", "flowsim", *argv], env=env, cwd=ROOT, capture_output=True, text=True)
    assert warm.returncode == 0, warm.stderr
    strip = [line for line in cold.stdout.splitlines() if " in " not in line]
    assert strip == [line for line in warm.stdout.splitlines() if " in " not in line]
    drop = ("seconds", "records_per_s")
    cold_summary, warm_summary = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("cold", "warm"))
    assert {k: v for k, v in cold_summary.items() if k not in drop} == {k: v for k, v in warm_summary.items() if k not in drop}


def _helpers_of(trace: str) -> list[int]:
    """Process ids of running helpers started for `trace`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"flowsim.batch.firstuse" in argv and trace.encode() in argv:
            found.append(int(pid))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to look for the helper process")
def test_a_failing_replay_leaves_no_helper_behind(tmp_path):
    env = _env(tmp_path)
    trace = tmp_path / "trace.pcap"
    trace.write_bytes((ROOT / "traces" / "example.pcap").read_bytes())
    bad = tmp_path / "bad.yaml"
    bad.write_text("security_groups: {sg-a: {type: basic, vpc: vpc-a, rules: [{direction: sideways}]}}\n")
    done = subprocess.run([sys.executable, "-m", "flowsim", "replay", str(bad), str(trace)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert _helpers_of(str(trace)) == []
