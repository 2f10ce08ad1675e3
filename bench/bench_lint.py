"""Analysis speed (issue 19): `lint` on the README example, on ClassBench rule sets as one security group
(analysed alone: local = every address), on the engine benchmark's 1,000 ENIs × 100 rules, and `search` on the
README example.

Run: `python -m pytest bench/bench_lint.py --benchmark-only` (pytest-benchmark), or `python bench/bench_lint.py`
for a plain table. Loading and validating the configuration stay outside the timed region; the timed region
is the whole analysis (BDD construction, sweep, findings) on one core.
"""
from __future__ import annotations

import dataclasses
import resource
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_workloads import classbench_group, shape_for  # noqa: E402

import flowsim  # noqa: E402
from flowsim.analysis.lint import lint  # noqa: E402
from flowsim.analysis.search import Query, search  # noqa: E402
from flowsim.testing.randomconfig import random_config  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "example.yaml"
CLASSBENCH_SETS = ["acl1_1k", "fw1_1k", "ipc1_1k"]
SEARCH = Query("allow", src="external", dst="sg-web", protocol="tcp", dst_ports=(22, 22))


def classbench_alone(name: str):
    """The ClassBench set as one group attached to no ENI, or None where the data is not there."""
    workload = classbench_group(name, min_flows=1)
    return None if workload is None else dataclasses.replace(workload[0].config, interfaces={})


def engine_config():
    return flowsim.load_config(random_config(1, shape_for(100)))


def bench_lint_example(benchmark):
    config = flowsim.load_config(EXAMPLE)
    benchmark.pedantic(lambda: lint(config), rounds=5)


@pytest.mark.parametrize("name", CLASSBENCH_SETS)
def bench_lint_classbench_group(benchmark, name):
    config = classbench_alone(name)
    if config is None:
        pytest.skip("ClassBench data not found")
    report = benchmark.pedantic(lambda: lint(config), rounds=1)
    benchmark.extra_info.update(rules=config.rule_count, findings=len(report.findings))


def bench_lint_1000_enis_100_rules(benchmark):
    config = engine_config()
    report = benchmark.pedantic(lambda: lint(config), rounds=1)
    benchmark.extra_info.update(units=report.units, seconds_per_unit=report.seconds / report.units)


def bench_search_example(benchmark):
    config = flowsim.load_config(EXAMPLE)
    benchmark.pedantic(lambda: search(config, SEARCH), rounds=5)


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    config = flowsim.load_config(EXAMPLE)
    lint(config)  # load CUDD once
    t = min(_timed(lambda: lint(config))[0] for _ in range(5))
    print(f"README example lint: {t:.3f} s (best of 5)")
    t = min(_timed(lambda: search(config, SEARCH))[0] for _ in range(5))
    print(f"README example search: {t:.3f} s (best of 5)")
    for name in CLASSBENCH_SETS:
        cb = classbench_alone(name)
        if cb is None:
            print(f"{name}: skipped, ClassBench data not found")
            continue
        t, report = _timed(lambda: lint(cb))
        kinds = {}
        for f in report.findings:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        print(f"{name} as one group ({cb.rule_count} rules): lint {t:.2f} s, {kinds}, incomplete {len(report.incomplete)}")
    big = engine_config()
    t, report = _timed(lambda: lint(big))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"1,000 ENIs x 100 rules: lint {t:.1f} s, {report.units} units, {t / report.units * 1000:.1f} ms per unit, "
          f"{len(report.findings)} findings, incomplete {len(report.incomplete)}, peak RSS {rss:.2f} GiB")


if __name__ == "__main__":
    main()
