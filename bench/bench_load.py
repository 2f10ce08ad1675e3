"""Loading a large configuration (reliability issue: 50 MB, ~644,600 rules once took 112 s and 2.9 GiB; target
under 15 s and 1.5 GiB peak RSS): `flowsim validate` on a generated file of 6,446 groups x 100 rules, each rule
one flow mapping on its line, one interface per group.

The file is written to a temporary folder (about 56 MB), never into the checkout. Each round runs
`flowsim validate FILE` in a fresh process, so the figures are a user's: seconds of wall clock and user CPU
and the peak resident set size the kernel reports for the child.
Run: `python bench/bench_load.py [--groups N] [--rounds R]` or
`python -m pytest bench/bench_load.py --benchmark-only` (pytest-benchmark).
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUPS, RULES = 6446, 100
PROTOCOLS = ["tcp", "udp", "icmp", "all"]


def generate(path: Path, groups: int = GROUPS, rules: int = RULES, seed: int = 1) -> int:
    """Write a valid configuration of `groups` x `rules` rules; returns the number of rules. Peers are
    /16 CIDRs, one rule in 13 a basic group of the same VPC; ports are random single ports or ranges."""
    rnd = random.Random(seed)
    span = groups - groups % 4 or groups
    with open(path, "w") as f:
        f.write("limits: {rules_per_eni: 100000, group_rules_per_group: 100000}\nsecurity_groups:\n")
        for g in range(groups):
            f.write(f"  sg-g{g:05d}:\n    type: {'advanced' if g % 10 == 0 else 'basic'}\n    vpc: vpc-{g % 4}\n"
                    "    rules:\n")
            for r in range(rules):
                protocol = PROTOCOLS[rnd.randrange(4)] if r % 7 else "tcp"
                direction = "ingress" if r % 3 else "egress"
                action = ", action: drop" if r % 11 == 0 else ""
                ports = ""
                if protocol in ("tcp", "udp"):
                    lo = rnd.randrange(1, 60000)
                    ports = f", ports: {lo}" if r % 2 else f", ports: {lo}-{lo + rnd.randrange(100)}"
                priority = f", priority: {1 + r % 100}" if r % 10 == 0 else ""
                peer = f"10.{rnd.randrange(256)}.0.0/16"
                if r % 13 == 0 and g % 10:  # a basic group of the same VPC, not itself
                    other = (g + 4 * rnd.randrange(1, max(2, groups // 4))) % span
                    if other % 10 and other != g:
                        peer = f"sg-g{other:05d}"
                f.write(f"      - {{id: r{r}, direction: {direction}{action}{priority}, protocol: {protocol}{ports}, "
                        f"peer: {peer}}}\n")
        f.write("interfaces:\n")
        for g in range(groups):
            f.write(f"  eni-{g:05d}:\n    vpc: vpc-{g % 4}\n    security_groups: [sg-g{g:05d}]\n"
                    f"    ips: [172.16.{g // 250}.{g % 250 + 1}]\n")
    return groups * rules


def validate_once(path: Path) -> tuple[float, float, float]:
    """(wall seconds, user CPU seconds, peak RSS in MiB) of `flowsim validate path` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "flowsim", "validate", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status, usage = _wait(proc)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"flowsim validate {path} exited {status}")
    return wall, usage.ru_utime, usage.ru_maxrss / 1024


def _wait(proc: subprocess.Popen) -> tuple[int, resource.struct_rusage]:
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage


def bench_load_50mb_config(benchmark, tmp_path):
    path = tmp_path / "large.yaml"
    rules = generate(path)
    seen = []
    benchmark.pedantic(lambda: seen.append(validate_once(path)), rounds=1, iterations=1)
    benchmark.extra_info.update(rules=rules, megabytes=round(path.stat().st_size / 1e6, 1),
                                user_seconds=round(seen[-1][1], 1), peak_rss_mib=round(seen[-1][2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=GROUPS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--save", action="store_true", help="keep the table in bench/results/load.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.yaml"
        rules = generate(path, args.groups)
        size = path.stat().st_size / 1e6
        print(f"{path.name}: {size:.1f} MB, {rules:,} rules")
        rows = []
        for i in range(args.rounds):
            wall, user, rss = validate_once(path)
            print(f"round {i + 1}: {wall:.1f} s wall, {user:.1f} s user CPU, peak RSS {rss:.0f} MiB "
                  f"(load {os.getloadavg()[0]:.1f})")
            rows.append([i + 1, round(size, 1), rules, round(wall, 2), round(user, 2), round(rss)])
    if args.save:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import results

        results.save("load", f"python bench/bench_load.py --groups {args.groups} --rounds {args.rounds} --save",
                     ["round", "MB", "rules", "wall s", "user s", "peak RSS MiB"], rows,
                     note="flowsim validate in a fresh process; target under 15 s and 1.5 GiB.")


if __name__ == "__main__":
    main()
