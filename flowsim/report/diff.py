"""The diff reports: what a change opens and what it closes, over every flow (`diff OLD NEW`) and over
recorded traffic (`diff --trace`)."""
from __future__ import annotations

import math
from typing import Any

from ..model.words import counted
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
        head += page.empty(f"{counted(r.one_side_invalid, 'record')} could be evaluated under one configuration only "
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
    more = page.empty(f"... and {counted(len(r.transitions) - 50, 'more transition')}.") if len(r.transitions) > 50 else ""
    sections.append(("By rule transition", page.table(["records", f"under {r.old_config}", f"under {r.new_config}"],
                                                      rows, numeric=[0]) + more))
    top = page.table(["flow", "records"], [(f["flow"], f["count"]) for f in r.top_changed], numeric=[1])
    if not r.top_changed_exact:
        top += page.empty("Approximate: too many distinct flows changed to count them all.")
    sections.append(("Most frequent changed flows", top))
    return page.document("flowsim diff report", f"{r.old_config} -> {r.new_config} over {r.trace} ({r.format}), "
                                                f"{counted(r.records, 'record')}", sections)


KIND_TITLES = {"opened": "What opens (deny -> allow)", "closed": "What closes (allow -> deny)",
               "verdict": "Other verdict changes", "rules": "Same verdict, decided by other rules"}


def _box(box: dict[str, Any]) -> str:
    return (f"{box['protocol']} {box['src']} -> {box['dst']} sport {box['src_ports']} dport {box['dst_ports']}"
            f" ({box['size']:,})")


def space_diff_report(result: Any, boxes_shown: int = 8) -> str:
    """The report's HTML for a finished header-space `diff OLD NEW` (flowsim.analysis.diff.SpaceDiff)."""
    r = result.to_dict()
    changes = r["changes"]
    by_kind = {k: [c for c in changes if c["kind"] == k] for k in KIND_TITLES}
    head = page.tiles([("changes", len(changes)), *((f"{k} ({counted(sum(c['size'] for c in v), 'flow')})", len(v))
                                                    for k, v in by_kind.items()),
                       ("analysis incomplete", len(r["incomplete"]))])
    if r["incomplete"]:
        head += page.table(["unit left incomplete (changes there may be missing)"],
                           [(f"{'+'.join(i['groups'])} {i['direction']}: {i['reason']}",) for i in r["incomplete"]])
    sections = [("Totals", head)]
    if r["identical"]:
        sections.append(("Changes", page.empty("Identical: the two configurations decide every flow alike, by the "
                                               "same rules (exact, over every possible flow).")))
    elif changes:
        worst = sorted(changes, key=lambda c: -c["size"])[:30]
        sections.append(("Size of each change", page.figure(
            svg.bars([(f"{c['kind']}: {c['src']} -> {c['dst']}", round(math.log2(c["size"]), 1)) for c in worst],
                     "Changed flows per change (log2)", unit=" bits"),
            "log2 of the number of flows of each change, largest first (32 bits: 4.3 billion flows)")))
    for kind, mine in by_kind.items():
        if not mine:
            continue
        rows = []
        for c in mine:
            boxes = [_box(b) for b in c["boxes"][:boxes_shown]]
            if len(c["boxes"]) > boxes_shown or not c["boxes_complete"]:
                boxes.append(f"... and {len(c['boxes']) - min(boxes_shown, len(c['boxes'])):,}"
                             f"{'' if c['boxes_complete'] else '+'} more")
            e = c["example"]
            rows.append((c["src"], c["dst"], c["size"],
                         _side(c["old_verdict"], c["old_egress_rule"], c["old_ingress_rule"]),
                         _side(c["new_verdict"], c["new_egress_rule"], c["new_ingress_rule"]), "; ".join(boxes),
                         f"{e['src_ip']}:{e['src_port']} -> {e['dst_ip']}:{e['dst_port']} {e['protocol']}"))
        sections.append((KIND_TITLES[kind], page.table(
            ["source", "destination", "flows", f"base ({result.old_config})", f"delta ({result.new_config})",
             "region (boxes)", "example flow"], rows, numeric=[2])))
    only = [(which, kind, ", ".join(names)) for which, items in (("only in " + result.old_config, r["only_in_old"]),
                                                                 ("only in " + result.new_config, r["only_in_new"]))
            for kind, names in items.items() if names]
    sections.append(("Present in one configuration only", page.table(["where", "what", "names"], only,
                                                                     empty="nothing: both name the same interfaces, "
                                                                           "groups and rules")))
    return page.document("flowsim diff report", f"{result.old_config} -> {result.new_config} over every flow "
                                                f"(header space): {counted(len(changes), 'change')}", sections)
