"""Compare the engine of this checkout with another one, interleaved in one process.

This machine's speed drifts by a third over minutes, so two benchmark runs taken
apart cannot tell a 10% change from noise. This imports the other checkout's
package under another name, compiles the same configuration with both, checks
that their verdicts and deciding rules agree (by name: the versions may number rules
differently), and times them alternately on the same flows, the order of the two
swapped every round.

Run: `python bench/ab_engine.py OTHER_CHECKOUT [--rules 100] [--threads 1] [--rounds 15] [--differ-ok]`
(for instance a `git worktree add /tmp/base main~3`).
"""
from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_workloads import set_threads, shape_for  # noqa: E402

import flowsim  # noqa: E402
from flowsim.io.flows import prepare_flows  # noqa: E402
from flowsim.testing.randomconfig import random_config  # noqa: E402
from flowsim.tools.synth import synthesize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="a checkout of flowsim to compare with")
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--flows", type=int, default=1_000_000)
    parser.add_argument("--differ-ok", action="store_true", help="time them even where their verdicts differ")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    shutil.copytree(args.other / "flowsim", folder / "flowsim_other")  # the package imports itself relatively
    sys.path.insert(0, str(folder))
    other = importlib.import_module("flowsim_other")
    config = random_config(1, shape_for(args.rules))
    here, there = flowsim.compile(flowsim.load_config(config)), other.compile(other.load_config(config))
    table = synthesize(here.config, args.flows, seed=1)
    flows_here = prepare_flows(table)
    flows_module = "flowsim_other.io.flows" if (folder / "flowsim_other" / "io").is_dir() else "flowsim_other.flows"
    flows_there = importlib.import_module(flows_module).prepare_flows(table)  # before or after the rooms
    set_threads(args.threads)
    a, b = there.evaluate_arrays(flows_there), here.evaluate_arrays(flows_here)
    names = [np.array(("",) + e.tables.rule_names) for e in (there, here)]
    checks = {"verdict": (a.verdict, b.verdict),
              "egress rule": (names[0][a.egress_code + 1], names[1][b.egress_code + 1]),
              "ingress rule": (names[0][a.ingress_code + 1], names[1][b.ingress_code + 1])}
    for what, (x, y) in checks.items():
        differ = int(np.count_nonzero(x != y))
        if differ:  # a base with a bug this checkout fixed: timing is still fair when few flows differ
            print(f"the two versions disagree on the {what} of {differ:,} of {args.flows:,} flows")
            assert args.differ_ok, "pass --differ-ok to time them anyway"
    times: dict[str, list[float]] = {"other": [], "this": []}
    runs = [("other", there, flows_there), ("this", here, flows_here)]
    for round_ in range(args.rounds):  # whichever runs second in a round runs on warmer caches
        for name, engine, flows in (runs if round_ % 2 == 0 else runs[::-1]):
            started = time.perf_counter()
            engine.evaluate_arrays(flows)
            times[name].append(time.perf_counter() - started)
    for name, values in times.items():
        print(f"{name:>5}: best {min(values) * 1e3:7.1f} ms, median {np.median(values) * 1e3:7.1f} ms "
              f"({args.flows / min(values) / 1e6:.2f} M flows/s, {args.threads} thread(s), {args.rules} rules/ENI)")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
