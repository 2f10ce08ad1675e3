"""Random valid configurations, for differential tests and benchmarks.

Addresses are drawn from small pools so that rules, peers and ENIs overlap
often: the interesting cases are the ones where several rules match.
"""
from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """How big and how varied a random configuration is."""

    vpcs: int = 1
    groups: int = 4
    rules_per_group: int = 6
    enis: int = 8
    groups_per_eni: int = 2
    advanced_share: float = 0.25
    ipv6_share: float = 0.3
    group_peer_share: float = 0.15
    prefix_list_share: float = 0.1
    quintuple_share: float = 0.15
    priorities: int = 5
    prefix_share: float = 0.3  # ENIs with assigned IPv4 prefixes, and (separately) with IPv6 prefixes
    near_share: float = 0.5  # rule and prefix-list CIDRs drawn around an owned address rather than at random
    # features off by default (0 draws no random numbers, so other shapes give the configurations they always gave)
    port_list_share: float = 0.0  # of tcp/udp rules: name a port list instead of ports
    legacy_share: float = 0.0  # of rules: the cloud's legacy priority 110, marked legacy
    lb_backend_share: float = 0.0  # of ENIs: load_balancer_backend; some also own an address in 100.64.0.0/10
    port_list_entries: int = 6  # at most this many ranges per port list


_PROTOCOLS = ["tcp", "udp", "icmp", "icmpv6", "gre", "all", 132]
_V6_PREFIX_LENGTHS = [56, 60, 64, 72, 80, 96, 112, 120]


def _v4(rng: random.Random) -> str:
    length = rng.choice([0, 8, 16, 24, 26, 28, 30, 32])
    addr = f"10.{rng.randrange(3)}.{rng.randrange(4)}.{rng.randrange(256)}" if rng.random() < 0.8 else \
        f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
    return f"{addr}/{length}"


def _v6(rng: random.Random) -> str:
    length = rng.choice([0, 32, 48, 64, 120, 128])
    return f"2001:db8:{rng.randrange(3):x}::{rng.randrange(1, 4096):x}/{length}"


def _ports(rng: random.Random) -> str:
    lo = rng.choice([1, 20, 22, 80, 443, 1000, 8000, 65535])
    hi = min(65535, lo + rng.choice([0, 0, 1, 10, 1000, 65535]))
    return f"{lo}/{hi}"


def eni_addresses(k: int, rng: random.Random, shape: Shape) -> dict[str, list[str]]:
    """Every address kind for the k-th ENI of a VPC, disjoint from every other k: primary and secondary
    IPv4, IPv4 prefixes inside 10.(100 + k/256).(k%256).0/24, IPv6 addresses and prefixes of /56 to /120
    inside 2001:db8:k::/48. About one ENI in ten owns prefixes only."""
    host = f"{k // 250 % 256}.{k % 250 + 1}"
    out: dict[str, list[str]] = {}
    prefix_only = rng.random() < 0.1
    if not prefix_only:
        out["ips"] = [f"10.0.{host}"] + [f"10.{1 + j}.{host}" for j in range(rng.choice([0, 0, 1, 2]))]
    if rng.random() < shape.prefix_share or prefix_only:
        base = f"10.{100 + k // 256 % 100}.{k % 256}"
        out["ipv4_prefixes"] = [f"{base}.0/{rng.randint(25, 32)}"] + \
            ([f"{base}.128/{rng.randint(26, 32)}"] if rng.random() < 0.5 else [])
    if rng.random() < shape.ipv6_share and not prefix_only:
        out["ipv6"] = [f"2001:db8:{k:x}::{j + 1:x}" for j in range(rng.randint(1, 2))]
    if rng.random() < shape.prefix_share or prefix_only:
        out["ipv6_prefixes"] = [f"2001:db8:{k:x}:{j + 1:x}00::/{rng.choice(_V6_PREFIX_LENGTHS)}"
                                for j in range(rng.randint(1, 3))]
    return out


def _near(rng: random.Random, anchors: list[str], version: int) -> str:
    """A CIDR of random length that contains an owned address or prefix of the family (or touches it)."""
    pool = [a for a in anchors if (":" in a) == (version == 6)]
    if not pool:
        return _v6(rng) if version == 6 else _v4(rng)
    net = ipaddress.ip_network(rng.choice(pool), strict=False)
    point = net.network_address + rng.randrange(net.num_addresses) if rng.random() < 0.7 else net.network_address
    length = rng.randint(max(0, net.prefixlen - 24), net.max_prefixlen)
    return str(ipaddress.ip_network(f"{point}/{length}", strict=False))


def random_config(seed: int, shape: Shape = Shape()) -> dict:
    """A configuration mapping (docs/formats.md (configuration)) that passes validation.

    Several VPCs reuse one address plan, so that flows need their `vpc` to be resolved."""
    rng = random.Random(seed)
    vpcs = [f"vpc-{i}" for i in range(shape.vpcs)]
    plans = [eni_addresses(e // len(vpcs), rng, shape) for e in range(shape.enis)]
    anchors = [a for plan in plans for items in plan.values() for a in items]

    def cidr(version: int) -> str:
        if rng.random() < shape.near_share:
            return _near(rng, anchors, version)
        return _v6(rng) if version == 6 else _v4(rng)

    def family() -> int:
        return 6 if rng.random() < shape.ipv6_share else 4

    prefix_lists = {f"pl-{i}": [cidr(family()) for _ in range(rng.randint(1, 4))]
                    for i in range(max(1, shape.groups // 3))}
    port_lists = _port_lists(rng, shape) if shape.port_list_share else {}
    groups: dict[str, dict] = {}
    for g in range(shape.groups):
        advanced = rng.random() < shape.advanced_share
        groups[f"sg-{g}"] = {"type": "advanced" if advanced else "basic", "vpc": vpcs[g % len(vpcs)],
                             "internal_policy": "drop" if advanced or rng.random() < 0.4 else "accept", "rules": []}
    for gid, group in groups.items():
        basic_peers = [o for o, og in groups.items() if o != gid and og["type"] == "basic" and og["vpc"] == group["vpc"]]
        for r in range(shape.rules_per_group):
            rule: dict = {"direction": rng.choice(["ingress", "egress"]), "action": rng.choice(["accept", "drop"]),
                          "priority": rng.randint(1, shape.priorities)}
            proto = rng.choice(_PROTOCOLS)
            rule["protocol"] = proto
            if proto in ("tcp", "udp") and port_lists and rng.random() < shape.port_list_share:
                rule["port_list"] = rng.choice(list(port_lists))
            elif proto in ("tcp", "udp") and rng.random() < 0.8:
                rule["ports"] = _ports(rng)
            if shape.legacy_share and rng.random() < shape.legacy_share:
                rule["priority"], rule["legacy"] = 110, True
            roll = rng.random()
            if group["type"] == "basic" and basic_peers and roll < shape.group_peer_share:
                rule["peer"] = rng.choice(basic_peers)
            elif roll < shape.group_peer_share + shape.prefix_list_share:
                rule["peer"] = rng.choice(list(prefix_lists))
            else:
                rule["peer"] = cidr(family())
            if rng.random() < shape.quintuple_share:
                if proto in ("tcp", "udp"):
                    rule["source_ports"] = _ports(rng)
                if rng.random() < 0.5:
                    rule["local"] = cidr(family())
            if rng.random() < 0.5:
                rule["id"] = f"r{r}"
            group["rules"].append(rule)
    interfaces = {}
    for e, plan in enumerate(plans):
        vpc = vpcs[e % len(vpcs)]
        in_vpc = [gid for gid, g in groups.items() if g["vpc"] == vpc]
        kind = rng.choice(sorted({groups[g]["type"] for g in in_vpc})) if in_vpc else "basic"
        pool = [g for g in in_vpc if groups[g]["type"] == kind]
        if not pool:
            continue
        chosen = rng.sample(pool, min(len(pool), rng.randint(1, shape.groups_per_eni)))
        eni: dict = {"vpc": vpc, "security_groups": chosen, **plan}
        if shape.lb_backend_share and rng.random() < shape.lb_backend_share:
            eni["load_balancer_backend"] = True
        if shape.lb_backend_share and rng.random() < 0.3:  # a sender inside the health-check network
            eni["ips"] = eni.get("ips", []) + [f"100.64.{e // 250 % 256}.{e % 250 + 1}"]
        interfaces[f"eni-{e}"] = eni
    return {"security_groups": groups, "prefix_lists": prefix_lists, "interfaces": interfaces,
            "limits": {"rules_per_eni": 100_000, "groups_per_eni": 100, "group_rules_per_group": 100_000,
                       "addresses_per_basic_group": 10**9}, **({"port_lists": port_lists} if port_lists else {})}


def _port_lists(rng: random.Random, shape: Shape) -> dict[str, dict]:
    """A few port lists of one to `port_list_entries` ranges (some of them overlapping), max_entries at or above."""
    lists = {}
    for i in range(max(1, shape.groups // 3)):
        entries = sorted({_ports(rng) for _ in range(rng.randint(1, shape.port_list_entries))})
        lists[f"prl-{i}"] = {"entries": entries, "max_entries": len(entries) + rng.randrange(3)}
    return lists


def _feature_values(config: dict) -> tuple[list[str], list[int]]:
    """Sources in and around 100.64.0.0/10 when an ENI is a load-balancer backend, and destination ports at
    the edges of every port-list entry; both empty (no extra draws) when the configuration has neither."""
    sources = []
    if any(e.get("load_balancer_backend") for e in config["interfaces"].values()):
        sources = ["100.64.0.0", "100.64.0.1", "100.100.0.1", "100.127.255.255", "100.63.255.255", "100.128.0.0"]
    ports = sorted({p for pl in config.get("port_lists", {}).values() for entry in pl["entries"]
                    for edge in map(int, str(entry).replace("-", "/").split("/")) for p in (edge - 1, edge, edge + 1)
                    if 0 <= p <= 65535})
    return sources, ports


def _points_in(net: ipaddress.IPv4Network | ipaddress.IPv6Network, rng: random.Random) -> list[str]:
    """A block's first and last address, one inside at random, and the two just outside it."""
    first, last = int(net.network_address), int(net.broadcast_address)
    top = (1 << net.max_prefixlen) - 1
    make = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    values = {first, last, rng.randint(first, last), max(0, first - 1), min(top, last + 1)}
    return [str(make(v)) for v in sorted(values)]


def random_flows(config: dict, n: int, seed: int) -> dict[str, list]:
    """Flow columns mixing owned addresses (points inside, at the edges of and just outside every owned
    prefix), rule-boundary addresses and outsiders; with a `vpc` column when the configuration has
    several VPCs."""
    rng = random.Random(seed)
    enis = config["interfaces"].values()
    owned = [a for e in enis for a in e.get("ips", []) + e.get("ipv6", [])]
    owned += [p for e in enis for net in e.get("ipv4_prefixes", []) + e.get("ipv6_prefixes", [])
              for p in _points_in(ipaddress.ip_network(net), rng)]
    cidrs = [r["peer"] for g in config["security_groups"].values() for r in g["rules"] if "/" in str(r["peer"])]
    cidrs += [r["local"] for g in config["security_groups"].values() for r in g["rules"] if "local" in r]
    cidrs += [c for entries in config.get("prefix_lists", {}).values() for c in entries]
    edges = [p for c in rng.sample(cidrs, min(len(cidrs), 40)) for p in _points_in(ipaddress.ip_network(c, strict=False), rng)]
    outsiders = ["10.0.0.0", "10.255.255.255", "0.0.0.0", "255.255.255.255", "8.8.8.8", "10.1.2.3",
                 "2001:db8::", "2001:db8:1::1", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8:2::fff",
                 *edges]
    extra_sources, extra_ports = _feature_values(config)
    vpcs = sorted({e.get("vpc", "default") for e in enis} | {g.get("vpc", "default") for g in config["security_groups"].values()})
    cols: dict[str, list] = {"src_ip": [], "dst_ip": [], "protocol": [], "src_port": [], "dst_port": []}
    if len(vpcs) > 1:
        cols["vpc"] = []
    protos = ["tcp", "udp", "icmp", "icmpv6", "gre", "132", "6", "17"]
    by_family = {fam: [a for a in owned + outsiders if (":" in a) == fam] for fam in (False, True)}
    for _ in range(n):
        if extra_sources and rng.random() < 0.05:  # health checks, and senders just outside their network
            src = rng.choice(extra_sources)
        else:
            src = rng.choice(owned if owned and rng.random() < 0.7 else outsiders)
        dst = rng.choice(by_family[":" in src])
        proto = rng.choice(protos)
        cols["src_ip"].append(src)
        cols["dst_ip"].append(dst)
        cols["protocol"].append(proto)
        cols["src_port"].append(rng.choice([0, 1, 1023, 1024, 20000, 65535]))
        cols["dst_port"].append(rng.choice([0, 1, 21, 22, 23, 79, 80, 443, 444, 1000, 1010, 8000, 65534, 65535] + extra_ports))
        if "vpc" in cols:
            cols["vpc"].append(rng.choice(vpcs))
    return cols
