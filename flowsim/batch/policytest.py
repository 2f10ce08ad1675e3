"""Policy tests for CI pipelines (`flowsim test`): flows with the verdict (and optionally the deciding
rules) they must get, evaluated in one batch by the compiled engine.

A cases file is a YAML (or JSON) list; each case has the flow columns (`src_ip`, `dst_ip`, `protocol`,
`src_port`, `dst_port`, optional `vpc`, `eni`, `direction`), `expect: allow|deny|unmanaged`, and
optionally `egress_rule` / `ingress_rule` and a `name`. Every problem with the file is reported at
once, naming its line.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from ..errors import InputError, Problem
from ..kernels.codes import VERDICT_NAMES

VERDICTS = VERDICT_NAMES
FLOW_KEYS = ("src_ip", "dst_ip", "protocol", "src_port", "dst_port", "vpc", "eni", "direction")
CASE_KEYS = frozenset(FLOW_KEYS) | {"expect", "egress_rule", "ingress_rule", "name"}
REQUIRED = ("src_ip", "dst_ip", "protocol", "expect")


@dataclass(frozen=True)
class Case:
    """One expectation: a flow and what must decide it."""

    name: str
    source: str
    line: int | None
    flow: dict[str, Any]
    expect: str
    egress_rule: str | None = None  # None: not checked; "" : no rule on that side
    ingress_rule: str | None = None

    @property
    def text(self) -> str:
        f = self.flow
        ports = f.get("src_port") is not None or f.get("dst_port") is not None
        src = f"{f['src_ip']}:{f.get('src_port') or 0}" if ports else str(f["src_ip"])
        dst = f"{f['dst_ip']}:{f.get('dst_port') or 0}" if ports else str(f["dst_ip"])
        where = f" at {f['eni']} {f['direction']}" if f.get("eni") else ""
        return f"{src} -> {dst} {f['protocol']}{where}"


@dataclass(frozen=True)
class CaseResult:
    """What the engine decided for a case, and whether that is what the case expects."""

    case: Case
    verdict: str
    egress_rule: str
    ingress_rule: str

    @property
    def failures(self) -> list[str]:
        c, out = self.case, []
        if self.verdict != c.expect:
            out.append(f"expected {c.expect}, got {self.verdict}")
        for side, want, got in (("egress_rule", c.egress_rule, self.egress_rule),
                                ("ingress_rule", c.ingress_rule, self.ingress_rule)):
            if want is not None and want != got:
                out.append(f"expected {side} {want or '(none)'}, got {got or '(none)'}")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        decided = f"{self.verdict} (egress {self.egress_rule or '-'}, ingress {self.ingress_rule or '-'})"
        if self.passed:
            return f"ok   {self.case.name}: {decided}"
        where = f" ({self.case.source}:{self.case.line})" if self.case.line else ""
        return f"FAIL {self.case.name}{where}: {self.case.text}: {'; '.join(self.failures)}; decided {decided}"


def load_cases(path: str | os.PathLike) -> list[Case]:
    """Read and check a cases file; raises InputError listing every problem, each with its line."""
    from ..config.loader import line_of, read_document

    source = str(path)
    document = read_document(path)
    problems: list[Problem] = []
    if not isinstance(document, list):
        raise InputError(Problem("a cases file is a list of cases (each with src_ip, dst_ip, protocol and expect)",
                                 source=source, line=getattr(document, "line", None)))
    cases = []
    for i, raw in enumerate(document):
        line = line_of(document, i)
        label = f"case {i + 1}"
        if not isinstance(raw, dict):
            problems.append(Problem("a case is a mapping of flow columns and expect", label, source, line))
            continue
        if isinstance(raw.get("name"), str) and raw["name"].strip():
            label = raw["name"].strip()
        for key in raw:
            if key not in CASE_KEYS:
                problems.append(Problem(f"unknown key {key!r} (expected: {', '.join(sorted(CASE_KEYS))})", label, source,
                                        line_of(raw, key) or line))
        missing = [k for k in REQUIRED if raw.get(k) in (None, "")]
        if missing:
            problems.append(Problem(f"needs {', '.join(missing)}", label, source, line))
            continue
        expect = str(raw["expect"]).strip().lower()
        if expect not in VERDICTS:
            problems.append(Problem(f"expect must be allow, deny or unmanaged, not {raw['expect']!r}", label, source,
                                    line_of(raw, "expect") or line))
            continue
        if (raw.get("eni") is None) != (raw.get("direction") is None):
            problems.append(Problem("endpoint mode needs both eni and direction", label, source, line))
            continue
        rules = {}
        for side in ("egress_rule", "ingress_rule"):
            value = raw.get(side)
            if value is not None and not isinstance(value, str):
                problems.append(Problem(f"{side} is a rule name (GROUP/RULE or default:...)", label, source,
                                        line_of(raw, side) or line))
            rules[side] = None if value is None else value.strip()
        flow = {k: raw.get(k) for k in FLOW_KEYS}
        cases.append(Case(label, source, line, flow, expect, rules["egress_rule"], rules["ingress_rule"]))
    if problems:
        raise InputError(problems)
    if not cases:
        raise InputError(Problem("the cases file holds no case", source=source))
    return cases


def _column(values: list[Any], numeric: bool) -> list[Any]:
    if numeric:
        return [None if v in (None, "") else v for v in values]
    return [None if v is None else str(v) for v in values]


def run_cases(engine: Any, cases: list[Case]) -> list[CaseResult]:
    """Evaluate every case in one batch; a flow the engine cannot read is an InputError naming its case."""
    import pyarrow as pa

    from ..io.flows import prepare_flows

    columns = {}
    for key in FLOW_KEYS:
        values = [c.flow.get(key) for c in cases]
        if key in ("vpc", "eni", "direction") and all(v is None for v in values):
            continue
        numeric = key in ("src_port", "dst_port")
        try:
            columns[key] = pa.array(_column(values, numeric), type=pa.int64() if numeric else pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            bad = next(c for c in cases if c.flow.get(key) is not None and not _is_int(c.flow.get(key)))
            raise InputError(Problem(f"{key}: {str(bad.flow.get(key))[:80]!r} is not a port number", bad.name,
                                     bad.source, bad.line)) from None
    prepared = prepare_flows(pa.table(columns))
    raw = engine.evaluate_arrays(prepared)
    if prepared.invalid.any():
        raise InputError([Problem(reason, cases[row].name, cases[row].source, cases[row].line)
                          for row, reason in prepared.reasons])
    table = engine.name_verdicts(raw)
    verdicts, egress, ingress = (table.column(n).to_pylist() for n in ("verdict", "egress_rule", "ingress_rule"))
    return [CaseResult(c, v, e or "", i or "") for c, v, e, i in zip(cases, verdicts, egress, ingress)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def junit_xml(results: list[CaseResult], suite: str, seconds: float = 0.0) -> str:
    """A JUnit XML report (one testsuite, a testcase per case, a failure element per failing case)."""
    failed = sum(1 for r in results if not r.passed)
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failed), errors="0", time=f"{seconds:.3f}")
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)), failures=str(failed), errors="0",
                         skipped="0", time=f"{seconds:.3f}")
    for r in results:
        case = ET.SubElement(node, "testcase", classname=suite, name=r.case.name, time="0")
        if not r.passed:
            failure = ET.SubElement(case, "failure", message="; ".join(r.failures), type="policy")
            failure.text = str(r)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
