"""The replay report: what a replay allowed and denied, over time, per rule, per ENI and per flow."""
from __future__ import annotations

import datetime as _dt
from collections import Counter
from typing import Any

import numpy as np

from ..kernels import codes as C
from ..model.words import counted
from . import page, svg

SHOWN_BUCKETS = 96  # at most, in a figure
_EPOCH_2001 = 978_307_200  # times past this are read as unix seconds and printed as dates


class ReplayRecorder:
    """Collects, chunk by chunk, what the summary does not keep: counts per time bucket, the busiest
    allowed flows and records per ENI. Pass its `observe` to `flowsim.batch.replay.replay`."""

    def __init__(self) -> None:
        from ..batch.replay import FlowCounter, TimeHistogram

        self.times = TimeHistogram(4)  # allowed by rules, allowed by a session, denied, unmanaged
        self.allowed = FlowCounter()
        self.eni_records: Counter = Counter()  # by ENI id: a configuration change may number ENIs anew
        self.eni_denied: Counter = Counter()

    def observe(self, engine: Any, chunk: Any, raw: Any, stateful: np.ndarray, valid: np.ndarray) -> None:
        from ..io.flows import FlowArrays

        verdict = raw.verdict
        allowed = valid & (verdict == C.ALLOW)
        denied = valid & (verdict == C.DENY)
        n = len(chunk)
        flows = FlowArrays(chunk.src_fam, chunk.src_hi, chunk.src_lo, chunk.dst_fam, chunk.dst_hi, chunk.dst_lo,
                           chunk.protocol.astype(np.int16, copy=False), chunk.src_port.astype(np.int32, copy=False),
                           chunk.dst_port.astype(np.int32, copy=False), np.zeros(n, np.int8), None, None,
                           np.zeros(n, np.bool_))
        self.allowed.add(np.flatnonzero(allowed), flows)
        ids = engine.tables.eni_ids
        for eni in (raw.src_eni, raw.dst_eni):
            seen = valid & (eni >= 0)
            for target, mask in ((self.eni_records, seen), (self.eni_denied, seen & denied)):
                counts = np.bincount(eni[mask], minlength=len(ids))
                target.update({ids[i]: int(counts[i]) for i in np.flatnonzero(counts)})
        kind = np.select([allowed & ~stateful, allowed & stateful, denied], [0, 1, 2], 3)
        self.times.add(np.where(valid, chunk.time, np.nan), kind)

    def series(self) -> tuple[list[str], dict[str, list[int]], float]:
        """Bucket labels, the counts per category and the bucket width, at most SHOWN_BUCKETS buckets."""
        return time_series(self.times, ("allowed", "stateful", "denied", "unmanaged"))


def time_series(times: Any, names: tuple[str, ...]) -> tuple[list[str], dict[str, list[int]], float]:
    """A TimeHistogram as labels and named series (the kinds that ever occur), for a stacked figure."""
    start, width, grid = times.series(SHOWN_BUCKETS)
    labels = [_time_label(start + i * width, start, width) for i in range(len(grid))]
    return labels, {name: grid[:, k].tolist() for k, name in enumerate(names) if len(grid) and grid[:, k].any()}, width


def _time_label(t: float, start: float, width: float) -> str:
    if start > _EPOCH_2001:
        stamp = _dt.datetime.fromtimestamp(t, _dt.timezone.utc)
        return stamp.strftime("%H:%M:%S" if width < 60 else "%m-%d %H:%M")
    return f"{t - start:g}s"


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def replay_report(summary: Any, recorder: ReplayRecorder) -> str:
    """The report's HTML for a finished replay."""
    s = summary
    sections: list[tuple[str, str]] = []
    skipped = sum(s.skipped.values())
    totals = page.tiles([("records", s.records), ("evaluated", s.evaluated), ("allowed", s.allowed),
                         ("by a live session", s.stateful), ("denied", s.denied), ("unmanaged", s.unmanaged),
                         ("skipped", skipped), ("sessions opened", s.sessions)])
    if skipped:
        totals += page.table(["reason", "records"], sorted(s.skipped.items(), key=lambda kv: -kv[1]), numeric=[1])
    if not s.records:
        totals += page.empty("The trace holds no records: there is nothing to show.")
    sections.append(("Totals", totals))

    labels, series, width = recorder.series()
    if series:
        chart = svg.stacked_columns(labels, series, "Records over time")
        sections.append(("Over time", page.figure(chart, f"records per {_duration(width)}, stacked: allowed by the "
                                                         "rules, allowed by a live session, denied, unmanaged")))
    else:
        sections.append(("Over time", page.empty("No record carries a timestamp, so there is no time axis.")))

    denied = page.table(["flow", "records"], [(d["flow"], d["count"]) for d in s.top_denied[:20]], numeric=[1],
                        empty="No record was denied.")
    if s.top_denied and not s.top_denied_exact:
        denied += page.empty("Approximate: the trace denied too many distinct flows to count them all.")
    busiest = recorder.allowed.top(20)
    allowed = page.table(["flow", "records"], [(d["flow"], d["count"]) for d in busiest], numeric=[1],
                         empty="No record was allowed.")
    sections.append(("Most denied flows", denied))
    sections.append(("Busiest allowed flows", allowed))

    hits = [(name, count) for name, count in sorted(s.rule_hits.items(), key=lambda kv: -kv[1]) if count]
    rules_html = page.figure(svg.bars(hits[:40], "Records decided per rule"),
                             "records decided per rule (both sides of a path count)") if hits else \
        page.empty("No rule decided any record.")
    never: dict[str, list[str]] = {}
    for name in s.never_hit:
        group, _, rule = name.partition("/")
        never.setdefault(group, []).append(rule)
    rules_html += "<h3>Rules never hit</h3>" + page.table(
        ["group", "rules", "never hit"], [(g, len(r), ", ".join(r)) for g, r in sorted(never.items())], numeric=[1],
        empty="Every custom rule decided at least one record.")
    sections.append(("Hits per rule", rules_html))

    if s.compared:
        agree = page.tiles([("compared", s.compared), ("agree", s.agree), ("disagree", s.compared - s.agree),
                            ("agreement", f"{s.agree / s.compared:.1%}")])
        agree += page.table(["record", "ENI", "flow", "recorded", "flowsim", "egress rule", "ingress rule"],
                            [(d["record"], d["eni"] or "", d["flow"], d["recorded"], d["verdict"],
                              d["egress_rule"] or "-", d["ingress_rule"] or "-") for d in s.disagreements],
                            numeric=[0], empty="flowsim agrees with every recorded action.")
        sections.append(("Agreement with the recorded actions", agree))

    rows = [(eni, count, recorder.eni_denied[eni], f"{recorder.eni_denied[eni] / count:.1%}")
            for eni, count in sorted(recorder.eni_records.items(), key=lambda kv: (-kv[1], kv[0]))]
    sections.append(("Per interface", page.table(["ENI", "records", "denied", "denied share"], rows, numeric=[1, 2, 3],
                                                 empty="No record touched a modelled interface.")))
    subtitle = f"replay of {s.trace} ({s.format}), {counted(s.records, 'record')} in {s.seconds:.2f} s"
    return page.document("flowsim replay report", subtitle, sections)
