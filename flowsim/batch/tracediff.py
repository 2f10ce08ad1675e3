"""Change impact over recorded traffic: `flowsim diff OLD NEW --trace T` and `flowsim replay --change TIME=NEW`.

Configuration changes during a replay (docs/semantics.md §5, rule changes during a
trace): from time T on, NEW decides. Every session alive at T is evaluated
again under NEW as if its opening packet arrived at T (by its rules alone, as
a new packet: path mode, or the endpoint mode it was recorded in). Where that
packet is allowed the session lives on at each of its ENIs that the packet
still passes under NEW (ENIs are matched by id, since the two compiled
configurations number them apart); it keeps the time of its last packet, so
it expires when it would have. Every other session is closed, and its later
packets are evaluated as new traffic under NEW. A record reaches the session
pass in time order; a record older than T that arrives after NEW took over
(out of order by more than a chunk) is decided by NEW. A record without a
time is decided by the configuration in force when it is read.

A diff over a trace replays it under both configurations in one pass: each
chunk is evaluated by both engines and goes through two session tables. With
`at`, the new side is OLD until that time and NEW from it (the change deployed
at `at`, its live sessions re-evaluated), compared with OLD throughout. A
record is `changed` when its verdict differs; changes are counted by (old
verdict, old deciding rules) -> (new verdict, new deciding rules).
"""
from __future__ import annotations

import math
import time as clock
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa

from ..engine.engine import VERDICT_NAMES, Engine, RawVerdicts
from ..errors import InputError, Problem
from ..io.flows import FlowArrays, Names
from ..io.outputs import Output, writing
from ..kernels import codes as C
from ..model.words import counted
from .replay import (
    SESSION_TIMEOUT,
    FlowCounter,
    Replayer,
    ReplaySummary,
    SessionTable,
    TimeHistogram,
    finish_summary,
    flow_arrays,
    in_time_order,
    record_table,
)

_TOP_FLOWS = 20
_CHANGED_COLUMNS = ("old_verdict", "new_verdict", "old_egress_rule", "old_ingress_rule", "new_egress_rule",
                    "new_ingress_rule", "changed")


def load_changes(items: Sequence[str]) -> list[tuple[float, Engine, str]]:
    """`--change TIME=CONFIG` values as (time, engine, path) in time order, each configuration loaded and compiled.

    A malformed value, or one not after the one before it, is an InputError naming `--change`."""
    from ..engine.cache import load_engine

    parsed: list[tuple[float, str]] = []
    for item in items:
        text, sep, path = item.partition("=")
        try:
            at = float(text)
        except ValueError:
            at = math.nan
        if not sep or not path or not math.isfinite(at):
            raise InputError(Problem(f"expected TIME=CONFIG, TIME in unix seconds, not {item!r}", subject="--change"))
        if parsed and at <= parsed[-1][0]:
            raise InputError(Problem(f"changes must come in time order: {item!r} is not after {parsed[-1][0]}",
                                     subject="--change"))
        parsed.append((at, path))
    return [(at, load_engine(path), path) for at, path in parsed]


class ChangingReplayer(Replayer):
    """A replayer that applies configuration changes at given times (see the module's docstring)."""

    def __init__(self, engine: Engine, changes: Sequence[tuple[float, Engine, str]], summary: ReplaySummary,
                 threads: int | None = None, timeout: float = SESSION_TIMEOUT):
        super().__init__(engine, summary, threads, timeout)
        times = [at for at, _, _ in changes]
        if not all(math.isfinite(at) for at in times) or any(b <= a for a, b in zip(times, times[1:])):
            raise InputError(Problem(f"change times must be finite and increasing, not {times}", subject="changes"))
        self.pending = list(changes)
        self.vpc_named: bool | None = None  # whether the trace names VPCs: opening packets are then re-evaluated in theirs

    def process(self, chunk, flows: FlowArrays | None = None) -> tuple[RawVerdicts, np.ndarray, np.ndarray]:
        if self.vpc_named is None:
            self.vpc_named = chunk.vpc is not None
        return super().process(chunk, flows)

    def cuts(self, chunk) -> Iterator[np.ndarray | None]:
        """Masks of the chunk's pieces that one configuration decides, in order (None: the whole chunk).
        The change between two pieces is applied when the second is asked for, after the first was replayed."""
        rest = None
        while self.pending:
            at, engine, name = self.pending[0]
            later = chunk.time >= at if rest is None else rest & (chunk.time >= at)
            if not later.any():
                break
            earlier = ~later if rest is None else rest & ~later
            if earlier.any():
                yield earlier
            self.pending.pop(0)
            self.change(at, engine, name)
            rest = later
        yield rest

    def finish(self, invalid_reasons: Counter) -> None:
        """Changes after the trace's last record are applied too: the summary says what they would close."""
        while self.pending:
            at, engine, name = self.pending.pop(0)
            self.change(at, engine, name)
        super().finish(invalid_reasons)

    def change(self, at: float, engine: Engine, name: str) -> None:
        """Apply `engine` from time `at` on: re-evaluate the sessions alive at `at`, carry the allowed over."""
        live = closed = 0
        if self.sessions is not None:
            table = self.sessions
            entries = table.arena[:table.used]
            entries = entries[at - entries["last"] <= self.timeout]
            raw = engine.evaluate_arrays(_opening_packets(entries, self.engine, bool(self.vpc_named)), self.threads)
            allowed = raw.verdict == C.ALLOW
            single = entries["seni"] == entries["deni"]
            index = {eni: i for i, eni in enumerate(engine.tables.eni_ids)}
            renumber = np.array([index.get(eni, -1) for eni in self.engine.tables.eni_ids], np.int32)

            def carried(old_eni: np.ndarray) -> np.ndarray:
                new_eni = renumber[old_eni]
                return allowed & (new_eni >= 0) & ((new_eni == raw.src_eni) | (new_eni == raw.dst_eni))

            live = int(np.where(single, 1, 2).sum())
            closed = int((~carried(entries["seni"])).sum() + (~carried(entries["deni"]) & ~single).sum())
            self.sessions = _reopened(entries[allowed], raw.take(allowed), table.merged, self.timeout,
                                      engine.tables.code_allows)
        self.use(engine)
        self.summary.changes.append({"time": float(at), "config": name, "live": live, "closed": closed})


def _opening_packets(entries: np.ndarray, engine: Engine, vpc_named: bool) -> FlowArrays:
    """The packets that opened session entries, as flows to evaluate again: in path mode, or in the endpoint
    mode they were recorded in (the entry's ENI, by id); in the VPC of the entry's ENI where the trace names VPCs."""
    n = len(entries)
    column = _columns(entries)
    eni = column["seni"]
    mode = column["mode"]
    tables = engine.tables
    vpc = Names(list(tables.vpc_names), tables.eni_vpc[eni].astype(np.int64)) if vpc_named else None
    return FlowArrays(column["fam"], column["shi"], column["slo"], column["fam"], column["dhi"], column["dlo"],
                      column["proto"], column["sport"], column["dport"], mode, vpc,
                      Names(list(tables.eni_ids), np.where(mode != 0, eni, -1).astype(np.int64)), np.zeros(n, np.bool_))


def _reopened(entries: np.ndarray, raw: RawVerdicts, merged: bool, timeout: float,
              code_allows: np.ndarray) -> SessionTable:
    """A session table holding `entries` (their opening packets allowed under the new configuration, `raw`),
    keyed by the new configuration's ENIs, each with its last packet's time."""
    fresh = SessionTable(merged, timeout)
    n = len(entries)
    column = _columns(entries)
    last = column["last"]
    fresh.apply(np.argsort(last, kind="stable").astype(np.int64), last, column["fam"], column["shi"], column["slo"],
                column["dhi"], column["dlo"], column["proto"], column["sport"], column["dport"], raw.src_eni,
                raw.dst_eni, np.full(n, C.NO_RULE, np.int32), np.full(n, C.NO_RULE, np.int32), code_allows,
                np.zeros(n, np.int8), column["mode"])
    return fresh


def _columns(entries: np.ndarray) -> dict[str, np.ndarray]:
    """Session entries' fields as contiguous arrays of the types the kernels take (`mode` as replay's directions)."""
    column = {name: np.ascontiguousarray(entries[name]) for name in entries.dtype.names}
    column["mode"] = column["mode"].astype(np.int8)
    return column


class _RuleNames:
    """Deciding rules of several engines in one numbering by name (0: no rule), so that they compare."""

    def __init__(self) -> None:
        self.names: list[str] = [""]
        self._index = {"": 0}
        self._by_engine: dict[int, tuple[Engine, np.ndarray]] = {}
        self._dictionary: pa.Array | None = None

    def codes(self, engine: Engine, code: np.ndarray) -> np.ndarray:
        """The numbers of an engine's rule codes (-1: no rule)."""
        known = self._by_engine.get(id(engine))
        if known is None:
            lookup = [0] + [self._index.setdefault(name, len(self._index)) for name in engine.tables.rule_names]
            self.names = list(self._index)
            self._dictionary = None
            known = self._by_engine[id(engine)] = (engine, np.array(lookup, np.int32))
        return known[1][code + 1]

    def column(self, numbers: np.ndarray, evaluated: np.ndarray) -> pa.DictionaryArray:
        """Rule names by number; null where the record could not be evaluated."""
        if self._dictionary is None:
            self._dictionary = pa.array(self.names, type=pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(numbers, type=pa.int32(), mask=~evaluated), self._dictionary)


_VERDICTS = pa.array(list(VERDICT_NAMES), type=pa.string())


def _verdict_column(verdict: np.ndarray) -> pa.DictionaryArray:
    """Verdict names; null where the record could not be evaluated under that configuration."""
    valid = verdict < C.AMBIGUOUS
    return pa.DictionaryArray.from_arrays(pa.array(np.where(valid, verdict, 0).astype(np.int32), mask=~valid), _VERDICTS)


@dataclass
class TraceDiff:
    """What changes over a trace: the records whose verdict changes, by transition, and the flows changed most."""

    trace: str
    format: str
    old_config: str
    new_config: str
    at: float | None = None
    records: int = 0
    compared: int = 0  # records evaluated under both configurations
    changed: int = 0  # ... whose verdict differs
    opened: int = 0  # ... denied before, allowed after
    closed: int = 0  # ... allowed before, denied after
    rule_changed: int = 0  # same verdict, decided by other rules
    one_side_invalid: int = 0  # records evaluable under one configuration only (counted as changed)
    transitions: list[dict[str, Any]] = field(default_factory=list)  # most frequent first
    top_changed: list[dict[str, Any]] = field(default_factory=list)
    top_changed_exact: bool = True
    old: ReplaySummary | None = None  # the replay under OLD
    new: ReplaySummary | None = None  # the replay under NEW (or OLD, then NEW from `at`)
    table: pa.Table | None = None  # the per-record table, when asked for
    over_time: TimeHistogram | None = None  # changed records per time bucket: opened, closed, other
    seconds: float = 0.0

    def transitions_table(self) -> pa.Table:
        """The transitions as a table: old_verdict, old_egress_rule, old_ingress_rule, new_verdict, ..., count."""
        names = ("old_verdict", "old_egress_rule", "old_ingress_rule", "new_verdict", "new_egress_rule",
                 "new_ingress_rule", "count")
        return pa.table({n: pa.array([t[n] for t in self.transitions],
                                     type=pa.int64() if n == "count" else pa.string()) for n in names})

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k not in ("old", "new", "table", "over_time")}
        out["old_replay"] = self.old.to_dict() if self.old else None
        out["new_replay"] = self.new.to_dict() if self.new else None
        out["records_per_s"] = self.records / self.seconds if self.seconds else None
        return out

    def __str__(self) -> str:
        lines = [f"diff of {self.old_config} -> {self.new_config} over {self.trace} ({self.format}): "
                 f"{counted(self.records, 'record')} in {self.seconds:.2f}s"]
        if self.at is not None:
            lines.append(f"  {self.new_config} deployed at {self.at} (before it both sides are {self.old_config})")
            for c in self.new.changes if self.new else []:
                lines.append(f"    live sessions re-evaluated then {c['live']:,}, closed by the change {c['closed']:,}")
        lines.append(f"  compared {self.compared:,}: {self.changed:,} {'changes' if self.changed == 1 else 'change'} "
                     f"verdict ({self.opened:,} deny -> allow, {self.closed:,} allow -> deny); {self.rule_changed:,} "
                     + ("keeps its verdict" if self.rule_changed == 1 else "keep their verdict") + " by other rules")
        if self.one_side_invalid:
            lines.append(f"  {counted(self.one_side_invalid, 'record')} could be evaluated under one configuration only")
        if not self.changed:
            lines.append("  no record changes verdict")
            return "\n".join(lines)
        lines.append("  changes (old verdict: egress rule / ingress rule -> new):")
        for t in self.transitions[:20]:
            lines.append(f"    {t['count']:>10,}  {t['old_verdict'] or 'invalid'}: {t['old_egress_rule'] or '-'} / "
                         f"{t['old_ingress_rule'] or '-'} -> {t['new_verdict'] or 'invalid'}: "
                         f"{t['new_egress_rule'] or '-'} / {t['new_ingress_rule'] or '-'}")
        if len(self.transitions) > 20:
            lines.append(f"    ... and {len(self.transitions) - 20:,} more")
        lines.append("  most frequent changed flows" + ("" if self.top_changed_exact else
                                                        " (approximate: too many distinct flows to count them all)") + ":")
        for f in self.top_changed[:10]:
            lines.append(f"    {f['count']:>10,}  {f['flow']}")
        return "\n".join(lines)


class _Comparison:
    """Accumulates what changes, chunk by chunk."""

    def __init__(self, result: TraceDiff):
        self.result = result
        self.rules = _RuleNames()
        self.transitions: Counter = Counter()
        self.flows = FlowCounter()
        result.over_time = TimeHistogram(3)

    def add(self, chunk, flows: FlowArrays, old: tuple, new: tuple, collect: bool) -> pa.Table | None:
        """Compare one chunk's (verdict, egress, ingress, evaluated) arrays, rules numbered by name;
        returns its per-record table when `collect`."""
        r = self.result
        ov, oe, oi, o_valid = old
        nv, ne, ni, n_valid = new
        keep = o_valid | n_valid
        both = o_valid & n_valid
        changed = keep & (ov != nv)
        r.compared += int(both.sum())
        r.changed += int(changed.sum())
        r.one_side_invalid += int((keep & ~both).sum())
        r.opened += int((changed & (ov == C.DENY) & (nv == C.ALLOW)).sum())
        r.closed += int((changed & (ov == C.ALLOW) & (nv == C.DENY)).sum())
        r.rule_changed += int((both & (ov == nv) & ((oe != ne) | (oi != ni))).sum())
        rows = np.flatnonzero(changed)
        if len(rows):
            key = np.empty(len(rows), [("ov", np.int8), ("oe", np.int32), ("oi", np.int32), ("nv", np.int8),
                                       ("ne", np.int32), ("ni", np.int32)])
            for name, column in zip(key.dtype.names, (ov, oe, oi, nv, ne, ni)):
                key[name] = column[rows]
            distinct, counts = np.unique(key, return_counts=True)
            self.transitions.update(dict(zip(distinct.tolist(), counts.tolist())))
            self.flows.add(rows, flows)
            kind = np.where((ov[rows] == C.DENY) & (nv[rows] == C.ALLOW), 0,
                            np.where((ov[rows] == C.ALLOW) & (nv[rows] == C.DENY), 1, 2))
            r.over_time.add(chunk.time[rows], kind)
        if not collect:
            return None
        table = record_table(chunk, keep)
        o_valid, n_valid = o_valid[keep], n_valid[keep]
        for name, column in zip(_CHANGED_COLUMNS, (_verdict_column(ov[keep]), _verdict_column(nv[keep]),
                                                   self.rules.column(oe[keep], o_valid),
                                                   self.rules.column(oi[keep], o_valid),
                                                   self.rules.column(ne[keep], n_valid),
                                                   self.rules.column(ni[keep], n_valid), pa.array(changed[keep]))):
            table = table.drop_columns([name]) if name in table.column_names else table
            table = table.append_column(name, column)
        return table

    def finish(self) -> None:
        r, names = self.result, self.rules.names

        def verdict(code: int) -> str:
            return VERDICT_NAMES[code] if code < C.AMBIGUOUS else ""

        r.transitions = [{"old_verdict": verdict(ov), "old_egress_rule": names[oe], "old_ingress_rule": names[oi],
                          "new_verdict": verdict(nv), "new_egress_rule": names[ne], "new_ingress_rule": names[ni],
                          "count": count}
                         for (ov, oe, oi, nv, ne, ni), count in sorted(self.transitions.items(), key=lambda kv: (-kv[1], kv[0]))]
        r.top_changed = self.flows.top(_TOP_FLOWS)
        r.top_changed_exact = self.flows.exact


def diff_trace(old: Engine, new: Engine, trace: str, output: str | Output | None = None, fmt: str | None = None,
               threads: int | None = None, progress: bool = False, chunk_rows: int = 1 << 18,
               timeout: float = SESSION_TIMEOUT, at: float | None = None, names: tuple[str, str] = ("OLD", "NEW"),
               collect: bool = False) -> TraceDiff:
    """Replay a trace under OLD and under NEW (or OLD then NEW from `at`) in one pass; count the records whose
    verdict changes. `output`: per-record CSV/Parquet with the old and new verdict columns, in place once the
    whole run succeeded; `collect`: keep that table in memory as `.table` instead (for the API, on traces that fit)."""
    if output is None:
        return _diff_trace(old, new, trace, None, fmt, threads, progress, chunk_rows, timeout, at, names, collect)
    with writing(output, inputs=[("trace", trace)]) as target:
        return _diff_trace(old, new, trace, target, fmt, threads, progress, chunk_rows, timeout, at, names, collect)


def _diff_trace(old: Engine, new: Engine, trace: str, output: Output | None, fmt: str | None, threads: int | None,
                progress: bool, chunk_rows: int, timeout: float, at: float | None, names: tuple[str, str],
                collect: bool) -> TraceDiff:
    from ..io.progress import Progress
    from ..io.traces import open_trace
    from ..io.writer import TableWriter
    from .query import arrow_settings

    reader = open_trace(trace, fmt, chunk_rows=chunk_rows)
    result = TraceDiff(trace=reader.source.name, format=reader.format, old_config=names[0], new_config=names[1], at=at,
                       old=ReplaySummary(trace=reader.source.name, format=reader.format),
                       new=ReplaySummary(trace=reader.source.name, format=reader.format))
    before = Replayer(old, result.old, threads, timeout)
    after = (Replayer(new, result.new, threads, timeout) if at is None else
             ChangingReplayer(old, [(at, new, names[1])], result.new, threads, timeout))
    comparison = _Comparison(result)
    writer = TableWriter(output) if output is not None else None
    tables: list[pa.Table] = []
    meter = Progress(progress, None)
    invalid = (Counter(), Counter())
    started, done = clock.perf_counter(), False
    try:
        with arrow_settings(threads):
            for chunk in in_time_order(reader, chunk_rows):
                flows = flow_arrays(chunk)
                sides = []
                for replayer, skipped in ((before, invalid[0]), (after, invalid[1])):
                    sides.append(_decide(replayer, chunk, flows, comparison.rules))
                    if not sides[-1][3].all():
                        skipped["invalid record (address, direction or VPC)"] += int((~sides[-1][3]).sum())
                table = comparison.add(chunk, flows, *sides, collect=writer is not None or collect)
                if writer is not None:
                    writer.write(table)
                if collect:
                    tables.append(table)
                meter.update(result.old.evaluated)
        done = True
    finally:
        meter.close()
        if writer is not None:
            writer.close(keep=done)
    finish_summary(before, reader, invalid[0])
    finish_summary(after, reader, invalid[1])
    comparison.finish()
    result.records = max(result.old.records, result.new.records)
    if collect:
        result.table = pa.concat_tables(tables) if tables else None
    result.seconds = clock.perf_counter() - started
    return result


def _decide(replayer: Replayer, chunk, flows: FlowArrays, rules: _RuleNames) -> tuple[np.ndarray, ...]:
    """One side's (verdict, egress rule, ingress rule, evaluated) for every record of a chunk, rules numbered by name."""
    n = len(chunk)
    verdict, egress, ingress, valid = np.empty(n, np.int8), np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.bool_)
    for keep in replayer.cuts(chunk):
        if keep is None:
            raw, _, ok = replayer.process(chunk, flows)
            keep = slice(None)
        else:
            raw, _, ok = replayer.process(chunk.take(keep))
        verdict[keep], valid[keep] = raw.verdict, ok
        egress[keep] = rules.codes(replayer.engine, raw.egress_code)
        ingress[keep] = rules.codes(replayer.engine, raw.ingress_code)
    return verdict, egress, ingress, valid


__all__ = ["ChangingReplayer", "TraceDiff", "diff_trace"]
