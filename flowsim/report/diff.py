"""The diff report: what a change opens and what it closes, over recorded traffic (`diff --trace`)."""
from __future__ import annotations

from typing import Any

from . import page, svg
from .replay import time_series


def _side(verdict: str, egress: str, ingress: str) -> str:
    return f"{verdict or 'invalid'} ({egress or '-'} / {ingress or '-'})"


def trace_diff_report(result: Any) -> str:
    """The report's HTML for a finished `diff OLD NEW --trace T`."""
    r = result
    head = page.tiles([("records", r.records), ("compared", r.compared), ("change verdict", r.changed),
                       ("opened (deny -> allow)", r.opened), ("closed (allow -> deny)", r.closed),
                       ("same verdict, other rules", r.rule_changed)])
    if r.at is not None:
        head += page.empty(f"{r.new_config} deployed at {r.at}; before it both sides are {r.old_config}.")
        head += "".join(page.empty(f"Live sessions re-evaluated then: {c['live']:,}; closed by the change: "
                                   f"{c['closed']:,}.") for c in (r.new.changes if r.new else []))
    if r.one_side_invalid:
        head += page.empty(f"{r.one_side_invalid:,} records could be evaluated under one configuration only "
                           "(counted as changed).")
    sections = [("Totals", head)]
    if not r.changed:
        sections.append(("Changes", page.empty("No record of the trace changes verdict: over this traffic the two "
                                               "configurations decide alike.")))
        return page.document("flowsim diff report", f"{r.old_config} -> {r.new_config} over {r.trace}", sections)
    labels, series, width = time_series(r.over_time, ("opened", "closed", "one side only"))
    if series:
        sections.append(("Changed records over time", page.figure(
            svg.stacked_columns(labels, series, "Changed records over time"),
            f"records per {width:g} s whose verdict changes: opened (deny -> allow), closed (allow -> deny), and "
            "records evaluable under one configuration only")))
    rows = [(t["count"], _side(t["old_verdict"], t["old_egress_rule"], t["old_ingress_rule"]),
             _side(t["new_verdict"], t["new_egress_rule"], t["new_ingress_rule"])) for t in r.transitions[:50]]
    more = page.empty(f"... and {len(r.transitions) - 50:,} more transitions.") if len(r.transitions) > 50 else ""
    sections.append(("By rule transition", page.table(["records", f"under {r.old_config}", f"under {r.new_config}"],
                                                      rows, numeric=[0]) + more))
    top = page.table(["flow", "records"], [(f["flow"], f["count"]) for f in r.top_changed], numeric=[1])
    if not r.top_changed_exact:
        top += page.empty("Approximate: too many distinct flows changed to count them all.")
    sections.append(("Most frequent changed flows", top))
    return page.document("flowsim diff report", f"{r.old_config} -> {r.new_config} over {r.trace} ({r.format}), "
                                                f"{r.records:,} records", sections)
