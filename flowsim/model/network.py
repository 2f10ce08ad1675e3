"""The configuration model: immutable, typed groups, rules, prefix lists and ENIs.

Values here are already normalised (protocol numbers, port ranges, network
objects); `flowsim.config.loader` turns a user's file into these objects and
`flowsim.config.validate` checks the rules the cloud itself enforces.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..errors import InputError, Problem
from ..kernels.codes import ICMP, ICMPV6, PORTED, TCP, UDP
from .addresses import IPAddress, IPNetwork
from .codes import DefaultRule

ALL_PROTOCOLS = -1
GRE = 47
PROTOCOL_NAMES = {"tcp": TCP, "udp": UDP, "icmp": ICMP, "icmpv6": ICMPV6, "gre": GRE, "all": ALL_PROTOCOLS}
PORTED_PROTOCOLS = frozenset(PORTED)
ANY_PORT = (0, 65535)

INGRESS, EGRESS = "ingress", "egress"
DIRECTIONS = {"ingress": INGRESS, "in": INGRESS, "inbound": INGRESS, "egress": EGRESS, "out": EGRESS, "outbound": EGRESS}
ACCEPT, DROP = "accept", "drop"
BASIC, ADVANCED = "basic", "advanced"

DEFAULT_INTRA_GROUP_ALLOW = DefaultRule.INTRA_GROUP_ALLOW.rule_name
DEFAULT_INBOUND_DENY = DefaultRule.INBOUND_DENY.rule_name
DEFAULT_OUTBOUND_ALLOW = DefaultRule.OUTBOUND_ALLOW.rule_name
DEFAULT_OUTBOUND_DENY = DefaultRule.OUTBOUND_DENY.rule_name
DEFAULT_HEALTH_CHECK_ALLOW = DefaultRule.HEALTH_CHECK_ALLOW.rule_name
#: Where load-balancer health checks come from (docs/semantics.md §2, platform allowances).
HEALTH_CHECK_NETWORK = ipaddress.IPv4Network("100.64.0.0/10")
#: The priority of rules the cloud created itself in older accounts (docs/semantics.md §1); it sorts after 1..100.
LEGACY_PRIORITY = 110
MAX_PORT_LIST_ENTRIES = 2000  # the cloud's bound on a port list's max_entries


# Flows may also name protocols no rule can (rules use PROTOCOL_NAMES or numbers).
FLOW_PROTOCOL_NAMES = {**{k: v for k, v in PROTOCOL_NAMES.items() if v >= 0}, "icmp6": ICMPV6, "ipv6-icmp": ICMPV6,
                       "igmp": 2, "esp": 50, "ah": 51, "sctp": 132}


def flow_protocol_number(text: str) -> int | None:
    """A flow's protocol: a name (any case) or a number 0..255; None when it is neither."""
    low = text.strip().lower()
    if low in FLOW_PROTOCOL_NAMES:
        return FLOW_PROTOCOL_NAMES[low]
    return int(low) if low.isascii() and low.isdigit() and int(low) <= 255 else None


def protocol_name(number: int) -> str:
    """Readable name of a protocol number (`all` for the wildcard)."""
    for name, value in PROTOCOL_NAMES.items():
        if value == number:
            return name
    return str(number)


def format_ports(ports: tuple[int, int]) -> str:
    """`lo/hi` as the cloud writes port ranges; `-1/-1` for any port."""
    return "-1/-1" if ports == ANY_PORT else f"{ports[0]}/{ports[1]}"


@dataclass(frozen=True)
class Peer:
    """The other side of a rule: exactly one of a CIDR, a group id or a prefix-list id."""

    kind: str  # "cidr" | "group" | "prefix_list"
    cidr: IPNetwork | None = None
    ref: str = ""

    def __str__(self) -> str:
        return str(self.cidr) if self.kind == "cidr" else self.ref


@dataclass(frozen=True)
class Rule:
    """One custom rule of a group, with its position for ordering and naming."""

    group: str
    position: int  # 1-based position in the group's rule list
    id: str
    direction: str
    action: str
    priority: int
    protocol: int
    ports: tuple[int, int]
    source_ports: tuple[int, int]
    peer: Peer
    local: IPNetwork | None = None
    description: str = ""
    line: int | None = None
    port_list: str = ""  # a port list id instead of `ports` ("" when the rule uses `ports`)
    legacy: bool = False  # imported from the cloud with the legacy priority 110

    @property
    def name(self) -> str:
        """`GROUP/RULE` as every output names it."""
        return f"{self.group}/{self.id}"

    @classmethod
    def of(cls, **fields) -> Rule:
        """The rule with every one of its fields given, built without the frozen dataclass's `__init__`, which sets
        each field through `object.__setattr__`: that took 4.2 µs of the 9.6 µs a loader spent on a rule of a large
        file, this 1.1 µs. The instance is the same (same fields, equal, same hash)."""
        if len(fields) != len(RULE_FIELDS):
            raise TypeError(f"Rule.of needs every field: {sorted(set(RULE_FIELDS) - set(fields))} missing")
        rule = object.__new__(cls)
        rule.__dict__.update(fields)
        return rule


RULE_FIELDS = tuple(Rule.__dataclass_fields__)


@dataclass(frozen=True)
class Group:
    """A security group: basic (`normal`) or advanced (`enterprise`)."""

    id: str
    type: str
    vpc: str
    internal_policy: str
    rules: tuple[Rule, ...]
    order: int  # position under `security_groups`, which breaks priority ties
    line: int | None = None


@dataclass(frozen=True)
class PrefixList:
    """A named list of CIDR blocks usable as a rule peer."""

    id: str
    entries: tuple[IPNetwork, ...]
    max_entries: int
    line: int | None = None


@dataclass(frozen=True)
class PortList:
    """A named list of destination port ranges usable instead of a rule's `ports`."""

    id: str
    entries: tuple[tuple[int, int], ...]
    max_entries: int
    line: int | None = None


@dataclass(frozen=True)
class Interface:
    """An ENI: its VPC, groups and every private address it owns."""

    id: str
    vpc: str
    security_groups: tuple[str, ...]
    ips: tuple[ipaddress.IPv4Address, ...] = ()
    ipv6: tuple[ipaddress.IPv6Address, ...] = ()
    ipv4_prefixes: tuple[ipaddress.IPv4Network, ...] = ()
    ipv6_prefixes: tuple[ipaddress.IPv6Network, ...] = ()
    instance: str = ""
    line: int | None = None
    load_balancer_backend: bool = False  # health checks from HEALTH_CHECK_NETWORK pass before every rule

    def owned_networks(self) -> list[IPNetwork]:
        """Every address and prefix of the ENI as networks (single addresses as /32 or /128)."""
        nets: list[IPNetwork] = [ipaddress.ip_network(a) for a in (*self.ips, *self.ipv6)]
        return nets + [*self.ipv4_prefixes, *self.ipv6_prefixes]

    def address_count(self) -> int:
        """Private addresses as a basic group's capacity counts them (a prefix counts 1)."""
        return len(self.ips) + len(self.ipv6) + len(self.ipv4_prefixes) + len(self.ipv6_prefixes)

    def owns(self, addr: IPAddress) -> bool:
        """Whether `addr` is one of the ENI's private addresses or inside one of its prefixes."""
        return any(addr.version == net.version and addr in net for net in self.owned_networks())


@dataclass(frozen=True)
class Limits:
    """Quotas the cloud enforces (docs/semantics.md §6); accounts can raise them."""

    groups_per_eni: int = 10
    rules_per_eni: int = 1000
    group_rules_per_group: int = 20
    addresses_per_basic_group: int = 6000
    enis_per_advanced_group: int = 65536
    entries_per_prefix_list: int = 200


@dataclass(frozen=True)
class Config:
    """A whole network: groups in file order, prefix lists, ENIs and limits."""

    groups: dict[str, Group]
    prefix_lists: dict[str, PrefixList]
    interfaces: dict[str, Interface]
    limits: Limits = field(default_factory=Limits)
    source: str = ""
    warnings: tuple[str, ...] = ()
    port_lists: dict[str, PortList] = field(default_factory=dict)

    @property
    def vpcs(self) -> list[str]:
        """Every VPC named by a group or an ENI, sorted."""
        return sorted({g.vpc for g in self.groups.values()} | {e.vpc for e in self.interfaces.values()})

    @property
    def rule_count(self) -> int:
        """Custom rules over all groups."""
        return sum(len(g.rules) for g in self.groups.values())

    def rule_order_key(self, rule: Rule) -> tuple[int, int, int, int]:
        """Evaluation order: priority, drop before accept, the group's place in the file, the rule's place in it."""
        return rule.priority, 0 if rule.action == DROP else 1, self.groups[rule.group].order, rule.position

    def destination_ports(self, rule: Rule) -> tuple[tuple[int, int], ...]:
        """The destination port ranges a rule matches: its port list's entries, or its one `ports` range."""
        return self.port_lists[rule.port_list].entries if rule.port_list else (rule.ports,)

    def evaluation_order(self) -> tuple[Rule, ...]:
        """Every custom rule in global evaluation order (compiled rule code = default rules + position)."""
        return tuple(sorted((r for g in self.groups.values() for r in g.rules), key=self.rule_order_key))

    def members(self, group_id: str) -> list[Interface]:
        """ENIs that carry the group."""
        return [e for e in self.interfaces.values() if group_id in e.security_groups]


FLOW_FIELDS = ("src", "dst", "protocol", "src_port", "dst_port", "vpc", "eni", "direction")


@dataclass(frozen=True)
class Flow:
    """One flow: path mode, or endpoint mode when `eni` and `direction` are given."""

    src: IPAddress
    dst: IPAddress
    protocol: int
    src_port: int = 0
    dst_port: int = 0
    vpc: str | None = None
    eni: str | None = None
    direction: str | None = None  # "ingress" | "egress" in endpoint mode

    @classmethod
    def parse(cls, src: object, dst: object, protocol: object, src_port: object = None, dst_port: object = None,
              vpc: str | None = None, eni: str | None = None, direction: str | None = None,
              labels: dict[str, str] | None = None) -> Flow:
        """A flow from the values a person writes (address text, a protocol name or number, port numbers),
        checked as a flow table's row is; every problem is raised at once as an InputError naming its field
        (`labels` renames fields, so that the command line can name its flags)."""
        label = {name: (labels or {}).get(name, name) for name in FLOW_FIELDS}
        problems: list[Problem] = []

        def address(field: str, value: object) -> IPAddress | None:
            text = str(value).strip()
            try:
                if "%" in text or not text.isascii():  # a scoped or non-ASCII address is no flow's address
                    raise ValueError
                return ipaddress.ip_address(text)
            except ValueError:
                problems.append(Problem(f"{text[:80]!r} is not an IPv4 or IPv6 address", subject=label[field]))
                return None

        def port(field: str, value: object) -> int | None:
            if value is None or value == "":
                return None
            text = str(value).strip()
            if isinstance(value, bool) or not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= 65535:
                problems.append(Problem(f"{text[:80]!r} is not a port (0..65535)", subject=label[field]))
                return None
            return int(text)

        source, destination = address("src", src), address("dst", dst)
        number = None if isinstance(protocol, bool) else flow_protocol_number(str(protocol))
        if number is None:
            what = "a flow has one protocol; 'all' is for rules" if str(protocol).strip().lower() in ("all", "-1") \
                else f"unknown protocol {str(protocol)[:80]!r}"
            problems.append(Problem(what, subject=label["protocol"]))
        sport, dport = port("src_port", src_port), port("dst_port", dst_port)
        ported = number in PORTED_PROTOCOLS
        if ported and dport is None and not any(p.subject == label["dst_port"] for p in problems):
            problems.append(Problem("a tcp or udp flow needs a destination port", subject=label["dst_port"]))
        if source is not None and destination is not None and source.version != destination.version:
            problems.append(Problem("source and destination are of different IP versions",
                                    subject=f"{label['src']}/{label['dst']}"))
        side = None
        if eni is not None:
            if direction is None:
                problems.append(Problem(f"endpoint mode needs {label['direction']} in|out", subject=label["eni"]))
            elif str(direction).strip().lower() not in DIRECTIONS:
                problems.append(Problem(f"{str(direction)[:40]!r} is not in, out, ingress or egress",
                                        subject=label["direction"]))
            else:
                side = DIRECTIONS[str(direction).strip().lower()]
        elif direction is not None:
            problems.append(Problem(f"{label['direction']} needs {label['eni']} (endpoint mode)",
                                    subject=label["direction"]))
        if problems:
            raise InputError(problems)
        return cls(source, destination, number, (sport or 0) if ported else 0, (dport or 0) if ported else 0,
                   vpc=vpc, eni=eni, direction=side)
