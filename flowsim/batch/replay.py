"""`flowsim replay`: stateful replay of a timestamped trace against a configuration (docs/semantics.md §5).

Each chunk of the trace is evaluated statelessly by the compiled kernel (in
parallel), then a serial pass in time order applies the connection table:
a reply on a live session passes its ENI without rules. Flow-log records are
replayed in endpoint mode (their ENI and direction), captures and flow tables
in path mode. Memory stays bounded: chunks are streamed and the connection
table holds live sessions only.
"""
from __future__ import annotations

import bisect
import mmap
import time as clock
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa

from ..engine.engine import Engine, RawVerdicts
from ..io.datasets import is_dataset
from ..io.flows import FlowArrays, Names
from ..io.outputs import Output, writing
from ..io.traces.tables import protocol_names
from ..kernels import codes as C
from ..kernels import evaluate as K
from ..kernels.codes import ACTION_ACCEPT, ACTION_NAMES, VERDICT_NAMES
from ..kernels.counting import FLOW_COUNT, TALLIES, add_flows, keep_most_counted, tally
from ..kernels.sessions import SESSION, Decisions, Records, apply_sessions, keep_live
from ..model.addresses import parts_address
from ..model.network import protocol_name
from ..model.words import counted

SESSION_TIMEOUT = 910.0
MIN_SESSION_SLOTS = 1 << 16
DISAGREEMENTS_KEPT = 20
_DISTINCT_COUNTED = 1 << 17  # denied flows counted at once; past them only the _TOP_KEPT most frequent go on
_TOP_KEPT = 10_000
_ONCE = np.zeros(0, np.int64)  # add_flows' weights: each row counts once


@dataclass
class ReplaySummary:
    """What a replay saw: counts, skipped records, rule hits, top denied flows, agreement with the log."""

    trace: str
    format: str
    records: int = 0
    evaluated: int = 0
    allowed: int = 0
    denied: int = 0
    unmanaged: int = 0
    stateful: int = 0
    sessions: int = 0  # sessions opened (an ENI and a 5-tuple, per side)
    stateless: int = 0  # records without a timestamp, evaluated as new sessions
    out_of_order: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    rule_hits: dict[str, int] = field(default_factory=dict)
    top_denied: list[dict[str, Any]] = field(default_factory=list)
    top_denied_exact: bool = True  # False when too many distinct denied flows forced counting only the frequent ones
    compared: int = 0
    agree: int = 0
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)  # configuration changes applied (replay --change)
    seconds: float = 0.0

    @property
    def never_hit(self) -> list[str]:
        return [name for name, hits in self.rule_hits.items() if hits == 0 and not name.startswith("default:")]

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items()}
        out["never_hit"] = self.never_hit
        out["records_per_s"] = self.records / self.seconds if self.seconds else None
        return out

    def __str__(self) -> str:
        lines = [f"replay of {self.trace} ({self.format}): {counted(self.records, 'record')} in {self.seconds:.2f}s",
                 f"  evaluated {self.evaluated:,}: {self.allowed:,} allowed ({self.stateful:,} by a live session), "
                 f"{self.denied:,} denied, {self.unmanaged:,} unmanaged; {counted(self.sessions, 'session')} opened"]
        if self.stateless:
            lines.append(f"  {counted(self.stateless, 'record')} had no timestamp and "
                         + ("was evaluated as a new session" if self.stateless == 1 else "were evaluated as new sessions"))
        if self.out_of_order:
            lines.append(f"  {counted(self.out_of_order, 'record')} arrived after later ones of an earlier chunk (replayed as they came)")
        skipped = sum(self.skipped.values())
        lines.append(f"  skipped {skipped:,}" + (":" if skipped else ""))
        for reason, count in sorted(self.skipped.items(), key=lambda kv: -kv[1]):
            where = ", ".join(self.skipped_examples.get(reason, []))
            lines.append(f"    {count:>10,}  {reason}" + (f" ({where})" if where else ""))
        if self.compared:
            lines.append(f"  agreement with the recorded action: {self.agree:,} of {self.compared:,} "
                         f"({self.agree / self.compared:.1%}); {self.compared - self.agree:,} "
                         + ("disagrees" if self.compared - self.agree == 1 else "disagree"))
            for d in self.disagreements[:10]:
                where = f"{d['file']} record {d['record']}" if d.get("file") else f"record {d['record']}"
                lines.append(f"    {where}: {d['flow']} recorded {d['recorded']}, flowsim says {d['verdict']}"
                             f" ({d['egress_rule'] or '-'} / {d['ingress_rule'] or '-'})")
        if self.top_denied:
            lines.append("  top denied flows" + ("" if self.top_denied_exact else
                                                 " (approximate: too many distinct flows to count them all)") + ":")
            for d in self.top_denied[:10]:
                lines.append(f"    {d['count']:>10,}  {d['flow']}")
        lines.append("  rule hits:")
        for name, hits in sorted(self.rule_hits.items(), key=lambda kv: -kv[1]):
            if hits:
                lines.append(f"    {hits:>10,}  {name}")
        never = self.never_hit
        lines.append(f"  rules never hit ({len(never)}): " + (", ".join(never) if never else "none"))
        for c in self.changes:
            lines.append(f"  change at {c['time']} to {c['config']}: live sessions re-evaluated {c['live']:,}, "
                         f"closed {c['closed']:,}, live on {c['live'] - c['closed']:,}")
        return "\n".join(lines)


def _fresh(dtype: np.dtype | type, n: int) -> np.ndarray:
    """A zero-filled array in memory of its own, page-aligned so that no 64-byte session entry
    straddles two cache lines (two memory misses per read instead of one)."""
    memory = mmap.mmap(-1, max(1, n) * np.dtype(dtype).itemsize)
    return np.frombuffer(memory, dtype, n)


def _flow_text(fam, shi, slo, dhi, dlo, proto, sport, dport) -> str:
    src, dst = parts_address(int(fam), int(shi), int(slo)), parts_address(int(fam), int(dhi), int(dlo))
    if proto in (6, 17):
        return f"{src}:{sport} -> {dst}:{dport} {protocol_name(int(proto))}"
    return f"{src} -> {dst} {protocol_name(int(proto))}"


def flow_arrays(chunk) -> FlowArrays:
    """A trace chunk as the engine's flow arrays (endpoint mode where the record names an ENI)."""
    n = len(chunk)
    eni = Names.of(pa.array(chunk.eni, type=pa.string())) if chunk.eni is not None else None
    vpc = Names.of(pa.array(chunk.vpc, type=pa.string())) if chunk.vpc is not None else None
    direction = chunk.direction.astype(np.int8) if chunk.direction is not None else np.zeros(n, np.int8)
    if eni is not None:
        direction = np.where(eni.present(), direction, 0).astype(np.int8)
    return FlowArrays(chunk.src_fam, chunk.src_hi, chunk.src_lo, chunk.dst_fam, chunk.dst_hi, chunk.dst_lo,
                      chunk.protocol.astype(np.int16, copy=False), chunk.src_port.astype(np.int32, copy=False),
                      chunk.dst_port.astype(np.int32, copy=False),
                      direction, vpc, eni, np.zeros(n, np.bool_))


class SessionTable:
    """The connection table of a replay, carried across chunks (kernels.sessions holds its layout)."""

    def __init__(self, merged: bool, timeout: float = SESSION_TIMEOUT, min_slots: int = MIN_SESSION_SLOTS):
        """`merged`: one entry holds the sessions of a record's two ENIs, which is exact only where those
        ENIs are a function of the flow (see kernels.sessions). `min_slots`: the directory's least size."""
        self.merged, self.timeout, self.min_slots = merged, timeout, max(2, min_slots)
        self.directory = _fresh(np.uint64, self.min_slots)
        self.arena = _fresh(SESSION, self.min_slots // 2)
        self.used = 0

    def apply(self, order: np.ndarray, time: np.ndarray, fam: np.ndarray, shi: np.ndarray, slo: np.ndarray,
              dhi: np.ndarray, dlo: np.ndarray, proto: np.ndarray, sport: np.ndarray, dport: np.ndarray,
              src_eni: np.ndarray, dst_eni: np.ndarray, egress_code: np.ndarray, ingress_code: np.ndarray,
              code_allows: np.ndarray, verdict: np.ndarray,
              mode: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """Replay a chunk's records in `order` (time order) over the sessions so far; rewrites `verdict`
        where sessions decide, and the code of a side a session let through to NO_RULE; returns (egress
        side passed by state, ingress side passed by state, sessions opened). `mode`: how each record
        was evaluated (0 path mode, else its endpoint-mode direction; None: all path mode)."""
        timed = time[~np.isnan(time)]
        if len(timed):
            # what the chunk may add: an entry per record, two where its ENIs are kept apart; the chunk's
            # earliest record must still find every session live for it
            incoming = np.count_nonzero((src_eni >= 0) | (dst_eni >= 0))
            if not self.merged:
                incoming += np.count_nonzero((src_eni >= 0) & (dst_eni >= 0) & (src_eni != dst_eni))
            self._make_room(int(incoming), float(timed.min()))
        egress, ingress = np.zeros(len(order), np.bool_), np.zeros(len(order), np.bool_)
        mode = np.zeros(len(order), np.int8) if mode is None else mode
        self.used, opened = apply_sessions(
            order, Records(time, fam, shi, slo, dhi, dlo, proto, sport, dport, src_eni, dst_eni, mode),
            Decisions(egress_code, ingress_code, verdict, egress, ingress), code_allows, self.directory, self.arena,
            self.used, self.timeout, self.merged)
        return egress, ingress, opened

    def _make_room(self, incoming: int, now: float) -> None:
        """Keep room for `incoming` more entries, the directory at most half full. When the arena would
        overflow, keep only the sessions live at `now`, in place; if they and the incoming still fill a
        third of the directory, move them to tables four times their number and the incoming's. Memory
        follows the live sessions, not the trace; clearing in place touches no new memory."""
        if self.used + incoming <= len(self.arena):
            return
        self.directory.fill(0)
        self.used = keep_live(self.arena, self.used, now, self.timeout, self.arena, self.directory)
        need = self.used + incoming
        if 3 * need <= len(self.directory):
            return
        slots = max(self.min_slots, 4 * need)
        directory, arena = _fresh(np.uint64, slots), _fresh(SESSION, slots // 2)
        self.used = keep_live(self.arena, self.used, now, self.timeout, arena, directory)
        self.directory, self.arena = directory, arena


class FlowCounter:
    """The most frequent flows (address family, source, destination, protocol, destination port) of many
    rows: exact up to _DISTINCT_COUNTED distinct flows; past them only the _TOP_KEPT most frequent go on
    being counted (`exact` turns False), so the table stays the same size however many flows come."""

    def __init__(self) -> None:
        self.directory = np.zeros(2 * _DISTINCT_COUNTED, np.uint64)
        self.flows = np.zeros(_DISTINCT_COUNTED, FLOW_COUNT)
        self.used = 0
        self.exact = True

    def add(self, rows: np.ndarray, flows: FlowArrays) -> None:
        """Count the flows of `rows` (indices into `flows`) once each."""
        while len(rows):
            if self.used == _DISTINCT_COUNTED:
                self.exact = False
                self.used = keep_most_counted(self.directory, self.flows, self.used, _TOP_KEPT)
            # a piece of rows that cannot add more flows than there is room for
            piece, rows = rows[: _DISTINCT_COUNTED - self.used], rows[_DISTINCT_COUNTED - self.used:]
            self.used = add_flows(piece, _ONCE, flows.sfam, flows.shi, flows.slo, flows.dhi, flows.dlo, flows.proto,
                                  flows.dport, self.directory, self.flows, self.used)

    def counted(self) -> np.ndarray:
        """The flows counted so far, with their counts (FLOW_COUNT records)."""
        return self.flows[:self.used].copy()

    @classmethod
    def merged(cls, parts: Sequence[tuple[np.ndarray, bool]]) -> FlowCounter:
        """One counter from the `counted()` flows and `exact` flags of counters over disjoint rows (shards of
        a replay): counts of a flow add. Exact, as one counter over all the rows, while every part is and
        the flows together are at most _DISTINCT_COUNTED."""
        counter = cls.__new__(cls)
        flows = np.concatenate([f for f, _ in parts]) if parts else np.zeros(0, FLOW_COUNT)
        keys = ("fam", "shi", "slo", "dhi", "dlo", "proto", "dport")
        if len(flows):
            order = np.lexsort([flows[k] for k in reversed(keys)])
            flows = flows[order]
            start = np.zeros(len(flows), bool)
            start[0] = True
            for k in keys:
                start[1:] |= flows[k][1:] != flows[k][:-1]
            firsts = np.flatnonzero(start)
            counts = np.add.reduceat(flows["count"], firsts)
            flows = flows[firsts]
            flows["count"] = counts
        counter.flows, counter.used = flows, len(flows)
        counter.directory = np.zeros(0, np.uint64)
        counter.exact = all(exact for _, exact in parts) and len(flows) <= _DISTINCT_COUNTED
        return counter

    def top(self, n: int) -> list[dict[str, Any]]:
        """The n most counted flows, as text with their counts (ties in a fixed order)."""
        flows = self.flows[:self.used]
        top = np.lexsort([flows[name] for name in ("dport", "proto", "dlo", "dhi", "slo", "shi", "fam")] + [-flows["count"]])
        return [{"flow": _flow_text(f["fam"], f["shi"], f["slo"], f["dhi"], f["dlo"], f["proto"], 0,
                                    f["dport"]).replace(":0 ->", " ->"), "count": int(f["count"])} for f in flows[top[:n]]]


class TimeHistogram:
    """Counts of several kinds of record per time bucket, for figures over a trace's span: buckets start at
    one second and double in width (merging pairs) whenever the span would need more than `max_buckets`."""

    def __init__(self, kinds: int, max_buckets: int = 4096) -> None:
        self.kinds, self.max_buckets = kinds, max_buckets
        self.width = 1.0
        self.buckets: dict[int, np.ndarray] = {}

    def add(self, times: np.ndarray, kind: np.ndarray) -> None:
        """Count records at `times` (unix seconds; NaN ones are left out) of `kind` (0..kinds-1)."""
        timed = ~np.isnan(times)
        if not timed.any():
            return
        keys = np.floor(times[timed] / self.width).astype(np.int64)
        uniq, inverse = np.unique(keys, return_inverse=True)
        counts = np.zeros((len(uniq), self.kinds), np.int64)
        np.add.at(counts, (inverse, kind[timed]), 1)
        for key, row in zip(uniq.tolist(), counts):
            have = self.buckets.get(key)
            self.buckets[key] = row if have is None else have + row
        while max(self.buckets) - min(self.buckets) >= self.max_buckets:
            merged: dict[int, np.ndarray] = {}
            for key, row in self.buckets.items():
                merged[key // 2] = merged[key // 2] + row if key // 2 in merged else row.copy()
            self.buckets, self.width = merged, self.width * 2

    def series(self, at_most: int) -> tuple[float, float, np.ndarray]:
        """(first bucket's start, bucket width, counts per bucket and kind) in at most `at_most` buckets."""
        if not self.buckets:
            return 0.0, self.width, np.zeros((0, self.kinds), np.int64)
        lo, hi = min(self.buckets), max(self.buckets)
        factor = max(1, -(-(hi - lo + 1) // at_most))
        grid = np.zeros(((hi - lo) // factor + 1, self.kinds), np.int64)
        for key, row in self.buckets.items():
            grid[(key - lo) // factor] += row
        return lo * self.width, self.width * factor, grid


class Replayer:
    """Holds the connection table across chunks and accumulates the summary."""

    def __init__(self, engine: Engine, summary: ReplaySummary, threads: int | None = None,
                 timeout: float = SESSION_TIMEOUT):
        self.engine, self.summary, self.threads = engine, summary, threads
        self.timeout = timeout
        self.sessions: SessionTable | None = None
        self.latest = -np.inf
        self.code_allows = engine.tables.code_allows
        self.hits = np.zeros(len(engine.tables.rule_names) + 1, dtype=np.int64)
        self.earlier_hits: dict[str, int] = {}  # rule hits under configurations replaced by a change, by name
        self.denied = FlowCounter()
        self.disagreement_keys: list[tuple[int, int]] = []  # (file, record) of each disagreement kept, in order
        self.file_names: Sequence[str] | None = None  # a dataset's files, which chunk.file indexes

    def __getstate__(self) -> dict:
        """Pickled without its engine: a distributed replay carries a shard's state from one task to the next,
        and each task has the engine already (`attach`)."""
        return {**self.__dict__, "engine": None, "code_allows": None}

    def attach(self, engine: Engine) -> None:
        """Evaluate with `engine`, the same configuration's, after unpickling."""
        self.engine, self.code_allows = engine, engine.tables.code_allows

    def use(self, engine: Engine) -> None:
        """Evaluate with `engine` from now on (a configuration change); rule hits so far are kept by name.
        The caller carries the sessions over (their ENIs are numbered by the engine)."""
        self.earlier_hits = self._hits_by_name()
        self.engine, self.code_allows = engine, engine.tables.code_allows
        self.hits = np.zeros(len(engine.tables.rule_names) + 1, dtype=np.int64)

    def _hits_by_name(self) -> dict[str, int]:
        hits = dict(self.earlier_hits)
        for code, name in enumerate(self.engine.tables.rule_names):
            hits[name] = hits.get(name, 0) + int(self.hits[code + 1])
        return hits

    def cuts(self, chunk) -> Iterator[np.ndarray | None]:
        """Masks of the pieces of a chunk that one configuration decides, in order; None: the whole chunk,
        as here (configuration changes cut chunks: flowsim.batch.tracediff)."""
        yield None

    def steps(self, chunk) -> Iterator[tuple[Any, RawVerdicts, np.ndarray, np.ndarray]]:
        """(records, raw verdicts, stateful flags, evaluated mask) of each piece of a chunk (`cuts`), its
        rule codes those of `self.engine` while it is handed out."""
        for keep in self.cuts(chunk):
            piece = chunk if keep is None else chunk.take(keep)
            yield (piece, *self.process(piece))

    def _infer_directions(self, flows: FlowArrays) -> None:
        """Records of an ENI without a direction: out if the ENI owns the source, in if it owns the destination."""
        unknown = (flows.direction == 0) & flows.eni.present() if flows.eni is not None else np.zeros(len(flows), bool)
        if not unknown.any():
            return
        eni = flows.eni.lookup(self.engine._eni_index, K.ENI_NONE, K.ENI_UNKNOWN)
        path = FlowArrays(*(getattr(flows, f) for f in ("sfam", "shi", "slo", "dfam", "dhi", "dlo", "proto", "sport", "dport")),
                          np.zeros(len(flows), np.int8), flows.vpc, None, flows.invalid.copy())
        raw = self.engine.evaluate_arrays(path, self.threads)
        flows.direction = np.where(unknown & (raw.src_eni == eni), C.DIR_EGRESS,
                                   np.where(unknown & (raw.dst_eni == eni), C.DIR_INGRESS, flows.direction)).astype(np.int8)
        flows.mark(unknown & (flows.direction == 0) & (eni >= 0),
                   "no direction, and the ENI owns neither address")

    def process(self, chunk, flows: FlowArrays | None = None) -> tuple[RawVerdicts, np.ndarray, np.ndarray]:
        """Verdicts of one chunk; returns (raw verdicts, stateful flags, evaluated mask). `flows`: the
        chunk's flow arrays (`flow_arrays(chunk)`) if the caller has them; they are not changed."""
        flows = flow_arrays(chunk) if flows is None else replace(flows, direction=flows.direction.copy(),
                                                                 invalid=flows.invalid.copy(), reasons=list(flows.reasons))
        self._infer_directions(flows)
        raw = self.engine.evaluate_arrays(flows, self.threads)
        stateful, timed = self.apply_state(chunk, flows, raw)
        valid = ~flows.invalid
        self.account(chunk, flows, raw, stateful, valid, timed)
        return raw, stateful, valid

    def apply_state(self, chunk, flows: FlowArrays, raw: RawVerdicts) -> tuple[np.ndarray, np.ndarray]:
        """Replay a chunk, whose flows have their stateless verdicts `raw`, over the sessions so far: they
        decide what they let through (rewriting `raw`). Returns (decided by a session, has a time)."""
        n = len(flows)
        times = chunk.time.astype(np.float64, copy=False)
        if n and bool(np.all(times[1:] >= times[:-1])):  # already in time order (NaN compares false: sorted below)
            order = np.arange(n, dtype=np.int64)
        else:
            order = np.argsort(times, kind="stable").astype(np.int64)
        timed = ~np.isnan(times)
        if timed.any():
            first = np.nanmin(times)
            self.summary.out_of_order += int((times[timed] < self.latest).sum()) if first < self.latest else 0
        if self.sessions is None:
            # records that name no ENI or VPC have ENIs that are a function of their addresses
            self.sessions = SessionTable(chunk.eni is None and chunk.vpc is None, self.timeout)
        by_state_e, by_state_i, opened = self.sessions.apply(
            order, times, flows.sfam, flows.shi, flows.slo, flows.dhi, flows.dlo, flows.proto, flows.sport, flows.dport,
            raw.src_eni, raw.dst_eni, raw.egress_code, raw.ingress_code, self.code_allows, raw.verdict, flows.direction)
        self.summary.sessions += opened
        if timed.any():
            self.latest = max(self.latest, float(np.nanmax(times)))
        return by_state_e | by_state_i, timed

    def account(self, chunk, flows: FlowArrays, raw: RawVerdicts, stateful: np.ndarray, valid: np.ndarray,
                timed: np.ndarray) -> None:
        """Count a chunk's final verdicts in the summary: tallies, rule hits, denied flows, disagreements."""
        s = self.summary
        counts = np.zeros(len(TALLIES), np.int64)
        denied = np.empty(len(valid), np.int64)
        denied = denied[:tally(valid, timed, raw.verdict, stateful, raw.egress_code, raw.ingress_code, counts,
                               self.hits, denied)]
        for name, count in zip(TALLIES, counts.tolist()):
            setattr(s, name, getattr(s, name) + count)
        self.denied.add(denied, flows)
        if chunk.action is not None:
            recorded = chunk.action
            comparable = valid & (recorded > 0) & (raw.verdict <= C.DENY)
            agree = comparable & ((recorded == ACTION_ACCEPT) == (raw.verdict == C.ALLOW))
            s.compared += int(comparable.sum())
            s.agree += int(agree.sum())
            names = self.engine.tables.rule_names
            rows = np.flatnonzero(comparable & ~agree)
            if not len(rows):
                return
            # the first ones in record order (a dataset's files in replay order), whatever order they are replayed in
            files = chunk.file[rows] if chunk.file is not None else np.zeros(len(rows), np.int32)
            rows = rows[np.lexsort((chunk.record[rows], files))[:DISAGREEMENTS_KEPT]]
            for i in rows:
                key = (int(chunk.file[i]) if chunk.file is not None else 0, int(chunk.record[i]))
                if len(s.disagreements) >= DISAGREEMENTS_KEPT and key >= self.disagreement_keys[-1]:
                    break
                at = bisect.bisect(self.disagreement_keys, key)
                self.disagreement_keys.insert(at, key)
                s.disagreements.insert(at, {
                    "record": int(chunk.record[i]) + 1, "eni": None if chunk.eni is None else str(chunk.eni[i]),
                    "flow": _flow_text(flows.sfam[i], flows.shi[i], flows.slo[i], flows.dhi[i], flows.dlo[i],
                                       flows.proto[i], flows.sport[i], flows.dport[i]),
                    "recorded": ACTION_NAMES[recorded[i]], "verdict": VERDICT_NAMES[raw.verdict[i]],
                    "egress_rule": names[raw.egress_code[i]] if raw.egress_code[i] >= 0 else "",
                    "ingress_rule": names[raw.ingress_code[i]] if raw.ingress_code[i] >= 0 else ""})
                if self.file_names is not None and chunk.file is not None:
                    s.disagreements[at]["file"] = self.file_names[int(chunk.file[i])]
                del s.disagreements[DISAGREEMENTS_KEPT:], self.disagreement_keys[DISAGREEMENTS_KEPT:]

    def finish(self, invalid_reasons: Counter) -> None:
        s = self.summary
        s.rule_hits = self._hits_by_name()
        for reason, count in invalid_reasons.items():
            s.skipped[reason] = s.skipped.get(reason, 0) + count
        s.top_denied = self.denied.top(20)
        s.top_denied_exact = self.denied.exact


def _address_column(fam: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    """Address text, formatted once per distinct address."""
    key = np.rec.fromarrays([fam, hi, lo])
    uniq, inverse = np.unique(key, return_inverse=True)
    texts = [str(parts_address(int(f), int(h), int(l))) if f else "" for f, h, l in uniq.tolist()]
    return pa.DictionaryArray.from_arrays(pa.array(inverse.astype(np.int32)), pa.array(texts, type=pa.string()))


def _text_column(values: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.string()).dictionary_encode()


def record_table(chunk, keep: np.ndarray, files: Sequence[str] | None = None) -> pa.Table:
    """The input columns (or decoded fields for captures and datasets) of the records where `keep` is true;
    a dataset's records (`files`: its file names, which chunk.file indexes) start with their file's name.
    `record` is each one's place in its trace, 1-based like the lines, rows and packets of skip messages."""
    record = chunk.record[keep] + 1
    if chunk.columns is not None:
        table = chunk.columns.filter(pa.array(keep))
        if "record" not in table.column_names:  # rows come out in time order: say where each was
            table = table.add_column(0, "record", pa.array(record))
        return table
    columns = {"record": record, "time": chunk.time[keep],
               "src_ip": _address_column(chunk.src_fam[keep], chunk.src_hi[keep], chunk.src_lo[keep]),
               "dst_ip": _address_column(chunk.dst_fam[keep], chunk.dst_hi[keep], chunk.dst_lo[keep]),
               "protocol": protocol_names(chunk.protocol[keep]), "src_port": chunk.src_port[keep], "dst_port": chunk.dst_port[keep]}
    if files is not None and chunk.file is not None:
        columns = {"file": pa.DictionaryArray.from_arrays(pa.array(chunk.file[keep], pa.int32()),
                                                          pa.array(list(files), pa.string())), **columns}
    if chunk.vpc is not None:
        columns["vpc"] = _text_column(chunk.vpc[keep])
    if chunk.eni is not None:
        columns["eni"] = _text_column(chunk.eni[keep])
    if chunk.direction is not None:
        columns["direction"] = pa.DictionaryArray.from_arrays(pa.array(chunk.direction[keep].astype(np.int32)),
                                                              pa.array(["", "in", "out"]))
    return pa.table(columns)


def verdict_table(engine: Engine, chunk, raw: RawVerdicts, stateful: np.ndarray, valid: np.ndarray,
                  files: Sequence[str] | None = None) -> pa.Table:
    """Per-record output: the input columns (or decoded fields for captures and datasets), verdicts and
    `stateful`."""
    keep = valid
    table = engine.with_verdicts(record_table(chunk, keep, files), raw.take(keep))
    table = table.append_column("stateful", pa.array(stateful[keep]))
    if chunk.action is not None:
        recorded = chunk.action[keep]
        table = table.append_column("recorded_action", pa.DictionaryArray.from_arrays(
            pa.array(recorded.astype(np.int32)), pa.array(ACTION_NAMES)))
        v = raw.verdict[keep]
        comparable = (recorded > 0) & (v <= C.DENY)
        agrees = pa.array((recorded == ACTION_ACCEPT) == (v == C.ALLOW), mask=~comparable)
        table = table.append_column("agrees", agrees)
    return table


def in_time_order(chunks: Iterable, chunk_rows: int) -> Iterator:
    """Chunks re-cut so that records out of order by up to a chunk still reach the session pass in time order.

    Each chunk waits for the next one: its records later than the next chunk's earliest
    record move on with that chunk. Records without a time go first. A backlog larger than
    four chunks is released as it is (its late records are then counted as out of order)."""
    pending = None
    for chunk in chunks:
        if pending is None:
            pending = chunk
            continue
        times = chunk.time[~np.isnan(chunk.time)]
        horizon = times.min() if len(times) else np.inf
        late = pending.time > horizon
        if late.any() and len(pending) + len(chunk) <= 4 * chunk_rows:
            yield pending.take(~late)
            pending = type(chunk).concat([pending.take(late), chunk])
        else:
            yield pending
            pending = chunk
    if pending is not None:
        yield pending


def replay(engine: Engine, trace: str, output: str | Output | None = None, fmt: str | None = None,
           threads: int | None = None, progress: bool = False, chunk_rows: int = 1 << 18,
           timeout: float = SESSION_TIMEOUT, changes: Sequence[tuple[float, Engine, str]] = (),
           observe: Callable[[Engine, Any, RawVerdicts, np.ndarray, np.ndarray], None] | None = None) -> ReplaySummary:
    """Replay a trace statefully (a file, ``-`` for standard input, a pipe or FIFO, gzip-compressed or not);
    write per-record verdicts to `output` (CSV or Parquet) if given, once the whole replay has succeeded.

    `changes`: (time, engine, name) of configurations applied from that time on, in time order
    (docs/semantics.md §5, rule changes during a trace; see flowsim.batch.tracediff). `observe(engine, records,
    verdicts, stateful, valid)` sees every piece of the trace once it is decided (a report's recorder)."""
    if output is None:
        return _replay(engine, trace, None, fmt, threads, progress, chunk_rows, timeout, changes, observe)
    with writing(output, inputs=[("trace", trace)]) as target:
        return _replay(engine, trace, target, fmt, threads, progress, chunk_rows, timeout, changes, observe)


def _replay(engine: Engine, trace: str, output: Output | None, fmt: str | None, threads: int | None,
            progress: bool, chunk_rows: int, timeout: float, changes: Sequence[tuple[float, Engine, str]],
            observe: Callable[[Engine, Any, RawVerdicts, np.ndarray, np.ndarray], None] | None) -> ReplaySummary:
    from ..io.progress import Progress
    from ..io.traces import TraceChunk, open_trace
    from ..io.writer import TableWriter
    from .query import arrow_settings

    if is_dataset(trace):
        from ..io.traces.dataset import open_dataset

        reader = open_dataset(trace, fmt, chunk_rows=chunk_rows)
    else:
        reader = open_trace(trace, fmt, chunk_rows=chunk_rows)
    files = getattr(reader, "files", None)
    summary = ReplaySummary(trace=reader.source.name, format=reader.format)
    if changes:
        from .tracediff import ChangingReplayer

        replayer: Replayer = ChangingReplayer(engine, changes, summary, threads, timeout)
    else:
        replayer = Replayer(engine, summary, threads, timeout)
    replayer.file_names = files
    writer = TableWriter(output) if output is not None else None
    meter = Progress(progress, None)
    invalid: Counter = Counter()
    started, done = clock.perf_counter(), False
    try:
        with arrow_settings(threads):
            for chunk in in_time_order(reader, chunk_rows):
                for piece, raw, stateful, valid in replayer.steps(chunk):
                    if observe is not None:
                        observe(replayer.engine, piece, raw, stateful, valid)
                    flows_invalid = ~valid
                    if flows_invalid.any():
                        invalid["invalid record (address, direction or VPC)"] += int(flows_invalid.sum())
                    if writer is not None:
                        writer.write(verdict_table(replayer.engine, piece, raw, stateful, valid, files))
                summary.records = reader.records_read or summary.records + len(chunk)
                meter.update(summary.evaluated)
            if writer is not None and writer.empty:  # every record skipped: the file still has its columns
                none = TraceChunk.empty() if reader.layout is None else reader.layout
                raw = engine.evaluate_arrays(flow_arrays(none), threads)
                writer.write(verdict_table(engine, none, raw, np.zeros(0, bool), np.ones(0, bool), files))
        done = True
    finally:
        meter.close()
        if writer is not None:
            writer.close(keep=done)
    finish_summary(replayer, reader, invalid)
    summary.seconds = clock.perf_counter() - started
    return summary


def finish_summary(replayer: Replayer, reader, invalid: Counter) -> None:
    """Complete a replayer's summary once the whole trace has been read: counts, skipped records, rule hits."""
    summary = replayer.summary
    summary.records = max(reader.records_read, summary.evaluated + sum(reader.skipped.values()) + sum(invalid.values()))
    summary.skipped = dict(reader.skipped)
    summary.skipped_examples = {k: list(v) for k, v in reader.skipped.examples.items()}
    replayer.finish(invalid)


__all__ = ["ReplaySummary", "replay", "SESSION_TIMEOUT"]
