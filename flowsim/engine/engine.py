"""The engine API (docs/commands.md (Python API)): a compiled configuration that evaluates flows in bulk.

`compile_config(config)` builds the tables once; `Engine.evaluate(flows)`
converts a table of flows, runs the numba kernel and names the results;
`Engine.explain(flow)` gives the explanation `flowsim check` prints, from the same kernel.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from ..errors import InputError, Problem
from ..io.flows import FlowArrays, Names, prepare_flows, to_table
from ..kernels import codes as C
from ..kernels import evaluate as K
from ..model.addresses import address_parts
from ..model.network import Config, Flow, Rule
from .compiler import N_DEFAULTS, CompiledTables, compile_tables
from .explain import Explanation
from .reference import ALLOW, DENY, UNMANAGED, SideDecision, Verdict

VERDICT_NAMES = (ALLOW, DENY, UNMANAGED)


@dataclass
class RawVerdicts:
    """Kernel output: verdict codes, deciding-rule codes (-1: side does not apply) and the ENI of each side."""

    verdict: np.ndarray
    egress_code: np.ndarray
    ingress_code: np.ndarray
    src_eni: np.ndarray
    dst_eni: np.ndarray

    @classmethod
    def allocate(cls, n: int) -> "RawVerdicts":
        """Uninitialised room for the verdicts of n flows, in the kernel's types."""
        return cls(np.empty(n, np.int8), np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int32),
                   np.empty(n, np.int32))

    def take(self, mask: np.ndarray) -> "RawVerdicts":
        """The rows where `mask` is true."""
        return RawVerdicts(*(getattr(self, f)[mask] for f in ("verdict", "egress_code", "ingress_code", "src_eni", "dst_eni")))


def set_threads(threads: int | None) -> int:
    """Use `threads` numba threads (None keeps the current number); returns the number in force."""
    import numba

    if threads is not None:
        if not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
            raise InputError(Problem(f"must be between 1 and {numba.config.NUMBA_NUM_THREADS}", subject="--threads"))
        numba.set_num_threads(threads)
    return numba.get_num_threads()


class Engine:
    """A configuration compiled into match tables, ready for millions of flows.

    `config` may be a function that loads it: evaluating needs only the tables, so a cached
    engine defers the (slower) configuration objects until an explanation needs them."""

    def __init__(self, config: Config | Callable[[], Config], tables: CompiledTables):
        self._config = config
        self.tables = tables
        self._vpc_index = {v: i for i, v in enumerate(tables.vpc_names)}
        self._eni_index = {e: i for i, e in enumerate(tables.eni_ids)}
        self._names = pa.array([""] + list(tables.rule_names), type=pa.string())
        self._verdicts = pa.array(list(VERDICT_NAMES), type=pa.string())
        self._none_cache = np.zeros(0, np.int32)

    @cached_property
    def config(self) -> Config:
        """The configuration the tables were compiled from."""
        return self._config if isinstance(self._config, Config) else self._config()

    @cached_property
    def rules(self) -> tuple[Rule, ...]:
        """Custom rules by code: rule code N_DEFAULTS + k is rules[k]."""
        return self.config.evaluation_order()

    # -- numbers in, numbers out
    def evaluate_arrays(self, flows: FlowArrays, threads: int | None = None) -> RawVerdicts:
        """Run the kernel over prepared flows; invalid rows get verdict code 3 and no rules."""
        set_threads(threads)
        n = len(flows)
        unknown_vpc = len(self._vpc_index)
        vpc = flows.vpc.lookup(self._vpc_index, -1, unknown_vpc) if flows.vpc else self._none(n)
        eni = flows.eni.lookup(self._eni_index, K.ENI_NONE, K.ENI_UNKNOWN) if flows.eni else self._none(n)
        any_invalid = bool(flows.invalid.any())
        if any_invalid:
            eni = np.where(flows.invalid, K.ENI_UNKNOWN, eni).astype(np.int32)
        out = RawVerdicts.allocate(n)
        kernel = K.evaluate_flows if n > K.CHUNK else K.evaluate_flows_serial
        kernel(K.Flows(flows.sfam, flows.shi, flows.slo, flows.dfam, flows.dhi, flows.dlo, flows.proto, flows.sport,
                       flows.dport, vpc, eni, flows.direction),
               self.tables.kernel_owners, self.tables.kernel_tables, self.tables.kernel_classifier,
               K.Results(out.verdict, out.egress_code, out.ingress_code, out.src_eni, out.dst_eni))
        flows.mark(out.verdict == C.AMBIGUOUS, "address is owned in several VPCs; name the VPC (a vpc column, or --vpc)")
        if any_invalid:
            out.verdict[flows.invalid] = C.AMBIGUOUS
        return out

    def _none(self, n: int) -> np.ndarray:
        """n times -1 (no VPC, no ENI), kept per length (the kernels only read it): a batch of a
        million flows would otherwise fill 4 MB twice before its evaluation starts."""
        if self._none_cache.shape[0] != n:
            self._none_cache = np.full(n, -1, np.int32)
        return self._none_cache

    def name_verdicts(self, raw: RawVerdicts) -> pa.Table:
        """The verdict columns of docs/formats.md (verdicts) for raw kernel output (dictionary-encoded strings)."""
        def names(codes: np.ndarray) -> pa.Array:
            return pa.DictionaryArray.from_arrays(pa.array(codes + 1, type=pa.int32()), self._names)

        valid = raw.verdict < C.AMBIGUOUS
        verdict = pa.DictionaryArray.from_arrays(pa.array(np.where(valid, raw.verdict, 0).astype(np.int32), mask=~valid),
                                                 self._verdicts)
        return pa.table({"verdict": verdict, "egress_rule": names(raw.egress_code), "ingress_rule": names(raw.ingress_code)})

    def with_verdicts(self, table: pa.Table, raw: RawVerdicts) -> pa.Table:
        """`table` with the verdict columns appended (replacing input columns of the same names)."""
        verdicts = self.name_verdicts(raw)
        table = table.drop_columns([name for name in verdicts.column_names if name in table.column_names])
        for name in verdicts.column_names:
            table = table.append_column(name, verdicts.column(name))
        return table

    # -- tables in, tables out
    def evaluate(self, flows: Any, threads: int | None = None) -> pa.Table:
        """Verdict, egress_rule and ingress_rule for each flow of a table; raises on invalid rows."""
        table = to_table(flows)
        prepared = prepare_flows(table)
        raw = self.evaluate_arrays(prepared, threads)
        if prepared.invalid.any():
            raise InputError(invalid_row_problems(prepared))
        return self.name_verdicts(raw)

    # -- one flow, explained
    def explain(self, flow: Flow | None = None, **fields: Any) -> Explanation:
        """The explanation `flowsim check` prints, computed by the compiled kernel; `fields` are those of
        Flow.parse (src, dst, protocol, ports, vpc, eni, direction), and a bad one raises InputError naming it."""
        if flow is None:
            flow = Flow.parse(**fields)
        sf, sh, sl = address_parts(flow.src)
        df, dh, dl = address_parts(flow.dst)
        direction = {None: 0, "ingress": 1, "egress": 2}[flow.direction]
        arrays = FlowArrays(np.array([sf], np.uint8), np.array([sh], np.uint64), np.array([sl], np.uint64),
                            np.array([df], np.uint8), np.array([dh], np.uint64), np.array([dl], np.uint64),
                            np.array([flow.protocol], np.int16), np.array([flow.src_port], np.int32),
                            np.array([flow.dst_port], np.int32), np.array([direction], np.int8),
                            Names([flow.vpc], np.zeros(1, np.int64)), Names([flow.eni], np.zeros(1, np.int64)),
                            np.zeros(1, np.bool_))
        raw = self.evaluate_arrays(arrays)
        if arrays.invalid[0]:
            raise InputError(Problem(arrays.reasons[0][1], subject="flow"))
        verdict = Verdict(VERDICT_NAMES[raw.verdict[0]],
                          self._side(int(raw.src_eni[0]), "egress", int(raw.egress_code[0])),
                          self._side(int(raw.dst_eni[0]), "ingress", int(raw.ingress_code[0])))
        return Explanation(flow, verdict, self.config)

    def _side(self, eni: int, direction: str, code: int) -> SideDecision | None:
        """One side's decision, named: the ENI the kernel checked and the rule (or default) that decided."""
        if code < 0:
            return None
        eni_id = self.tables.eni_ids[eni]
        allowed = bool(self.tables.code_allows[code])
        if code < N_DEFAULTS:
            return SideDecision(eni_id, direction, allowed, self.tables.rule_names[code])
        rule = self.rules[code - N_DEFAULTS]
        return SideDecision(eni_id, direction, allowed, rule.name, rule.priority, rule.group, rule)


def invalid_row_problems(flows: FlowArrays, source: str = "", line_of: Callable[[int], int | None] | None = None,
                         first_row: int = 0) -> list[Problem]:
    """Problems naming the first invalid rows: by the file line `line_of(row)` gives (a CSV file), else as
    "row N", counted from 1 (`first_row`: the rows before these, as in a Parquet file read in batches)."""
    problems = []
    for row, reason in flows.reasons:
        line = line_of(row) if line_of is not None else None
        problems.append(Problem(reason, subject="" if line is not None else f"row {first_row + row + 1}", source=source,
                                line=line))
    count = int(flows.invalid.sum())
    if count > len(problems):
        problems.append(Problem(f"{count} invalid rows in all ({count - len(problems)} more not listed)", source=source))
    return problems


def compile_config(config: Config) -> Engine:
    """Compile a validated configuration into an `Engine`."""
    return Engine(config, compile_tables(config))
