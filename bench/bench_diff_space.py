"""Header-space diff speed (issue 20): the engine benchmark's 1,000 ENIs x 100 rules against a copy with ten rules
changed across groups, and against a copy with one group changed (the analysis visits only the units the change
touches), and the README example against its edited copy.

Run: `python -m pytest bench/bench_diff_space.py --benchmark-only` (pytest-benchmark), or
`python bench/bench_diff_space.py` for a plain table. Building and loading both configurations stay outside the
timed region; the timed region is the whole diff (BDD construction, the changed region, grouping, boxes) on one
core. Wall time and the process's CPU time are both printed: on a shared machine the wall time also counts the
time other processes held the core.
"""
from __future__ import annotations

import copy
import random
import resource
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_workloads import shape_for  # noqa: E402

import flowsim  # noqa: E402
from flowsim.analysis.diff import diff_configs  # noqa: E402
from flowsim.testing.randomconfig import random_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE, EDITED = ROOT / "traces" / "example.yaml", ROOT / "traces" / "example-edited.yaml"


def edited(raw: dict, changes: int, groups: int, seed: int = 7) -> dict:
    """A copy with `changes` rules edited (a port range, an action or a priority, in turn), spread over `groups`
    groups chosen at random."""
    out = copy.deepcopy(raw)
    rng = random.Random(seed)
    names = rng.sample(sorted(g for g, v in out["security_groups"].items() if v["rules"]), groups)
    for k in range(changes):
        rules = out["security_groups"][names[k % groups]]["rules"]
        rule = rules[rng.randrange(len(rules))]
        if k % 3 == 0 and rule.get("protocol") in ("tcp", "udp") and "port_list" not in rule:
            rule["ports"] = f"{rng.randint(1, 1000)}-{rng.randint(1001, 65535)}"
        elif k % 3 == 1:
            rule["action"] = "drop" if rule.get("action", "accept") == "accept" else "accept"
        else:
            rule["priority"] = rng.randint(1, 100)
            rule.pop("legacy", None)
    return out


def pairs() -> dict[str, tuple]:
    raw = random_config(1, shape_for(100))
    old = flowsim.load_config(raw)
    return {"10 rules in 10 groups": (old, flowsim.load_config(edited(raw, 10, 10))),
            "1 group (3 rules)": (old, flowsim.load_config(edited(raw, 3, 1)))}


@pytest.fixture(scope="module")
def big_pairs():
    return pairs()


def bench_diff_example(benchmark):
    old, new = flowsim.load_config(EXAMPLE), flowsim.load_config(EDITED)
    benchmark.pedantic(lambda: diff_configs(old, new), rounds=5)


@pytest.mark.parametrize("case", ["10 rules in 10 groups", "1 group (3 rules)"])
def bench_diff_1000_enis(benchmark, big_pairs, case):
    old, new = big_pairs[case]
    result = benchmark.pedantic(lambda: diff_configs(old, new), rounds=1)
    benchmark.extra_info.update(changes=len(result.changes), units=result.units)


def main() -> None:
    old, new = flowsim.load_config(EXAMPLE), flowsim.load_config(EDITED)
    diff_configs(old, new)  # load CUDD once
    times = []
    for _ in range(5):
        start = time.perf_counter()
        result = diff_configs(old, new)
        times.append(time.perf_counter() - start)
    print(f"README example vs edited copy: {min(times):.3f} s (best of 5), {len(result.changes)} changes")
    for case, (a, b) in pairs().items():
        start, cpu = time.perf_counter(), time.process_time()
        result = diff_configs(a, b)
        t, cpu = time.perf_counter() - start, time.process_time() - cpu
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"1,000 ENIs x 100 rules, {case} changed: {t:.2f} s wall, {cpu:.2f} s CPU, one thread, {result.units} units, "
              f"{len(result.changes)} changes, incomplete {len(result.incomplete)}, peak RSS {rss:.2f} GiB")


if __name__ == "__main__":
    main()
