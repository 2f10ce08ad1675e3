"""The lint report: findings by severity and kind, per group, each with its sentence and example flow,
and the quota headroom of every object against its limit."""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from ..model.words import counted
from . import page, svg

SEVERITIES = ("error", "warning", "info")


def _record(finding: Any) -> dict[str, Any]:
    return finding if isinstance(finding, dict) else finding.to_dict()


def _flow(example: dict[str, Any] | None) -> str:
    if not example:
        return ""
    ports = example.get("dst_port") not in (None, "", 0) or example.get("src_port") not in (None, "", 0)
    src = f"{example.get('src_ip')}:{example.get('src_port') or 0}" if ports else str(example.get("src_ip"))
    dst = f"{example.get('dst_ip')}:{example.get('dst_port') or 0}" if ports else str(example.get("dst_ip"))
    return f"{src} -> {dst} {example.get('protocol', '')}"


def lint_report(findings: Sequence[Any], usage: Sequence[Any], source: str, incomplete: Sequence[str] = ()) -> str:
    """The report's HTML for `flowsim lint`: `findings` (records or their JSON dicts), quota `usage`
    (flowsim.config.validate.quota_usage) and the units whose analysis did not complete."""
    records = [_record(f) for f in findings]
    by_severity = Counter(r["severity"] for r in records)
    head = page.tiles([*((s, by_severity.get(s, 0)) for s in SEVERITIES), ("analysis incomplete", len(incomplete))])
    if incomplete:
        head += page.table(["unit left incomplete (nothing is claimed about it)"], [(u,) for u in incomplete], empty="")
    sections = [("Summary", head)]
    if not records:
        sections.append(("Findings", page.empty("No findings: no rule is dead, redundant, tied, overridden or "
                                                "over-permissive, and every quota has headroom.")))
    for severity in SEVERITIES:
        mine = [r for r in records if r["severity"] == severity]
        if not mine:
            continue
        parts = []
        for kind in sorted({r["kind"] for r in mine}):
            rows = [(r.get("rule") or "", ", ".join(r.get("by") or []), r.get("direction") or "",
                     ", ".join(r.get("enis") or []) or "(no interface)", r.get("message") or "", _flow(r.get("example")))
                    for r in mine if r["kind"] == kind]
            parts.append(f'<h3 class="sev-{severity}">{page.text(kind)} ({len(rows)})</h3>'
                         + page.table(["rule", "by", "direction", "on interfaces", "what it means", "example flow"], rows))
        sections.append((f"{severity.capitalize()}s", "".join(parts)))
    groups = Counter((r.get("rule") or "").partition("/")[0] for r in records if r.get("rule") and "/" in r["rule"])
    if groups:
        sections.append(("Per group", page.table(
            ["group", *SEVERITIES], [(g, *(sum(1 for r in records if (r.get("rule") or "").startswith(g + "/")
                                               and r["severity"] == s) for s in SEVERITIES))
                                     for g, _ in groups.most_common()], numeric=[1, 2, 3])))
    shown = sorted(usage, key=lambda u: -u.share)[:40]
    if shown:
        bars = svg.bars([(f"{u.subject} · {u.quota}", round(100 * u.share, 1)) for u in shown], "Quota use", unit="%",
                        limit=100)
        sections.append(("Quota headroom", page.figure(bars, "use of each quota as a share of its limit, highest "
                                                             "first; the dashed line is the limit (accounts can raise "
                                                             "limits under `limits:`)")
                         + page.table(["object", "quota", "used", "limit"],
                                      [(u.subject, u.quota, u.used, u.limit) for u in shown], numeric=[2, 3])))
    return page.document("flowsim lint report", f"lint of {source}: {counted(len(records), 'finding')}", sections)
