"""The `flowsim` command line: parse arguments, run a command, map failures to exit statuses.

Heavy modules (numba, pyarrow) are imported inside the commands that need them,
so `flowsim --help` stays fast.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from typing import Callable, Iterator, Sequence

from . import __version__
from .errors import ExitStatus, InputError, Problem
from .io.outputs import SIGTERM_STATUS, RunFiles, Terminated, sigterm_raises
from .model.words import counted

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}
MAX_PROBLEMS_SHOWN = 100


def command(name: str):
    """Register a function as the handler of a sub-command."""
    def register(fn):
        COMMANDS[name] = fn
        return fn
    return register


def _err(message: str) -> None:
    print(f"flowsim: {message}", file=sys.stderr)


MAX_SYNTH_FLOWS = 50_000_000  # flows are made in memory: about 100 bytes each
MAX_BENCH_FLOWS = 20_000_000  # ... and prepared for the kernel beside them


def whole(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: a whole number in lo..hi, written as digits or as 1e6 or 1_000_000."""
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
            if not number.is_integer():
                raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
            value = int(number)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value:,} is outside {lo:,}..{hi:,}")
        return value
    return parse


# ---------------------------------------------------------------- commands
@command("validate")
def cmd_validate(args: argparse.Namespace) -> int:
    from .config.loader import load_config

    config = load_config(args.config)
    basic = sum(1 for g in config.groups.values() if g.type == "basic")
    print(f"{args.config}: valid: {counted(len(config.groups), 'security group')} ({basic} basic, {len(config.groups) - basic} advanced), "
          f"{counted(config.rule_count, 'rule')}, {counted(len(config.prefix_lists), 'prefix list')}, "
          f"{counted(len(config.port_lists), 'port list')}, "
          f"{counted(len(config.interfaces), 'interface')} in {counted(len(config.vpcs), 'VPC')}")
    return ExitStatus.OK


CHECK_FLAGS = {"src": "--src", "dst": "--dst", "protocol": "--protocol", "src_port": "--src-port",
               "dst_port": "--dst-port", "vpc": "--vpc", "eni": "--eni", "direction": "--direction"}


@command("check")
def cmd_check(args: argparse.Namespace) -> int:
    from .config.loader import load_config
    from .engine.explain import explain
    from .engine.reference import ReferenceEvaluator
    from .model.network import Flow

    # One flow needs no compiled tables: the reference evaluator (which every fast path is tested
    # against, deciding rule included) answers without starting numba.
    config = load_config(args.config)
    flow = Flow.parse(args.src, args.dst, args.protocol, args.src_port, args.dst_port, vpc=args.vpc, eni=args.eni,
                      direction=args.direction, labels=CHECK_FLAGS)
    verdict = ReferenceEvaluator(config).evaluate(flow)
    explanation = explain(config, flow, verdict)
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=2))
    else:
        print(explanation)
    if args.expect and verdict.verdict != args.expect:
        _err(f"expected {args.expect}, got {verdict.verdict}")
        return ExitStatus.POLICY_FAILED
    return ExitStatus.OK


@command("test")
def cmd_test(args: argparse.Namespace) -> int:
    import time

    from .batch.policytest import junit_xml, load_cases, run_cases
    from .engine.cache import load_engine

    _notice_first_compile(args)
    engine = load_engine(args.config)
    cases = load_cases(args.cases)
    started = time.perf_counter()
    results = run_cases(engine, cases)
    seconds = time.perf_counter() - started
    failed = [r for r in results if not r.passed]
    for r in (results if args.verbose else failed):
        print(r)
    print(f"{len(results)} {'case' if len(results) == 1 else 'cases'}: {len(results) - len(failed)} passed, "
          f"{len(failed)} failed")
    if args.junit:
        args.files["--junit"].write_text(junit_xml(results, os.path.basename(args.cases), seconds), "JUnit report")
    return ExitStatus.POLICY_FAILED if failed else ExitStatus.OK


@command("query")
def cmd_query(args: argparse.Namespace) -> int:
    from .batch.firstuse import FirstUse
    from .batch.query import run_query
    from .engine.cache import load_engine

    with FirstUse(None if args.dask else "flows", args.flows, quiet=args.quiet) as first_use:
        engine = load_engine(args.config)
        first_use.ready(engine)
    progress = sys.stderr.isatty() and not args.quiet
    if args.dask:
        from .batch.distributed import query_dask

        stats, _ = query_dask(engine, args.config, args.flows, args.output, args.dask, threads=args.threads,
                              skip_invalid=args.skip_invalid, progress=progress)
    else:
        stats = run_query(engine, args.flows, args.files["-o"], threads=args.threads, skip_invalid=args.skip_invalid,
                          progress=progress)
    if not args.quiet:
        summary = ", ".join(f"{n} {k}" for k, n in stats.counts.items())
        _err(f"{counted(stats.rows, 'flow')} evaluated: {summary}"
             + (f"; {counted(stats.skipped, 'invalid row')} skipped" if stats.skipped else ""))
        if len(stats.skipped_by_file) > 1 or (stats.skipped_by_file and args.flows not in stats.skipped_by_file):
            for path, count in stats.skipped_by_file.items():
                _err(f"  {path}: {counted(count, 'invalid row')} skipped")
    return ExitStatus.OK


@command("replay")
def cmd_replay(args: argparse.Namespace) -> int:
    from .batch.firstuse import FirstUse
    from .batch.replay import replay
    from .batch.tracediff import load_changes
    from .engine.cache import load_engine

    if args.dask and (args.report or args.change):
        raise InputError(Problem(f"{'--report' if args.report else '--change'} is not available with --dask yet: "
                                 "replay in one process for it", subject="--dask"))
    changes = load_changes(args.change)
    with FirstUse(None if args.dask else "trace", args.trace, args.format, args.quiet) as first_use:
        engine = load_engine(args.config)
        first_use.ready(engine)
    progress = sys.stderr.isatty() and not args.quiet
    if args.dask:
        from .batch.distributed import replay_dask

        summary = replay_dask(engine, args.config, args.trace, args.output, args.dask, fmt=args.format,
                              threads=args.threads, progress=progress).summary
    else:
        recorder = None
        if args.report:
            from .report import ReplayRecorder

            recorder = ReplayRecorder()
        summary = replay(engine, args.trace, args.files["-o"] if args.output else None, fmt=args.format,
                         threads=args.threads, progress=progress, changes=changes,
                         observe=recorder and recorder.observe)
        if recorder is not None:
            from .report import replay_report

            args.files["--report"].write_text(replay_report(summary, recorder), "report")
    if args.summary:
        args.files["--summary"].write_text(json.dumps(summary.to_dict(), indent=2, default=str) + "\n", "summary")
    if not args.quiet:
        print(summary)
    return ExitStatus.OK


def _notice_first_compile(args: argparse.Namespace) -> None:
    """Tell a terminal, once per machine, that the first evaluation waits for numba to compile."""
    from .batch.firstuse import notice_first_compile

    notice_first_compile(quiet=getattr(args, "quiet", False))


@command("diff")
def cmd_diff(args: argparse.Namespace) -> int:
    if args.trace is None:
        for flag, value in (("--at", args.at), ("--format", args.format), ("--threads", args.threads)):
            if value is not None:
                raise InputError(Problem(f"{flag} needs --trace (it applies to replaying recorded traffic)"))
        return _diff_header_space(args)
    if args.at is not None and not math.isfinite(args.at):
        raise InputError(Problem(f"must be a time in unix seconds, not {args.at}", subject="--at"))
    from .batch.firstuse import FirstUse
    from .batch.tracediff import diff_trace
    from .engine.cache import load_engine

    with FirstUse("trace", args.trace, args.format, args.quiet) as first_use:
        old, new = load_engine(args.old), load_engine(args.new)
        first_use.ready(old)
    result = diff_trace(old, new, args.trace,
                        args.files["-o"] if args.output else None, fmt=args.format,
                        threads=args.threads, progress=sys.stderr.isatty() and not args.quiet, at=args.at,
                        names=(args.old, args.new))
    if args.report:
        from .report import trace_diff_report

        args.files["--report"].write_text(trace_diff_report(result), "report")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    elif not args.quiet:
        print(result)
    return ExitStatus.OK


def _diff_header_space(args: argparse.Namespace) -> int:
    """`flowsim diff OLD NEW` over every flow (docs/analysis.md (diff))."""
    from .config.loader import load_config

    _need_dd()
    from .analysis.diff import diff_configs

    old, new = load_config(args.old), load_config(args.new)
    result = diff_configs(old, new, args.old, args.new)
    if args.output:
        from .io.outputs import write_table

        write_table(result.table(), args.files["-o"])
        for change in result.truncated():
            _err(f"warning: {args.output}: change {change} has more boxes than were written")
    if args.report:
        from .report import space_diff_report

        args.files["--report"].write_text(space_diff_report(result), "report")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif not args.quiet:
        print(result)
    return ExitStatus.OK


def _need_dd() -> None:
    """Exit 2 saying how to install the analysis commands' optional dependency (dd with CUDD) when it is missing."""
    try:
        import dd.cudd  # noqa: F401
    except ImportError:
        raise InputError(Problem("the analysis commands need the `dd` package with CUDD: "
                                 "pip install 'flowsim[analysis]'", subject="analysis")) from None


@command("lint")
def cmd_lint(args: argparse.Namespace) -> int:
    from .config.loader import load_config

    _need_dd()
    from .analysis.lint import format_report, lint

    config = load_config(args.config)
    report = lint(config)
    if args.report:
        from .config.validate import quota_usage
        from .report import lint_report

        incomplete = [f"{'+'.join(i.groups)} {i.direction}: {i.reason}" for i in report.incomplete]
        args.files["--report"].write_text(lint_report(report.findings, quota_usage(config), args.config, incomplete),
                                          "report")
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    if args.fail_on and report.at_least(args.fail_on):
        return ExitStatus.POLICY_FAILED
    return ExitStatus.OK


@command("search")
def cmd_search(args: argparse.Namespace) -> int:
    from .config.loader import load_config

    _need_dd()
    from .analysis.search import Query, format_result, parse_port_range, search

    if args.limit < 1:
        raise InputError(Problem(f"must be at least 1, not {args.limit}", subject="--limit"))
    query = Query(args.verdict, args.src, args.dst, args.protocol,
                  parse_port_range(args.src_port, "--src-port") if args.src_port else None,
                  parse_port_range(args.dst_port, "--dst-port") if args.dst_port else None, args.rule)
    config = load_config(args.config)
    if args.rule and args.rule not in {r.name for g in config.groups.values() for r in g.rules} \
            and not args.rule.startswith("default:"):
        raise InputError(Problem(f"{args.rule!r} names no rule of the configuration (GROUP/RULE)", subject="--rule"))
    result = search(config, query, limit=args.limit)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_result(result, query))
    return ExitStatus.OK


@command("bench")
def cmd_bench(args: argparse.Namespace) -> int:
    from .tools.bench import bench_classbench, bench_config

    if args.classbench:
        if args.config is not None:
            raise InputError(Problem("give either CONFIG or --classbench RULES TRACE, not both", subject="bench"))
        result = bench_classbench(args.classbench[0], args.classbench[1], args.threads, args.rounds,
                                  args.files["--matches"] if args.matches else None, sweep=bool(args.report))
    else:
        if args.config is None:
            raise InputError(Problem("needs CONFIG, or --classbench RULES TRACE", subject="bench"))
        if args.matches:
            raise InputError(Problem("--matches is for --classbench", subject="--matches"))
        result = bench_config(args.config, args.flows, args.threads, args.rounds, sweep=bool(args.report))
    if args.report:
        from .report import bench_report

        args.files["--report"].write_text(bench_report(result), "report")
    print(json.dumps(result.to_dict()) if args.json else result)
    return ExitStatus.OK


@command("synth")
def cmd_synth(args: argparse.Namespace) -> int:
    from .config.loader import load_config
    from .tools.synth import write_synthetic_flows

    config = load_config(args.config)
    write_synthetic_flows(config, args.n, args.files["-o"], seed=args.seed)
    if not args.quiet:
        where = "standard output" if args.output in (None, "-") else args.output
        _err(f"{counted(args.n, 'synthetic flow')} aimed at {counted(config.rule_count, 'rule')} of {args.config} "
             f"(seed {args.seed}) written to {where}")
    return ExitStatus.OK


@command("import")
def cmd_import(args: argparse.Namespace) -> int:
    from .config.loader import load_config
    from .errors import ConfigError
    from .importers import import_config, parse_params

    result = import_config(args.format, args.inputs, parse_params(args.param))
    for note in result.notes:
        _err(f"note: {note}")
    out = args.files["-o"]
    out.write_text(result.to_yaml())
    try:
        config = load_config(result.config)
    except ConfigError as exc:
        for problem in exc.problems:
            _err(f"error: imported configuration: {problem}")
        _err(f"the imported configuration breaks {counted(len(exc.problems), 'cloud rule')}"
             + (f"; written to {out.target} for inspection" if not out.stdout else ""))
        return ExitStatus.BAD_INPUT
    if not (config.groups or config.prefix_lists or config.port_lists or config.interfaces):
        _err(f"warning: nothing was imported: {', '.join(map(str, args.inputs))} "
             f"{'holds' if len(args.inputs) == 1 else 'hold'} no Alibaba Cloud security group, prefix list, port list "
             "or interface")
    _err(f"imported {counted(len(config.groups), 'security group')}, {counted(config.rule_count, 'rule')}, "
         f"{counted(len(config.prefix_lists), 'prefix list')}, {counted(len(config.port_lists), 'port list')}, "
         f"{counted(len(config.interfaces), 'interface')} ({counted(len(result.notes), 'note')})"
         + (f" into {out.target}" if not out.stdout else ""))
    return ExitStatus.OK


# ---------------------------------------------------------------- argument parsing
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowsim",
        description="Is this traffic allowed by our Alibaba Cloud security groups, and why?",
        epilog="Exit status: 0 success, 2 invalid input (the message names the file and line or object), 1 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"flowsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check a configuration as the cloud would")
    p.add_argument("config", help="network configuration (YAML or JSON)")

    p = sub.add_parser("check", help="explain the verdict of one flow")
    p.add_argument("config")
    p.add_argument("--src", required=True, help="source address")
    p.add_argument("--dst", required=True, help="destination address")
    p.add_argument("--protocol", "-p", required=True, help="tcp, udp, icmp, icmpv6, gre or an IANA number")
    p.add_argument("--src-port", type=int, default=None)
    p.add_argument("--dst-port", type=int, default=None)
    p.add_argument("--vpc", default=None, help="VPC in which to resolve the addresses")
    p.add_argument("--eni", default=None, help="endpoint mode: evaluate only this interface")
    p.add_argument("--direction", choices=["in", "out", "ingress", "egress"], default=None, help="endpoint mode direction")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.add_argument("--expect", choices=["allow", "deny", "unmanaged"], default=None,
                   help="exit 3 when the verdict is another (a policy test for CI pipelines)")

    p = sub.add_parser("test", help="policy tests: flows with the verdicts they must get (exit 3 when one fails)")
    p.add_argument("config")
    p.add_argument("cases", help="YAML list of cases: flow columns, expect: allow|deny|unmanaged, "
                                 "optional egress_rule / ingress_rule and name")
    p.add_argument("--junit", default=None, metavar="FILE.xml", help="write a JUnit XML report for CI systems")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case, not only the failures")
    p.set_defaults(reads=(("configuration", "config"), ("cases file", "cases")), writes=(("--junit", "junit"),))

    p = sub.add_parser("query", help="verdicts for a batch of flows (CSV or Parquet)")
    p.add_argument("config")
    p.add_argument("flows", help="flows: CSV with a header, or Parquet; - reads CSV from standard input; a folder "
                                 "or a glob: every file in it")
    p.add_argument("-o", "--output", default=None, help="output file; .parquet writes Parquet, else CSV (default: CSV on stdout)")
    p.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    p.add_argument("--skip-invalid", action="store_true", help="skip malformed rows (counted) instead of failing")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary or progress on stderr")
    p.add_argument("--dask", default=None, metavar="local[:N]|ADDRESS",
                   help="run on a Dask cluster: local:N starts N worker processes (default: one per core), an address "
                        "(tcp://HOST:8786) connects to a running scheduler; -o is then a folder of Parquet parts")
    p.set_defaults(reads=(("configuration", "config"), ("flow table", "flows")), writes=(("-o", "output"),))

    p = sub.add_parser("replay", help="replay a timestamped trace statefully and report what was allowed and why")
    p.add_argument("config")
    p.add_argument("trace", help="flow log (Alibaba CSV/JSON lines, AWS), capture (pcap, pcapng) or flow table; "
                                 "a folder or a glob: every file in it, in time order")
    p.add_argument("-o", "--output", default=None, help="per-record verdicts; .parquet writes Parquet, else CSV")
    p.add_argument("--summary", default=None, metavar="JSON", help="write the summary as JSON")
    p.add_argument("--report", default=None, metavar="FILE.html", help="write a self-contained HTML report")
    p.add_argument("--format", default=None, choices=["native", "alibaba-flowlog", "aws-flowlog", "pcap", "pcapng"],
                   help="trace format (default: detected from the content)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--change", action="append", default=[], metavar="TIME=CONFIG",
                   help="apply CONFIG from TIME (unix seconds) on; live sessions are re-evaluated (repeatable, in time order)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary or progress")
    p.add_argument("--dask", default=None, metavar="local[:N]|ADDRESS",
                   help="run on a Dask cluster: local:N starts N worker processes (default: one per core), an address "
                        "(tcp://HOST:8786) connects to a running scheduler; -o is then a folder of Parquet parts")
    p.set_defaults(reads=(("configuration", "config"), ("trace", "trace"),
                          lambda a: [("--change configuration", v.partition("=")[2]) for v in a.change or ()]),
                   writes=(("-o", "output"), ("--summary", "summary"), ("--report", "report")))

    p = sub.add_parser("diff", help="what changes between two configurations (over recorded traffic with --trace)")
    p.add_argument("old", help="the configuration in force (YAML or JSON)")
    p.add_argument("new", help="the proposed configuration")
    p.add_argument("--trace", default=None, help="replay this trace under both and report the records whose verdict changes")
    p.add_argument("--at", type=float, default=None, metavar="TIME",
                   help="with --trace: NEW deployed at TIME (unix seconds), live sessions re-evaluated; OLD before it")
    p.add_argument("-o", "--output", default=None,
                   help="one row per box of each change (with --trace: per-record old and new verdicts); "
                        ".parquet writes Parquet, else CSV")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--format", default=None, choices=["native", "alibaba-flowlog", "aws-flowlog", "pcap", "pcapng"],
                   help="with --trace: trace format (default: detected from the content)")
    p.add_argument("--threads", type=int, default=None, help="with --trace: evaluation threads")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary or progress")
    p.add_argument("--report", default=None, metavar="FILE.html", help="write a self-contained HTML report")
    p.set_defaults(reads=(("old configuration", "old"), ("new configuration", "new"), ("trace", "trace")),
                   writes=(("-o", "output"), ("--report", "report")))

    p = sub.add_parser("lint", help="rules that never decide, add nothing, lose ties or open too much; quotas")
    p.add_argument("config", help="network configuration (YAML or JSON)")
    p.add_argument("--json", action="store_true", help="findings as JSON")
    p.add_argument("--fail-on", choices=("info", "warning", "error"), help="exit 3 when a finding at or above this severity exists")
    p.add_argument("--report", default=None, metavar="FILE.html", help="write a self-contained HTML report")
    p.set_defaults(reads=(("configuration", "config"),), writes=(("--report", "report"),))

    p = sub.add_parser("search", help="flows that get a verdict, with their deciding rules, or a proof that none exists")
    p.add_argument("config", help="network configuration (YAML or JSON)")
    p.add_argument("--verdict", required=True, choices=("allow", "deny"))
    p.add_argument("--src", help="CIDR, ENI id, group id or external (comma-separated: any of them)")
    p.add_argument("--dst", help="CIDR, ENI id, group id or external (comma-separated: any of them)")
    p.add_argument("-p", "--protocol", help="protocol name or number")
    p.add_argument("--src-port", help="port or range LO-HI")
    p.add_argument("--dst-port", help="port or range LO-HI")
    p.add_argument("--rule", help="GROUP/RULE (or a default rule's name): only flows it decides")
    p.add_argument("--limit", type=int, default=10, help="at most this many examples (default 10)")
    p.add_argument("--json", action="store_true", help="the answer as JSON")
    p.set_defaults(reads=(("configuration", "config"),), writes=())

    p = sub.add_parser("import", help="convert an existing cloud configuration into flowsim's format")
    p.add_argument("format", choices=["alibaba-api", "terraform", "ros"],
                   help="alibaba-api (aliyun ecs Describe* JSON), terraform (.tf, show -json), ros (templates)")
    p.add_argument("inputs", nargs="+", help="files or directories")
    p.add_argument("-o", "--output", default=None, help="configuration to write (default: stdout)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="Terraform variable or ROS parameter value (repeatable)")
    p.set_defaults(reads=(_import_inputs,), writes=(("-o", "output"),))

    p = sub.add_parser("bench", help="measure classification speed on a configuration or a ClassBench rule set")
    p.add_argument("config", nargs="?", default=None, help="configuration (synthetic flows aimed at it are timed)")
    p.add_argument("--classbench", nargs=2, metavar=("RULES", "TRACE"), help="a ClassBench filter set and its trace")
    p.add_argument("--flows", type=whole(1, MAX_BENCH_FLOWS), default=1_000_000,
                   help="synthetic flows for CONFIG (default 1,000,000)")
    p.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    p.add_argument("--rounds", type=whole(1, 10_000), default=10, help="timed rounds; the fastest is reported (default 10)")
    p.add_argument("--matches", default=None, metavar="OUT", help="with --classbench: write each packet's matching "
                   "rule (0-based, -1 for none), one per line")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--report", default=None, metavar="FILE.html",
                   help="also measure 1..T threads and fewer rules, and write a self-contained HTML report")
    p.set_defaults(reads=(("configuration", "config"), ("ClassBench file", "classbench")),
                   writes=(("--matches", "matches"), ("--report", "report")))

    p = sub.add_parser("synth", help="generate flows aimed at a configuration")
    p.add_argument("config")
    p.add_argument("-n", type=whole(0, MAX_SYNTH_FLOWS), required=True, help="number of flows")
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    p.add_argument("-o", "--output", required=True, help=".parquet or .csv (- for CSV on stdout)")
    p.add_argument("-q", "--quiet", action="store_true", help="no confirmation on stderr")
    p.set_defaults(reads=(("configuration", "config"),), writes=(("-o", "output"),))
    return parser


def _import_inputs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The files `import` reads: those named and those it picks from the directories named."""
    from .importers import collect_files

    return [("input", str(path)) for path in collect_files(args.format, args.inputs)]


def run_files(args: argparse.Namespace) -> RunFiles:
    """The run's inputs and outputs, from the `reads` and `writes` its sub-command declares: (what, dest)
    pairs or functions of the arguments giving (what, path) pairs, and (flag, dest) pairs."""
    inputs: list[tuple[str, str]] = []
    for item in getattr(args, "reads", ()):
        if callable(item):
            inputs.extend(item(args))
            continue
        what, dest = item
        value = getattr(args, dest)
        inputs.extend((what, path) for path in (value if isinstance(value, list) else [value]) if path is not None)
    # with --dask, -o names a folder of parts, committed by the distributed back-end (flowsim.batch.distributed)
    folder = getattr(args, "dask", None)
    return RunFiles(inputs, [(flag, getattr(args, dest)) for flag, dest in getattr(args, "writes", ())
                             if not (folder and flag == "-o")])


@contextlib.contextmanager
def _quiet_unraisable() -> Iterator[None]:
    """An exception a library could not raise (pyarrow calling back into Python while reading a file) is one
    line on stderr, not the traceback Python prints by default (FLOWSIM_DEBUG=1 keeps that)."""
    if os.environ.get("FLOWSIM_DEBUG"):
        yield
        return
    previous = sys.unraisablehook
    sys.unraisablehook = lambda u: _err(f"warning: ignored {type(u.exc_value).__name__}: {str(u.exc_value)[:200]}")
    try:
        yield
    finally:
        sys.unraisablehook = previous


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status instead of raising."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own message
        return ExitStatus.BAD_INPUT if exc.code else ExitStatus.OK
    if args.command is None:
        parser.print_help()
        return ExitStatus.BAD_INPUT
    try:
        with sigterm_raises(), _quiet_unraisable(), run_files(args) as args.files:
            return int(COMMANDS[args.command](args))
    except InputError as exc:
        for problem in exc.problems[:MAX_PROBLEMS_SHOWN]:
            _err(f"error: {problem}")
        if len(exc.problems) > MAX_PROBLEMS_SHOWN:
            _err(f"... and {len(exc.problems) - MAX_PROBLEMS_SHOWN} more")
        if len(exc.problems) > 1:
            _err(f"{len(exc.problems)} problems")
        return ExitStatus.BAD_INPUT
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitStatus.OK
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except Terminated:
        _err("terminated")
        return SIGTERM_STATUS
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("FLOWSIM_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} (set FLOWSIM_DEBUG=1 for a traceback)")
        return ExitStatus.ERROR


COLLECT_EVERY = (50_000, 20, 20)  # the program's gc thresholds (Python's: 700, 10, 10)


def run() -> None:
    """The `flowsim` program: `main` in a process of its own.

    numba probes for SciPy's BLAS the first time it loads a compiled function, and importing
    SciPy (where it is installed) costs a fifth of a second of every command; flowsim's
    kernels use no BLAS, so the probe is told, in this process only, that SciPy is absent.

    The cyclic collector runs after every 50,000 new containers rather than Python's 700: importing numba
    and, on first use, compiling the kernels make millions of short-lived objects."""
    import gc

    sys.modules.setdefault("scipy", None)  # type: ignore[arg-type]
    gc.set_threshold(*COLLECT_EVERY)
    sys.exit(main())
