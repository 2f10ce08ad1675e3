"""`flowsim synth`: flows aimed at a configuration, seeded and reproducible.

A pool of template flows is built from the configuration — a hit on every rule
(both actions), near misses one port and one address outside every range,
intra-group, external and unmanaged traffic, IPv4 and IPv6 — and the requested
number of flows is sampled from it with varied source ports.
"""
from __future__ import annotations

import ipaddress
import os
import random

import numpy as np

from ..io.outputs import Output, write_table
from ..model.addresses import IPAddress, IPNetwork
from ..model.network import ICMP, ICMPV6, PORTED_PROTOCOLS, TCP, UDP, Config, Interface, Rule, protocol_name

Template = tuple[str, str, int, int, int]  # src, dst, protocol, src_port (-1: random), dst_port


def _pick(rng: random.Random, net: IPNetwork) -> IPAddress:
    span = net.num_addresses
    return net.network_address + (rng.randrange(span) if span > 1 else 0)


def _outside(net: IPNetwork) -> list[IPAddress]:
    """The addresses just below and just above a block, where they exist."""
    out = []
    first, last = int(net.network_address), int(net.broadcast_address)
    top = (1 << (32 if net.version == 4 else 128)) - 1
    make = ipaddress.IPv4Address if net.version == 4 else ipaddress.IPv6Address
    if first > 0:
        out.append(make(first - 1))
    if last < top:
        out.append(make(last + 1))
    return out


def _addresses(eni: Interface, version: int) -> list[IPAddress]:
    plain = list(eni.ips) if version == 4 else list(eni.ipv6)
    prefixes = eni.ipv4_prefixes if version == 4 else eni.ipv6_prefixes
    return plain + [p.network_address + (1 if p.num_addresses > 1 else 0) for p in prefixes]


def _peer_candidates(config: Config, rule: Rule, rng: random.Random) -> list[tuple[IPAddress, bool]]:
    """(address, inside) pairs for the rule's peer: inside hits and just-outside misses."""
    if rule.peer.kind == "group":
        return [(a, True) for e in config.members(rule.peer.ref) for v in (4, 6) for a in _addresses(e, v)[:2]][:8]
    nets = [rule.peer.cidr] if rule.peer.kind == "cidr" else list(config.prefix_lists[rule.peer.ref].entries)
    out = []
    for net in nets[:8]:
        out.append((_pick(rng, net), True))
        out.append((net.network_address, True))
        out.append((net.broadcast_address, True))
        out.extend((a, False) for a in _outside(net))
    return out


def _ports(config: Config, rule: Rule) -> list[int]:
    """Destination ports at and just beside the edges of each range the rule matches (a port list's first eight)."""
    return sorted({p for lo, hi in config.destination_ports(rule)[:8]
                   for p in (lo - 1, lo, (lo + hi) // 2, hi, hi + 1) if 0 <= p <= 65535})


def _protocols(rule: Rule) -> list[int]:
    return [TCP, UDP, ICMP, ICMPV6] if rule.protocol < 0 else [rule.protocol]


def build_templates(config: Config, seed: int = 0) -> list[Template]:
    """Every kind of flow worth testing against the configuration."""
    rng = random.Random(seed)
    templates: list[Template] = []
    enis = list(config.interfaces.values())
    for group in config.groups.values():
        members = config.members(group.id)
        if not members:
            continue
        for rule in group.rules:
            for peer, _inside in _peer_candidates(config, rule, rng):
                eni = rng.choice(members)
                local = _addresses(eni, peer.version)
                if not local:
                    continue
                me = rng.choice(local)
                for proto in _protocols(rule):
                    for port in (_ports(config, rule) if proto in PORTED_PROTOCOLS else [0]):
                        pair = (str(peer), str(me)) if rule.direction == "ingress" else (str(me), str(peer))
                        templates.append((*pair, proto, -1, port))
        for a, b in zip(members, members[1:] + members[:1]):  # intra-group
            for version in (4, 6):
                if a is not b and _addresses(a, version) and _addresses(b, version):
                    templates.append((str(_addresses(a, version)[0]), str(_addresses(b, version)[0]), TCP, -1, 22))
    for eni in enis:  # load-balancer health checks (docs/semantics.md §2), just inside and just outside 100.64.0.0/10
        for src in ("100.64.0.1", "100.127.255.254", "100.63.255.255") if eni.load_balancer_backend else ():
            templates.extend((src, str(me), TCP, -1, 80) for me in _addresses(eni, 4)[:1])
    for eni in enis:  # external traffic in both directions, and unmanaged traffic
        for version, outside in ((4, "203.0.113.77"), (6, "2001:db8:ffff::77")):
            for me in _addresses(eni, version)[:1]:
                templates.append((outside, str(me), TCP, -1, 443))
                templates.append((str(me), outside, UDP, -1, 53))
                templates.append((outside, str(me), ICMP if version == 4 else ICMPV6, 0, 0))
    templates.append(("192.0.2.1", "192.0.2.2", TCP, -1, 80))
    templates.append(("2001:db8:eeee::1", "2001:db8:eeee::2", UDP, -1, 53))
    return templates


def synthesize(config: Config, n: int, seed: int = 0):
    """`n` flows sampled from the templates, as a pyarrow table."""
    import pyarrow as pa

    templates = build_templates(config, seed)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(templates), size=n)
    src, dst, proto, sport, dport = zip(*templates)
    addresses = sorted(set(src) | set(dst))
    index = {a: i for i, a in enumerate(addresses)}
    dictionary = pa.array(addresses, type=pa.string())
    src_i = np.array([index[a] for a in src], dtype=np.int32)[pick]
    dst_i = np.array([index[a] for a in dst], dtype=np.int32)[pick]
    proto_a = np.array(proto, dtype=np.int16)[pick]
    ported = np.isin(proto_a, list(PORTED_PROTOCOLS))
    sport_a = np.where(ported, rng.integers(1024, 65536, size=n), 0).astype(np.int32)
    dport_a = np.array(dport, dtype=np.int32)[pick]
    names = pa.array([protocol_name(p) for p in range(256)], type=pa.string())
    return pa.table({
        "src_ip": pa.DictionaryArray.from_arrays(pa.array(src_i), dictionary).cast(pa.string()),
        "dst_ip": pa.DictionaryArray.from_arrays(pa.array(dst_i), dictionary).cast(pa.string()),
        "protocol": pa.DictionaryArray.from_arrays(pa.array(proto_a.astype(np.int32)), names).cast(pa.string()),
        "src_port": pa.array(sport_a),
        "dst_port": pa.array(dport_a),
    })


def write_synthetic_flows(config: Config, n: int, output: str | os.PathLike | Output, seed: int = 0) -> None:
    """Write `n` synthetic flows to Parquet or CSV (by the target's suffix; CSV for standard output)."""
    write_table(synthesize(config, n, seed), output)
