"""Header-space diff (docs/analysis.md (diff)): every flow whose path-mode verdict or deciding rule differs between two
configurations, grouped by (source ENI, destination ENI, old deciding rules, new deciding rules), each group an
exact region with its boxes, size and one example flow.

Both configurations live in one BDD manager, so equal regions are equal nodes. Only the units a change can touch
are swept: an ENI side is *touched* when its addresses, its VPC, its groups or backend flag differ, or one of its
groups differs in that direction (its kind, place, interconnected members, or rules with peers and ports
resolved). Touching more sides than change costs time, never exactness. A flow can change only where its source is a touched egress side
or its destination a touched ingress side; there, a side's decision (rule and action) is compared between the
two configurations, which gives the exact region D of changed flows (a flow's outcome is a function of its two
sides, apart from flows between two addresses of one ENI, handled apart). Then D alone is split by its owners
and the deciding entries of both sides under both configurations: only units whose ENIs own addresses of D are
swept again, each restricted to D.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..config.loader import paused_gc
from ..engine.reference import ALLOW, DENY, UNMANAGED
from ..model.network import ACCEPT, EGRESS, INGRESS, PORTED_PROTOCOLS, Config, Interface, Rule, protocol_name
from ..model.words import counted
from .lint import Incomplete
from .space import Box, Space
from .units import NODE_BUDGET, TIME_BUDGET_S, Regions, build_unit, eni_groups

EXTERNAL = "external"
OPENED, CLOSED, VERDICT, RULES = "opened", "closed", "verdict", "rules"
KIND_ORDER = (OPENED, CLOSED, VERDICT, RULES)
KIND_WORDS = {OPENED: "opened (deny -> allow)", CLOSED: "closed (allow -> deny)",
              VERDICT: "other verdict changes", RULES: "same verdict, other rules"}
BOX_LIMIT = 100  # boxes kept per change for printing and JSON
FILE_BOX_LIMIT = 10_000  # ... and for the -o table
NONE = ("", "")  # a side that does not apply: (rule, action)
FIELD_OF = {EGRESS: "src", INGRESS: "dst"}
ACTION_FIELDS = ("old_egress_action", "old_ingress_action", "new_egress_action", "new_ingress_action")


@dataclass
class Change:
    """Flows between one source and one destination that the same rules decide under OLD and under NEW."""

    vpc: str
    src: str  # ENI id or `external`; "OLD -> NEW" when the flows' source changed owner
    dst: str
    old_verdict: str
    new_verdict: str
    old_egress_rule: str
    old_ingress_rule: str
    new_egress_rule: str
    new_ingress_rule: str
    actions: tuple[str, str, str, str]  # what each side's rule does: old egress, old ingress, new egress, new ingress
    size: int
    boxes: list[Box]
    boxes_complete: bool  # False: the region has more boxes than were kept
    example: dict
    region: object = field(repr=False, default=None)  # the BDD (in the diff's Space)

    @property
    def kind(self) -> str:
        if (self.old_verdict, self.new_verdict) == (DENY, ALLOW):
            return OPENED
        if (self.old_verdict, self.new_verdict) == (ALLOW, DENY):
            return CLOSED
        return VERDICT if self.old_verdict != self.new_verdict else RULES

    def to_dict(self, with_vpc: bool = False) -> dict[str, Any]:
        out = {"vpc": self.vpc} if with_vpc else {}
        out.update(src=self.src, dst=self.dst, kind=self.kind, old_verdict=self.old_verdict,
                   new_verdict=self.new_verdict, old_egress_rule=self.old_egress_rule,
                   old_ingress_rule=self.old_ingress_rule, new_egress_rule=self.new_egress_rule,
                   new_ingress_rule=self.new_ingress_rule,
                   **dict(zip(ACTION_FIELDS, self.actions)), boxes=[box_dict(b) for b in self.boxes],
                   boxes_complete=self.boxes_complete, size=self.size, example=self.example)
        return out


@dataclass
class SpaceDiff:
    """The header-space diff of two configurations."""

    old_config: str
    new_config: str
    changes: list[Change] = field(default_factory=list)  # opened first, then closed, other verdicts, rules
    only_in_old: dict[str, list[str]] = field(default_factory=dict)  # interfaces, groups, rules
    only_in_new: dict[str, list[str]] = field(default_factory=dict)
    incomplete: list[Incomplete] = field(default_factory=list)
    units: int = 0  # unit sweeps run (touched units, and units restricted to the changed flows)
    seconds: float = 0.0
    space: Space | None = field(repr=False, default=None)  # the manager of the changes' regions

    @property
    def identical(self) -> bool:
        """No flow is decided differently (a proof, when no unit was left incomplete)."""
        return not self.changes and not self.incomplete

    @property
    def multi_vpc(self) -> bool:
        return len({c.vpc for c in self.changes}) > 1

    def to_dict(self) -> dict[str, Any]:
        return {"identical": self.identical, "changes": [c.to_dict(self.multi_vpc) for c in self.changes],
                "only_in_old": self.only_in_old, "only_in_new": self.only_in_new,
                "incomplete": [i.to_dict() for i in self.incomplete]}

    def changes_table(self):
        """One row per change: the columns of `--json` but boxes, the example flattened as example_*."""
        import pyarrow as pa

        rows = [{k: v for k, v in c.to_dict(True).items() if k not in ("boxes", "example")} for c in self.changes]
        for row, c in zip(rows, self.changes):
            row["size"] = str(row["size"])
            row.update({f"example_{k}": str(v) for k, v in c.example.items() if k != "vpc"})
        names = ["vpc", "src", "dst", "kind", "old_verdict", "new_verdict", "old_egress_rule", "old_ingress_rule",
                 "new_egress_rule", "new_ingress_rule", *ACTION_FIELDS, "boxes_complete", "size", "example_src_ip", "example_dst_ip",
                 "example_protocol", "example_src_port", "example_dst_port"]
        return pa.table({n: pa.array([r[n] for r in rows], type=pa.bool_() if n == "boxes_complete" else pa.string())
                         for n in names})

    def table(self, box_limit: int = FILE_BOX_LIMIT):
        """One row per box of every change (what `-o` writes): the change's number and columns, then the box,
        at most `box_limit` boxes per change. Sizes are decimal text (IPv6 regions outgrow 64-bit integers)."""
        import pyarrow as pa

        cols: dict[str, list] = defaultdict(list)
        for k, c in enumerate(self.changes, 1):
            boxes = c.boxes if c.boxes_complete and len(c.boxes) <= box_limit else \
                list(self.space.boxes(c.region, box_limit))
            for b in boxes:
                cols["change"].append(k)
                for name in ("vpc", "src", "dst", "kind", "old_verdict", "new_verdict", "old_egress_rule",
                             "old_ingress_rule", "new_egress_rule", "new_ingress_rule"):
                    cols[name].append(getattr(c, name))
                for name, value in box_dict(b).items():
                    cols[f"box_{name}"].append(str(value))
        names = ["change", "vpc", "src", "dst", "kind", "old_verdict", "new_verdict", "old_egress_rule",
                 "old_ingress_rule", "new_egress_rule", "new_ingress_rule", "box_src", "box_dst", "box_protocol",
                 "box_src_ports", "box_dst_ports", "box_size"]
        return pa.table({n: pa.array(cols[n], type=pa.int32() if n == "change" else pa.string()) for n in names})

    def truncated(self, box_limit: int = FILE_BOX_LIMIT) -> list[int]:
        """The numbers of the changes with more than `box_limit` boxes (their rows in `table` stop there)."""
        return [k for k, c in enumerate(self.changes, 1)
                if not c.boxes_complete and sum(1 for _ in self.space.boxes(c.region, box_limit + 1)) > box_limit]

    def __str__(self) -> str:
        return format_diff(self)


def box_dict(b: Box) -> dict[str, Any]:
    """A box as text fields: CIDRs, protocol (a name, `all` or LO-HI), port ranges (N or LO-HI), and its size."""
    lo, hi = b.protocols
    proto = protocol_name(lo) if lo == hi else "all" if (lo, hi) == (0, 255) else f"{lo}-{hi}"
    return {"src": str(b.src), "dst": str(b.dst), "protocol": proto, "src_ports": _range(b.src_ports),
            "dst_ports": _range(b.dst_ports), "size": b.size}


def _range(r: tuple[int, int]) -> str:
    return str(r[0]) if r[0] == r[1] else f"{r[0]}-{r[1]}"


# ---------------------------------------------------------------- what a change can touch
class _Side:
    """One configuration's view for the diff: its regions, its ENIs per VPC, each ENI side's signature."""

    def __init__(self, config: Config, space: Space, budgets: dict):
        self.config, self.space, self.budgets = config, space, budgets
        self.regions = Regions(config, space)
        self._members: dict[str, frozenset] = {}
        self._signatures: dict[tuple, tuple] = {}
        self._ownership: dict[str, tuple | None] = {}
        self._rules: dict[str, tuple] = {}
        self.owned_all: dict[tuple[str, str], object] = {}
        self.indexes: dict[tuple[str, str], _OwnerIndex] = {}

    def enis(self, vpc: str) -> list[Interface]:
        return [e for e in self.config.interfaces.values() if e.vpc == vpc]

    def own(self, eni_id: str | None, vpc: str, fieldname: str) -> object:
        """The flows whose `fieldname` address the ENI owns in `vpc` (None: no modelled ENI of `vpc`)."""
        if eni_id is None:
            return self.space.universe & ~self.owned_everywhere(vpc, fieldname)
        eni = self.config.interfaces.get(eni_id)
        return self.regions.owned(eni, fieldname) if eni is not None and eni.vpc == vpc else self.space.false

    def owned_everywhere(self, vpc: str, fieldname: str) -> object:
        key = (vpc, fieldname)
        if key not in self.owned_all:
            self.owned_all[key] = self.space.disj(self.regions.owned(e, fieldname) for e in self.enis(vpc))
        return self.owned_all[key]

    def index(self, vpc: str, fieldname: str) -> _OwnerIndex:
        key = (vpc, fieldname)
        if key not in self.indexes:
            self.indexes[key] = _OwnerIndex(self.space, [(e.id, self.regions.owned(e, fieldname))
                                                         for e in self.enis(vpc)])
        return self.indexes[key]

    def ownership(self, eni_id: str) -> tuple | None:
        if eni_id not in self._ownership:
            eni = self.config.interfaces.get(eni_id)
            self._ownership[eni_id] = None if eni is None else (eni.vpc, frozenset(eni.owned_networks()))
        return self._ownership[eni_id]

    def group_signature(self, group_id: str, direction: str) -> tuple | None:
        """What a group brings to the entry lists of its group sets in one direction: its kind and place in the
        file, its members where it interconnects them (basic, accept), and its rules in order with peers and
        ports resolved. Equal signatures in OLD and NEW for every group of a set, with the same ENI
        addresses, mean the same ordered entries (a superset of the changes is fine: touched sides are only
        swept again)."""
        key = (group_id, direction)
        if key not in self._signatures:
            group = self.config.groups.get(group_id)
            if group is None:
                self._signatures[key] = None
            else:
                shared = direction == INGRESS and group.type == "basic" and group.internal_policy == ACCEPT
                self._signatures[key] = (
                    group.type, group.internal_policy, group.order, self.members(group_id) if shared else None,
                    tuple((r.priority, r.position, self._rule_signature(r)) for r in group.rules
                          if r.direction == direction))
        return self._signatures[key]

    def _rule_signature(self, rule: Rule) -> tuple:
        got = self._rules.get(rule.name)
        if got is None:
            got = self._rules[rule.name] = self._resolved_rule(rule)
        return got

    def _resolved_rule(self, rule: Rule) -> tuple:
        cfg, peer = self.config, rule.peer
        if peer.kind == "cidr":
            resolved: object = peer.cidr
        elif peer.kind == "group":
            resolved = ("group", self.members(peer.ref))
        else:
            resolved = ("prefix_list", frozenset(cfg.prefix_lists[peer.ref].entries))
        ported = rule.protocol in PORTED_PROTOCOLS
        return (rule.name, rule.action, rule.protocol, cfg.destination_ports(rule) if ported else (),
                rule.source_ports if ported else (), rule.local, resolved)

    def members(self, group: str) -> frozenset:
        if group not in self._members:
            self._members[group] = frozenset(n for e in self.config.members(group) for n in e.owned_networks())
        return self._members[group]


class _OwnerIndex:
    """ENIs' owned regions in a balanced tree of unions, to find the few ENIs a region touches without
    testing every ENI."""

    def __init__(self, space: Space, owners: list[tuple[str, object]]):
        self.space, self.owners = space, owners
        self.tree: dict[tuple[int, int], object] = {}
        if owners:
            self._build(0, len(owners))

    def _build(self, lo: int, hi: int) -> object:
        if hi - lo == 1:
            region = self.owners[lo][1]
        else:
            mid = (lo + hi) // 2
            region = self._build(lo, mid) | self._build(mid, hi)
        self.tree[(lo, hi)] = region
        return region

    def hits(self, projection: object) -> list[str]:
        """The ENIs owning some address of `projection` (a region over the indexed field)."""
        out: list[str] = []

        def walk(lo: int, hi: int) -> None:
            if self.tree[(lo, hi)] & projection == self.space.false:
                return
            if hi - lo == 1:
                out.append(self.owners[lo][0])
                return
            mid = (lo + hi) // 2
            walk(lo, mid)
            walk(mid, hi)

        if self.owners:
            walk(0, len(self.owners))
        return out


class _Differ:
    """The two configurations' sides in one Space, and the sweeps run for the diff."""

    def __init__(self, old: Config, new: Config, budgets: dict):
        self.space = Space()
        self.old, self.new = _Side(old, self.space, budgets), _Side(new, self.space, budgets)
        self.incomplete: list[Incomplete] = []
        self.units = 0
        names = self.space.names
        self._others = {f: [n for n in names if n != "fam" and not (n.startswith(f) and n[len(f):].isdigit())]
                        for f in ("src", "dst")}
        ids = set(old.interfaces) | set(new.interfaces)
        self._differ: dict[tuple[str, str], bool] = {}
        self.touched = {d: {e for e in ids if self._side_differs(e, d)} for d in (EGRESS, INGRESS)}
        self.moved = {e for e in ids if self.old.ownership(e) != self.new.ownership(e)}

    def _side_differs(self, eni_id: str, direction: str) -> bool:
        """Whether the ENI's side in `direction` may be decided differently: its addresses, VPC, groups or
        backend flag differ, or one of its groups' signatures does (each group compared once)."""
        a, b = self.old.config.interfaces.get(eni_id), self.new.config.interfaces.get(eni_id)
        if a is None or b is None or self.old.ownership(eni_id) != self.new.ownership(eni_id):
            return True
        groups = eni_groups(self.old.config, a)
        if groups != eni_groups(self.new.config, b) or a.load_balancer_backend != b.load_balancer_backend:
            return True
        for g in groups:
            key = (g, direction)
            if key not in self._differ:
                self._differ[key] = self.old.group_signature(g, direction) != self.new.group_signature(g, direction)
            if self._differ[key]:
                return True
        return False

    def project(self, region: object, fieldname: str) -> object:
        """The `fieldname` addresses (with the family) of the flows of region."""
        return self.space.bdd.exist(self._others[fieldname], region)

    def cells(self, side: _Side, vpc: str, direction: str, region: object, only: set[str] | None = None
              ) -> dict[str | None, list[tuple[tuple[str, str], object]]]:
        """The flows of `region` by the ENI owning their local address (None: none, so this side does not
        apply) and the entry deciding them there, as (rule, action) keys. `only`: just these ENIs, and no None."""
        s, f = self.space, FIELD_OF[direction]
        hit = [e for e in side.index(vpc, f).hits(self.project(region, f)) if only is None or e in only]
        out: dict[str | None, list] = {}
        units: dict[tuple, list[Interface]] = defaultdict(list)
        for eni_id in hit:
            eni = side.config.interfaces[eni_id]
            units[(eni_groups(side.config, eni), eni.load_balancer_backend)].append(eni)
        for (groups, lb), enis in units.items():
            unit = build_unit(side.config, side.regions, vpc, groups, lb, tuple(e.id for e in enis), direction,
                              within=region, **side.budgets)
            self.units += 1
            if unit.incomplete:
                self.incomplete.append(Incomplete(unit.groups, unit.direction, unit.enis, unit.incomplete))
            for eni in enis:
                mine = side.regions.owned(eni, f) if len(enis) > 1 else s.true
                parts = [((e.name, e.action), e.decides & mine) for e in unit.entries if e.decides is not None]
                out[eni.id] = [(k, r) for k, r in parts if r != s.false]
        if only is None:
            outside = region & ~side.owned_everywhere(vpc, f)
            if outside != s.false:
                out[None] = [(NONE, outside)]
        return out

    def side_cells(self, vpc: str, direction: str, region: object) -> tuple[dict, dict]:
        """`cells` of region under OLD and NEW; ENI sides the change does not touch are swept once."""
        old = self.cells(self.old, vpc, direction, region)
        changed = self.touched[direction] | self.moved
        new = self.cells(self.new, vpc, direction, region, only=changed)
        outside = region & ~self.new.owned_everywhere(vpc, FIELD_OF[direction])
        if outside != self.space.false:
            new[None] = [(NONE, outside)]
        for owner, cells in old.items():
            if owner is not None and owner not in changed:
                new[owner] = cells
        return old, new

    def changed_region(self, vpc: str) -> object:
        """D: every flow of the VPC decided differently (verdict, a side's rule or action)."""
        s = self.space
        out = s.false
        for direction in (EGRESS, INGRESS):
            f = FIELD_OF[direction]
            candidates = s.disj(side.own(e, vpc, f) for e in self.touched[direction] for side in (self.old, self.new))
            if candidates == s.false:
                continue
            old, new = self.side_cells(vpc, direction, candidates)
            by_key_new: dict[tuple[str, str], object] = defaultdict(lambda: s.false)
            for cells in new.values():
                for key, region in cells:
                    by_key_new[key] |= region
            for cells in old.values():
                for key, region in cells:
                    out |= region & ~by_key_new[key]
        touched = self.touched[EGRESS] | self.touched[INGRESS]
        same_old, same_new = (s.disj(side.own(e, vpc, "src") & side.own(e, vpc, "dst") for e in touched)
                              for side in (self.old, self.new))
        return (out & ~(same_old & same_new)) | (same_old & ~same_new) | (same_new & ~same_old)

    def owner_classes(self, vpc: str, fieldname: str, region: object, old_owners: Iterable, new_owners: Iterable
                      ) -> list[tuple[str | None, str | None, object]]:
        """(owner under OLD, owner under NEW, their flows of region) for every pair that shares flows."""
        s = self.space
        out = []
        new_moved = [o for o in new_owners if o is None or o in self.moved]
        for o in old_owners:
            if o is not None and o not in self.moved:
                part = region & self.old.own(o, vpc, fieldname)
                if part != s.false:
                    out.append((o, o, part))
                continue
            mine = region & self.old.own(o, vpc, fieldname)
            for n in new_moved:
                part = mine & self.new.own(n, vpc, fieldname)
                if part != s.false:
                    out.append((o, n, part))
        return out


def _outcome(src: str | None, dst: str | None, egress: tuple[str, str], ingress: tuple[str, str]
             ) -> tuple[str, str, str, str, str]:
    """(verdict, egress rule, egress action, ingress rule, ingress action) of path mode (docs/semantics.md §3)."""
    if src is None and dst is None:
        return UNMANAGED, "", "", "", ""
    if src == dst:
        return ALLOW, "", "", "", ""
    allowed = all(action == ACCEPT for _, action in (egress, ingress) if action)
    return (ALLOW if allowed else DENY, *egress, *ingress)


def _label(old: str | None, new: str | None) -> str:
    a, b = old or EXTERNAL, new or EXTERNAL
    return a if a == b else f"{a} -> {b}"


@paused_gc()  # millions of BDD handles beside a large configuration: see paused_gc
def diff_configs(old: Config, new: Config, old_name: str = "OLD", new_name: str = "NEW",
                 box_limit: int = BOX_LIMIT, node_budget: int = NODE_BUDGET,
                 time_budget_s: float = TIME_BUDGET_S) -> SpaceDiff:
    """Every flow whose path-mode verdict or deciding rule differs from OLD to NEW, grouped (docs/analysis.md (diff))."""
    start = time.perf_counter()
    d = _Differ(old, new, {"node_budget": node_budget, "time_budget_s": time_budget_s})
    s = d.space
    result = SpaceDiff(old_name, new_name)
    for kind, get in (("interfaces", lambda c: set(c.interfaces)), ("groups", lambda c: set(c.groups)),
                      ("rules", lambda c: {r.name for g in c.groups.values() for r in g.rules})):
        a, b = get(old), get(new)
        result.only_in_old[kind], result.only_in_new[kind] = sorted(a - b), sorted(b - a)
    groups: dict[tuple, object] = {}
    for vpc in sorted(set(old.vpcs) | set(new.vpcs)):
        changed = d.changed_region(vpc)
        if changed == s.false:
            continue
        cells = {direction: d.side_cells(vpc, direction, changed) for direction in (EGRESS, INGRESS)}
        (old_e, new_e), (old_i, new_i) = cells[EGRESS], cells[INGRESS]
        for so, sn, src_part in d.owner_classes(vpc, "src", changed, old_e, new_e):
            dst_owners = set(d.old.index(vpc, "dst").hits(d.project(src_part, "dst")))
            dst_new = set(d.new.index(vpc, "dst").hits(d.project(src_part, "dst")))
            for do, dn, part in d.owner_classes(vpc, "dst", src_part, [*dst_owners, None], [*dst_new, None]):
                parts = [(part, ())]
                for owner, table in ((so, old_e), (do, old_i), (sn, new_e), (dn, new_i)):
                    table_cells = table.get(owner, [])
                    parts = [(r & c, keys + (k,)) for r, keys in parts for k, c in table_cells if r & c != s.false]
                for region, (oe, oi, ne, ni) in parts:
                    key = (vpc, _label(so, sn), _label(do, dn), _outcome(so, do, oe, oi), _outcome(sn, dn, ne, ni))
                    groups[key] = groups.get(key, s.false) | region
    with_vpc = len(set(old.vpcs) | set(new.vpcs)) > 1
    result.changes = [_change(s, *key, region, box_limit, with_vpc) for key, region in groups.items()]
    result.incomplete = list(dict.fromkeys(d.incomplete))
    result.units = d.units
    result.changes.sort(key=lambda c: (KIND_ORDER.index(c.kind), -c.size, c.vpc, c.src, c.dst))
    result.seconds = time.perf_counter() - start
    result.space = s
    return result


def _change(s: Space, vpc: str, src: str, dst: str, before: tuple, after: tuple, region: object, box_limit: int,
            with_vpc: bool) -> Change:
    boxes = list(s.boxes(region, box_limit + 1))
    p = s.pick(region)
    example = {"src_ip": str(p.src), "dst_ip": str(p.dst), "protocol": protocol_name(p.protocol),
               "src_port": p.src_port, "dst_port": p.dst_port}
    if with_vpc:
        example["vpc"] = vpc
    return Change(vpc, src, dst, before[0], after[0], before[1], before[3], after[1], after[3],
                  (before[2], before[4], after[2], after[4]), s.count(region), boxes[:box_limit],
                  len(boxes) <= box_limit, example, region)


def _side_text(verdict: str, egress: str, ingress: str, actions: tuple[str, str]) -> str:
    sides = [f"{rule} ({action})" if rule else "-" for rule, action in zip((egress, ingress), actions)]
    return f"{verdict:<9} egress {sides[0]} / ingress {sides[1]}"


def format_diff(result: SpaceDiff, boxes_shown: int = 4) -> str:
    """The changes as Base/Delta blocks, opened first; what exists in one configuration only; or the proof of
    identity."""
    r = result
    lines = [f"diff of {r.old_config} -> {r.new_config} over every flow (header space, exact): "
             f"{counted(len(r.changes), 'change')} in {r.seconds:.2f}s"]
    if r.incomplete:
        units = "; ".join(f"{'+'.join(i.groups)} {i.direction} ({i.reason})" for i in r.incomplete)
        lines.append(f"ANALYSIS INCOMPLETE for {units}: flows decided there may be missing below")
    if not r.changes and not r.incomplete:
        lines.append("  identical: the two configurations decide every flow alike, by the same rules (a proof)")
    counts = {k: [c for c in r.changes if c.kind == k] for k in KIND_ORDER}
    if r.changes:
        lines.append("  " + ", ".join(f"{KIND_WORDS[k]} {len(v)} ({counted(sum(c.size for c in v), 'flow')})"
                                      for k, v in counts.items() if v))
    for n, c in enumerate(r.changes, 1):
        where = f"  [{c.vpc}]" if r.multi_vpc else ""
        lines.append(f"#{n} {c.kind}: {c.src} -> {c.dst}{where}: {counted(c.size, 'flow')}")
        lines.append(f"    Base   {_side_text(c.old_verdict, c.old_egress_rule, c.old_ingress_rule, c.actions[:2])}")
        lines.append(f"    Delta  {_side_text(c.new_verdict, c.new_egress_rule, c.new_ingress_rule, c.actions[2:])}")
        for b in c.boxes[:boxes_shown]:
            x = box_dict(b)
            ported = any(b.protocols[0] <= p <= b.protocols[1] for p in PORTED_PROTOCOLS)
            ports = f" sport {x['src_ports']} dport {x['dst_ports']}" if ported else ""
            lines.append(f"    box    {x['protocol']} {x['src']} -> {x['dst']}{ports}  ({counted(b.size, 'flow')})")
        more = len(c.boxes) - min(boxes_shown, len(c.boxes))
        if more or not c.boxes_complete:
            lines.append(f"    ... and {more:,}{'' if c.boxes_complete else '+'} more "
                         + ("box" if more == 1 and c.boxes_complete else "boxes"))
        e = c.example
        lines.append(f"    e.g.   {e['protocol']} {e['src_ip']}:{e['src_port']} -> {e['dst_ip']}:{e['dst_port']}")
    for which, items in (("OLD", r.only_in_old), ("NEW", r.only_in_new)):
        for kind, names in items.items():
            if names:
                shown = ", ".join(names[:20]) + (f" and {len(names) - 20:,} more" if len(names) > 20 else "")
                lines.append(f"only in {which} ({r.old_config if which == 'OLD' else r.new_config}): {kind} {shown}")
    return "\n".join(lines)


__all__ = ["BOX_LIMIT", "Change", "EXTERNAL", "SpaceDiff", "box_dict", "diff_configs", "format_diff"]
