"""Boundary cases of the compiled engine, each checked flow by flow against the reference evaluator."""
from __future__ import annotations

import itertools

import pytest
from test_differential import assert_same

import flowsim
from flowsim.engine.compiler import LONG_LIST, compile_tables

EDGE_V4 = ["0.0.0.0", "0.0.0.1", "9.255.255.255", "10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.255", "10.0.1.0",
           "10.255.255.255", "11.0.0.0", "255.255.255.254", "255.255.255.255"]
EDGE_V6 = ["::", "::1", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::", "2001:db8::1", "2001:db8::2",
           "2001:db8:0:ffff:ffff:ffff:ffff:ffff", "2001:db8:1::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
PORTS = [0, 1, 2, 79, 80, 81, 65534, 65535]


def flows_between(addresses: list[str], protocols=("tcp", "udp", "icmp", "icmpv6", "47")) -> dict[str, list]:
    cols: dict[str, list] = {"src_ip": [], "dst_ip": [], "protocol": [], "src_port": [], "dst_port": []}
    pairs = [(a, b) for a, b in itertools.permutations(addresses, 2) if (":" in a) == (":" in b)]
    for (src, dst), proto in itertools.product(pairs, protocols):
        for sport, dport in ((1, 80), (65535, 1), (0, 65535), (80, 81)):
            cols["src_ip"].append(src)
            cols["dst_ip"].append(dst)
            cols["protocol"].append(proto)
            cols["src_port"].append(sport)
            cols["dst_port"].append(dport)
    return cols


def rule(direction, peer, protocol="tcp", ports=None, action="accept", priority=1, **extra) -> dict:
    out = {"direction": direction, "peer": peer, "protocol": protocol, "action": action, "priority": priority, **extra}
    if ports is not None:
        out["ports"] = ports
    return out


def config(rules_a: list[dict], rules_b: list[dict] | None = None, **eni_a) -> dict:
    return {
        "security_groups": {"sg-a": {"rules": rules_a}, "sg-b": {"internal_policy": "drop", "rules": rules_b or []}},
        "interfaces": {
            "eni-a": {"security_groups": ["sg-a"], "ips": ["10.0.0.1", "10.0.0.2"], "ipv6": ["2001:db8::1"], **eni_a},
            "eni-b": {"security_groups": ["sg-b"], "ips": ["10.0.1.0"], "ipv6": ["2001:db8:1::"]},
        },
    }


@pytest.mark.parametrize("ports", ["1", "65535", "1/65535", "80/80", "79-81", "1/1", "65535/65535"])
def test_port_boundaries(ports):
    mapping = config([rule("ingress", "0.0.0.0/0", "tcp", ports), rule("ingress", "::/0", "udp", ports)],
                     [rule("egress", "0.0.0.0/0", "tcp", ports, action="drop", source_ports=ports)])
    cols = {"src_ip": [], "dst_ip": [], "protocol": [], "src_port": [], "dst_port": []}
    for src, dst in (("10.0.1.0", "10.0.0.1"), ("2001:db8:1::", "2001:db8::1"), ("8.8.8.8", "10.0.0.2")):
        for proto, sport, dport in itertools.product(("tcp", "udp"), PORTS, PORTS):
            for k, v in zip(cols, (src, dst, proto, sport, dport)):
                cols[k].append(v)
    assert_same(mapping, cols)


@pytest.mark.parametrize("peer", ["0.0.0.0/0", "10.0.0.0/32", "10.0.0.255/32", "255.255.255.255/32", "0.0.0.0/32",
                                  "10.0.0.0/24", "10.0.0.0/8", "::/0", "::/128", "2001:db8::/128",
                                  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "2001:db8::/64", "2001:db8::/32"])
def test_prefix_boundaries_and_extreme_addresses(peer):
    mapping = config([rule("ingress", peer, "all"), rule("egress", peer, "all", action="drop")],
                     [rule("ingress", peer, "all", action="drop", priority=2), rule("egress", peer, "all")])
    assert_same(mapping, flows_between(EDGE_V4 + EDGE_V6 + ["10.0.1.0", "2001:db8:1::"]))


def test_local_boundaries():
    mapping = config([rule("ingress", "0.0.0.0/0", "all", local="10.0.0.2/32"),
                      rule("egress", "::/0", "all", action="drop", local="2001:db8::1/128")])
    assert_same(mapping, flows_between(EDGE_V4[:8] + EDGE_V6[:6]))


def test_empty_rule_sets():
    assert_same(config([], []), flows_between(["10.0.0.1", "10.0.1.0", "8.8.8.8", "2001:db8::1", "2001:db8:1::"]))


def test_eni_with_ten_groups():
    groups = {f"sg-{k}": {"internal_policy": "drop" if k % 3 else "accept",
                          "rules": [rule("ingress", f"10.0.{k}.0/24", "tcp", f"{k + 1}/{k + 100}", priority=k + 1),
                                    rule("egress", f"10.0.{k}.0/24", "udp", action="drop", priority=10 - k)]}
              for k in range(10)}
    mapping = {"security_groups": groups,
               "interfaces": {"eni-big": {"security_groups": list(groups), "ips": ["10.0.0.5"]},
                              **{f"eni-{k}": {"security_groups": [f"sg-{k}"], "ips": [f"10.0.{k}.9"]} for k in range(10)}}}
    addresses = ["10.0.0.5"] + [f"10.0.{k}.9" for k in range(10)] + ["10.0.5.200", "192.0.2.1"]
    assert_same(mapping, flows_between(addresses, protocols=("tcp", "udp")))


def test_thousand_rules_per_eni():
    rules = [rule("ingress" if k % 2 else "egress", f"10.{k % 4}.{k % 256}.0/24", ("tcp", "udp", "all")[k % 3],
                  None if k % 3 == 2 else f"{k % 1000 + 1}/{k % 1000 + 50}", ("accept", "drop")[k % 5 == 0],
                  priority=k % 100 + 1) for k in range(1000)]
    mapping = config(rules[:500], rules[500:])
    mapping["interfaces"]["eni-a"]["security_groups"] = ["sg-a", "sg-b"]
    mapping["security_groups"]["sg-b"]["internal_policy"] = "accept"
    addresses = ["10.0.0.1", "10.0.1.0", "10.1.7.9", "10.2.200.3", "10.3.255.1", "8.8.8.8"]
    cols = flows_between(addresses, protocols=("tcp", "udp"))
    for k in range(len(cols["dst_port"])):
        cols["dst_port"][k] = (k * 37) % 1100
    assert_same(mapping, cols)


def test_long_list_behind_a_classifier():
    # a list longer than LONG_LIST is searched by its classifier, which tests each row's fields but not
    # group membership nor IPv6 bits past the first 32: rows it names that then fail must not decide
    kinds = [dict(peer="sg-b"), dict(peer="0.0.0.0/0", local="10.0.0.2/32"), dict(peer="2001:db8:0:1::/64"),
             dict(peer="10.0.0.0/8", source_ports="1/1"), dict(peer="10.0.1.0/31")]
    # rows sharing a port are 47 apart, in other blocks of 8 and of other kinds
    rules = [rule("ingress", protocol=("tcp", "udp")[k // 7 % 2], ports=f"{k % 47 + 1}/{k % 47 + 1 + k % 3}",
                  action=("accept", "drop")[k % 7 == 0], priority=k % 3 + 1, **kinds[k % len(kinds)])
             for k in range(3 * LONG_LIST)]
    mapping = config(rules, [])
    mapping["limits"] = {"group_rules_per_group": len(rules)}
    tables = compile_tables(flowsim.load_config(mapping))
    assert (tables.list_set >= 0).any(), "no list is long enough to get a classifier"
    cols = flows_between(["10.0.0.1", "10.0.0.2", "10.0.1.0", "8.8.8.8", "2001:db8::1", "2001:db8:1::", "2001:db8:0:1::5"],
                         protocols=("tcp", "udp"))
    for k in range(len(cols["dst_port"])):
        cols["dst_port"][k] = k % 51
    assert_same(mapping, cols)


def test_flows_between_two_addresses_of_one_eni():
    mapping = config([rule("ingress", "0.0.0.0/0", "all", action="drop")], [])
    assert_same(mapping, flows_between(["10.0.0.1", "10.0.0.2", "2001:db8::1"]))


def test_interconnected_groups_beyond_64():
    # the kernel rules out a shared group by (group % 64) masks first: groups 64 apart share a bit,
    # so ENIs carrying sg-k and sg-(k+64) must still be told apart exactly
    groups = {f"sg-{k}": {"internal_policy": "accept" if k % 2 == 0 else "drop", "rules": []} for k in range(140)}
    interfaces = {f"eni-{k}": {"security_groups": [f"sg-{k}"], "ips": [f"10.1.{k}.1"]} for k in range(140)}
    interfaces["eni-both"] = {"security_groups": ["sg-0", "sg-65"], "ips": ["10.2.0.1"]}
    mapping = {"security_groups": groups, "interfaces": interfaces}
    addresses = [f"10.1.{k}.1" for k in (0, 1, 2, 64, 65, 66, 128, 129, 130)] + ["10.2.0.1"]
    assert_same(mapping, flows_between(addresses, protocols=("tcp",)))


def test_the_kernels_get_a_classifier_only_where_some_list_has_one():
    """Short lists only: the kernels take None and are compiled without the classifier's code; a list with a
    classifier (every list past 0 rows, here) hands it over."""
    from pathlib import Path

    config = flowsim.load_config(Path(__file__).resolve().parents[1] / "traces" / "example.yaml")
    assert compile_tables(config).kernel_classifier is None
    forced = compile_tables(config, long_list=0)
    assert (forced.list_set >= 0).any() and forced.kernel_classifier is not None
    assert forced.kernel_classifier.set_ptr is forced.list_classifier[1]
