"""Path mode over header space (docs/semantics.md §3): a VPC's flows as exact regions of allowed and denied flows,
composed from the units of the ENIs that own each flow's addresses. `search` asks it questions; the
header-space `diff` compares two of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..engine.reference import ALLOW, DENY
from ..model.network import EGRESS, INGRESS, Config, Interface
from .space import Point, Space
from .units import Entry, Regions, Unit, build_units


@dataclass
class VpcRegions:
    """A VPC's path-mode regions."""

    vpc: str
    owned_src: object  # flows whose source is a modelled ENI's address
    owned_dst: object
    same: object  # flows between two addresses of one ENI (never filtered)
    allow: object
    deny: object
    incomplete: list[Unit] = field(default_factory=list)  # units whose sweep did not finish: regions not exact


class PathModel:
    """A configuration's units and, per VPC, its path-mode regions."""

    def __init__(self, config: Config, space: Space | None = None, **budgets):
        self.config = config
        self.space, self.units = build_units(config, space, **budgets)
        self.regions = Regions(config, self.space)
        self.unit_of: dict[tuple[str, str], Unit] = {(e, u.direction): u for u in self.units for e in u.enis}
        self.vpcs = {vpc: self._vpc(vpc) for vpc in config.vpcs}

    def _vpc(self, vpc: str) -> VpcRegions:
        s, r = self.space, self.regions
        enis = [e for e in self.config.interfaces.values() if e.vpc == vpc]
        owned_src = s.disj(r.owned(e, "src") for e in enis)
        owned_dst = s.disj(r.owned(e, "dst") for e in enis)
        same = s.disj(r.owned(e, "src") & r.owned(e, "dst") for e in enis)
        units = [u for u in self.units if u.vpc == vpc and u.enis]
        egress = s.disj(u.allowed(s) for u in units if u.direction == EGRESS)
        ingress = s.disj(u.allowed(s) for u in units if u.direction == INGRESS)
        managed = (owned_src | owned_dst) & s.universe
        allow = same | (managed & (~owned_src | egress) & (~owned_dst | ingress))
        return VpcRegions(vpc, owned_src, owned_dst, same, allow, managed & ~allow,
                          [u for u in units if u.incomplete])

    def verdict_region(self, vpc: str, verdict: str) -> object:
        v = self.vpcs[vpc]
        if verdict == ALLOW:
            return v.allow
        if verdict == DENY:
            return v.deny
        return self.space.universe & ~(v.owned_src | v.owned_dst)

    def owner(self, vpc: str, addr) -> Interface | None:
        for eni in self.config.interfaces.values():
            if eni.vpc == vpc and eni.owns(addr):
                return eni
        return None

    def deciding(self, vpc: str, p: Point) -> tuple[Entry | None, Entry | None]:
        """The entries deciding p at its source ENI (egress) and its destination ENI (ingress)."""
        src, dst = self.owner(vpc, p.src), self.owner(vpc, p.dst)
        if src is not None and src is dst:
            return None, None
        sides = []
        for eni, direction in ((src, EGRESS), (dst, INGRESS)):
            unit = self.unit_of[(eni.id, direction)] if eni is not None else None
            sides.append(next((e for e in unit.entries if self.space.contains(e.decides, p)), None) if unit else None)
        return sides[0], sides[1]

    def cell(self, vpc: str, p: Point) -> object:
        """Every flow decided at both sides by the same entries as p (same owners' units)."""
        s, v = self.space, self.vpcs[vpc]
        egress, ingress = self.deciding(vpc, p)
        if egress is None and ingress is None and self.owner(vpc, p.src) is not None:
            return v.same
        src_part = egress.decides if egress is not None else ~v.owned_src
        dst_part = ingress.decides if ingress is not None else ~v.owned_dst
        return src_part & dst_part & ~v.same & s.universe

    def rule_region(self, vpc: str, name: str) -> object:
        """Flows (between different ENIs) that the entry `name` decides at either side."""
        s = self.space
        out = s.disj(e.decides for u in self.units if u.vpc == vpc and u.enis for e in u.entries if e.name == name)
        return out & ~self.vpcs[vpc].same
