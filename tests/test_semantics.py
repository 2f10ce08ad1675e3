"""Evaluation semantics (docs/semantics.md §1–§4) pinned on the reference evaluator AND the compiled engine.

`decide(...)` returns `(verdict, egress_rule, ingress_rule)` after asserting that
the reference evaluator, `engine.explain` and `engine.evaluate` agree.
"""
from __future__ import annotations

import ipaddress

import pytest
from helpers import Pair, decide, egress, eni, evaluate_rows, ingress, net, sg

import flowsim
from flowsim.engine.reference import Flow, ReferenceEvaluator
from flowsim.errors import InputError

INTRA = "default:intra-group-allow"
IN_DENY = "default:inbound-deny"
OUT_ALLOW = "default:outbound-allow"
OUT_DENY = "default:outbound-deny"
OUTSIDE = "203.0.113.5"
OUTSIDE6 = "2001:db8:ffff::5"


def single(*rules, type="basic", policy=None, extra_ips=(), **eni_kw) -> dict:
    """One ENI eni-1 (10.0.1.10) in one group sg-1."""
    return net({"sg-1": sg(*rules, type=type, policy=policy)}, {"eni-1": eni("sg-1", ips=["10.0.1.10", *extra_ips], **eni_kw)})


# ================================================================ priority and order (§2)
def test_lower_priority_number_wins():
    cfg = single(ingress("tcp", "0.0.0.0/0", "22", action="drop", priority=2, id="drop-2"),
                 ingress("tcp", "0.0.0.0/0", "22", action="accept", priority=1, id="accept-1"))
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("allow", "", "sg-1/accept-1")
    cfg = single(ingress("tcp", "0.0.0.0/0", "22", action="accept", priority=100, id="accept-100"),
                 ingress("tcp", "0.0.0.0/0", "22", action="drop", priority=99, id="drop-99"))
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("deny", "", "sg-1/drop-99")


def test_drop_before_accept_at_equal_priority():
    cfg = single(ingress("tcp", "0.0.0.0/0", "22", action="accept", priority=5, id="accept"),
                 ingress("tcp", "203.0.113.0/24", "22", action="drop", priority=5, id="drop"))
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("deny", "", "sg-1/drop")
    # the drop does not match: the accept decides
    assert decide(cfg, "198.51.100.1", "10.0.1.10", "tcp", dst_port=22) == ("allow", "", "sg-1/accept")


def test_drop_before_accept_at_equal_priority_across_groups():
    cfg = net({"sg-a": sg(egress("all", "0.0.0.0/0", action="accept", priority=3, id="out")),
               "sg-b": sg(egress("tcp", "0.0.0.0/0", "443", action="drop", priority=3, id="no-https"))},
              {"eni-1": eni("sg-a", "sg-b", ips=["10.0.1.10"])})
    assert decide(cfg, "10.0.1.10", OUTSIDE, "tcp", dst_port=443) == ("deny", "sg-b/no-https", "")
    assert decide(cfg, "10.0.1.10", OUTSIDE, "tcp", dst_port=80) == ("allow", "sg-a/out", "")


def test_first_matching_rule_in_group_order_reported_at_equal_priority_and_action():
    cfg = single(ingress("tcp", "0.0.0.0/0", "1-65535", id="wide"),
                 ingress("tcp", "203.0.113.0/24", "22", id="narrow"))
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("allow", "", "sg-1/wide")


def test_tie_break_by_file_order_of_groups_not_eni_list_order():
    # sg-b comes first in the file; the ENI lists sg-a first
    groups = {"sg-b": sg(ingress("tcp", "0.0.0.0/0", "22", id="ssh-b"), egress("all", "0.0.0.0/0", action="drop", id="x-b")),
              "sg-a": sg(ingress("tcp", "0.0.0.0/0", "22", id="ssh-a"), egress("all", "0.0.0.0/0", action="drop", id="x-a"))}
    cfg = net(groups, {"eni-1": eni("sg-a", "sg-b", ips=["10.0.1.10"])})
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("allow", "", "sg-b/ssh-b")
    assert decide(cfg, "10.0.1.10", OUTSIDE, "udp", dst_port=53) == ("deny", "sg-b/x-b", "")
    # swapping the file order swaps the reported rule
    cfg = net(dict(reversed(list(groups.items()))), {"eni-1": eni("sg-a", "sg-b", ips=["10.0.1.10"])})
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("allow", "", "sg-a/ssh-a")
    assert decide(cfg, "10.0.1.10", OUTSIDE, "udp", dst_port=53) == ("deny", "sg-a/x-a", "")


def test_priority_beats_file_order():
    groups = {"sg-b": sg(ingress("tcp", "0.0.0.0/0", "22", priority=2, id="ssh-b")),
              "sg-a": sg(ingress("tcp", "0.0.0.0/0", "22", priority=1, id="ssh-a"))}
    cfg = net(groups, {"eni-1": eni("sg-b", "sg-a", ips=["10.0.1.10"])})
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("allow", "", "sg-a/ssh-a")


def test_unnamed_rules_are_named_by_position():
    cfg = single(ingress("tcp", "0.0.0.0/0", "80"), ingress("tcp", "0.0.0.0/0", "443"), ingress("tcp", "0.0.0.0/0", "22", id="ssh"))
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=443) == ("allow", "", "sg-1/#2")
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=80) == ("allow", "", "sg-1/#1")
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("allow", "", "sg-1/ssh")


def test_rules_pooled_from_all_groups_of_the_eni():
    cfg = net({"sg-web": sg(ingress("tcp", "0.0.0.0/0", "443", id="https")),
               "sg-ssh": sg(ingress("tcp", "198.51.100.0/24", "22", id="ssh")),
               "sg-mon": sg(ingress("icmp", "10.0.0.0/8", id="ping"), egress("tcp", "0.0.0.0/0", "25", action="drop", id="no-smtp")),
               "sg-unused": sg(ingress("all", "0.0.0.0/0", id="everything"))},
              {"eni-1": eni("sg-web", "sg-ssh", "sg-mon", ips=["10.0.1.10"]),
               "eni-2": eni("sg-unused", ips=["10.0.2.10"])})
    dst = "10.0.1.10"
    assert decide(cfg, OUTSIDE, dst, "tcp", dst_port=443) == ("allow", "", "sg-web/https")
    assert decide(cfg, "198.51.100.9", dst, "tcp", dst_port=22) == ("allow", "", "sg-ssh/ssh")
    assert decide(cfg, "10.9.9.9", dst, "icmp") == ("allow", "", "sg-mon/ping")
    assert decide(cfg, dst, OUTSIDE, "tcp", dst_port=25) == ("deny", "sg-mon/no-smtp", "")
    # the rules of a group the ENI is not in do not apply to it
    assert decide(cfg, OUTSIDE, dst, "udp", dst_port=9) == ("deny", "", IN_DENY)
    assert decide(cfg, OUTSIDE, "10.0.2.10", "udp", dst_port=9) == ("allow", "", "sg-unused/everything")


def test_rules_of_the_other_direction_are_ignored():
    cfg = single(egress("tcp", "0.0.0.0/0", "22", id="out-ssh"))
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("deny", "", IN_DENY)
    cfg = single(ingress("tcp", "0.0.0.0/0", "22", action="drop", id="in-ssh"))
    assert decide(cfg, "10.0.1.10", OUTSIDE, "tcp", dst_port=22) == ("allow", OUT_ALLOW, "")


# ================================================================ group peers (§1)
def group_peer_config() -> dict:
    return net({"sg-db": sg(ingress("tcp", "sg-app", "3306", id="mysql-from-app"), policy="drop"),
                "sg-app": sg(egress("tcp", "sg-db", "3306", action="drop", id="no-mysql", priority=2), policy="drop")},
               {"eni-db": eni("sg-db", ips=["10.0.3.10"], ipv6=["2001:db8:3::10"]),
                "eni-app": eni("sg-app", ips=["10.0.2.10", "10.0.2.11"], ipv6=["2001:db8:2::10"],
                               ipv4_prefixes=["10.0.9.0/28"], ipv6_prefixes=["2001:db8:9::/80"]),
                "eni-other": eni("sg-db", ips=["10.0.4.10"])})


@pytest.mark.parametrize("src", ["10.0.2.10", "10.0.2.11", "10.0.9.0", "10.0.9.5", "10.0.9.15"],
                         ids=["primary", "secondary", "prefix-first", "prefix-middle", "prefix-last"])
def test_group_peer_matches_every_ipv4_address_of_a_member(src):
    assert decide(group_peer_config(), src, "10.0.3.10", "tcp", dst_port=3306) == ("deny", "sg-app/no-mysql", "sg-db/mysql-from-app")


@pytest.mark.parametrize("src", ["2001:db8:2::10", "2001:db8:9::1", "2001:db8:9::ffff:ffff:ffff"],
                         ids=["ipv6", "ipv6-prefix", "ipv6-prefix-last"])
def test_group_peer_matches_ipv6_addresses_of_a_member(src):
    assert decide(group_peer_config(), src, "2001:db8:3::10", "tcp", dst_port=3306) == ("deny", "sg-app/no-mysql", "sg-db/mysql-from-app")


@pytest.mark.parametrize("src", ["10.0.2.12", "10.0.9.16", "10.0.4.10", OUTSIDE, "2001:db8:9:0:1::1"],
                         ids=["next-to-secondary", "after-prefix", "other-eni", "outside", "outside-ipv6-prefix"])
def test_group_peer_does_not_match_other_addresses(src):
    dst = "2001:db8:3::10" if ":" in src else "10.0.3.10"
    verdict, _, ingress_rule = decide(group_peer_config(), src, dst, "tcp", dst_port=3306)
    assert (verdict, ingress_rule) == ("deny", IN_DENY)


def test_group_peer_in_egress_rule_names_the_receiver():
    cfg = group_peer_config()
    assert decide(cfg, "10.0.9.3", "10.0.3.10", "tcp", dst_port=3306)[1] == "sg-app/no-mysql"
    assert decide(cfg, "10.0.9.3", "10.0.4.10", "tcp", dst_port=3306)[1] == "sg-app/no-mysql"
    assert decide(cfg, "10.0.9.3", OUTSIDE, "tcp", dst_port=3306) == ("allow", OUT_ALLOW, "")


def test_destination_inside_an_ipv4_prefix_belongs_to_the_eni():
    cfg = net({"sg-1": sg(ingress("tcp", "0.0.0.0/0", "80", id="http"))},
              {"eni-1": eni("sg-1", ips=["10.0.1.10"], ipv4_prefixes=["10.0.9.0/28"])})
    assert decide(cfg, OUTSIDE, "10.0.9.7", "tcp", dst_port=80) == ("allow", "", "sg-1/http")
    assert decide(cfg, OUTSIDE, "10.0.9.7", "tcp", dst_port=81) == ("deny", "", IN_DENY)
    assert decide(cfg, OUTSIDE, "10.0.9.16", "tcp", dst_port=81) == ("unmanaged", "", "")


def test_intra_group_allow_through_secondary_and_prefix_and_ipv6_addresses():
    cfg = net({"sg-1": sg(ingress("all", "0.0.0.0/0", action="drop", id="drop4"), ingress("all", "::/0", action="drop", id="drop6"))},
              {"eni-a": eni("sg-1", ips=["10.0.1.10", "10.0.1.11"], ipv6=["2001:db8::a"], ipv4_prefixes=["10.0.8.0/28"],
                            ipv6_prefixes=["2001:db8:a::/80"]),
               "eni-b": eni("sg-1", ips=["10.0.1.20"], ipv6=["2001:db8::b"])})
    for src in ("10.0.1.10", "10.0.1.11", "10.0.8.9"):
        assert decide(cfg, src, "10.0.1.20", "udp", dst_port=53) == ("allow", OUT_ALLOW, INTRA)
        assert decide(cfg, "10.0.1.20", src, "udp", dst_port=53) == ("allow", OUT_ALLOW, INTRA)
    for src in ("2001:db8::a", "2001:db8:a::1234"):
        assert decide(cfg, src, "2001:db8::b", "icmpv6") == ("allow", OUT_ALLOW, INTRA)
        assert decide(cfg, "2001:db8::b", src, "tcp", dst_port=22) == ("allow", OUT_ALLOW, INTRA)
    assert decide(cfg, OUTSIDE6, "2001:db8::b", "icmpv6") == ("deny", "", "sg-1/drop6")


# ================================================================ prefix lists (§1)
def test_prefix_list_peer():
    cfg = net({"sg-1": sg(ingress("tcp", "pl-office", "22", id="ssh-office"), egress("all", "pl-bad", action="drop", id="no-bad"))},
              {"eni-1": eni("sg-1", ips=["10.0.1.10"], ipv6=["2001:db8::10"])},
              prefix_lists={"pl-office": ["203.0.113.0/24", "198.51.100.7", "2001:db8:ff::/48"],
                            "pl-bad": {"entries": ["192.0.2.0/25"], "max_entries": 10}})
    dst = "10.0.1.10"
    assert decide(cfg, "203.0.113.200", dst, "tcp", dst_port=22) == ("allow", "", "sg-1/ssh-office")
    assert decide(cfg, "198.51.100.7", dst, "tcp", dst_port=22) == ("allow", "", "sg-1/ssh-office")
    assert decide(cfg, "198.51.100.8", dst, "tcp", dst_port=22) == ("deny", "", IN_DENY)
    assert decide(cfg, "2001:db8:ff:1::1", "2001:db8::10", "tcp", dst_port=22) == ("allow", "", "sg-1/ssh-office")
    assert decide(cfg, "2001:db8:fe::1", "2001:db8::10", "tcp", dst_port=22) == ("deny", "", IN_DENY)
    assert decide(cfg, dst, "192.0.2.100", "udp", dst_port=53) == ("deny", "sg-1/no-bad", "")
    assert decide(cfg, dst, "192.0.2.200", "udp", dst_port=53) == ("allow", OUT_ALLOW, "")


def test_empty_prefix_list_matches_nothing():
    cfg = net({"sg-1": sg(ingress("all", "pl-empty", id="never"))}, {"eni-1": eni("sg-1", ips=["10.0.1.10"])},
              prefix_lists={"pl-empty": {"entries": [], "max_entries": 5}})
    assert decide(cfg, OUTSIDE, "10.0.1.10", "udp", dst_port=1) == ("deny", "", IN_DENY)


# ================================================================ quintuple rules (§1)
def test_source_ports():
    cfg = single(ingress("tcp", "0.0.0.0/0", "443", source_ports="1024-65535", id="ephemeral"),
                 ingress("udp", "0.0.0.0/0", "53", source_ports="53", id="dns-from-53"))
    dst = "10.0.1.10"
    assert decide(cfg, OUTSIDE, dst, "tcp", src_port=1024, dst_port=443) == ("allow", "", "sg-1/ephemeral")
    assert decide(cfg, OUTSIDE, dst, "tcp", src_port=65535, dst_port=443) == ("allow", "", "sg-1/ephemeral")
    assert decide(cfg, OUTSIDE, dst, "tcp", src_port=1023, dst_port=443) == ("deny", "", IN_DENY)
    assert decide(cfg, OUTSIDE, dst, "udp", src_port=53, dst_port=53) == ("allow", "", "sg-1/dns-from-53")
    assert decide(cfg, OUTSIDE, dst, "udp", src_port=54, dst_port=53) == ("deny", "", IN_DENY)


def test_local_narrows_destination_on_ingress():
    cfg = single(ingress("tcp", "0.0.0.0/0", "80", local="10.0.1.10/32", id="web-primary"), extra_ips=["10.0.1.11"])
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=80) == ("allow", "", "sg-1/web-primary")
    assert decide(cfg, OUTSIDE, "10.0.1.11", "tcp", dst_port=80) == ("deny", "", IN_DENY)


def test_local_narrows_source_on_egress():
    cfg = single(egress("all", "0.0.0.0/0", action="drop", local="10.0.1.11", id="quiet-secondary"), extra_ips=["10.0.1.11"],
                 ipv6=["2001:db8::10"])
    assert decide(cfg, "10.0.1.11", OUTSIDE, "tcp", dst_port=80) == ("deny", "sg-1/quiet-secondary", "")
    assert decide(cfg, "10.0.1.10", OUTSIDE, "tcp", dst_port=80) == ("allow", OUT_ALLOW, "")
    # an IPv4 local never matches an IPv6 source
    assert decide(cfg, "2001:db8::10", OUTSIDE6, "tcp", dst_port=80) == ("allow", OUT_ALLOW, "")


def test_local_with_group_peer():
    cfg = net({"sg-1": sg(ingress("tcp", "sg-2", "22", local="10.0.1.11/32", id="ssh-secondary"), policy="drop"),
               "sg-2": sg(policy="drop")},
              {"eni-1": eni("sg-1", ips=["10.0.1.10", "10.0.1.11"]), "eni-2": eni("sg-2", ips=["10.0.2.10"])})
    assert decide(cfg, "10.0.2.10", "10.0.1.11", "tcp", dst_port=22) == ("allow", OUT_ALLOW, "sg-1/ssh-secondary")
    assert decide(cfg, "10.0.2.10", "10.0.1.10", "tcp", dst_port=22) == ("deny", OUT_ALLOW, IN_DENY)


# ================================================================ protocols and address families (§1)
def test_port_range_boundaries_and_aliases():
    for ports in ("8000-8080", "8000/8080"):
        cfg = single(ingress("tcp", "0.0.0.0/0", ports, id="range"))
        for port, expected in ((7999, IN_DENY), (8000, "sg-1/range"), (8040, "sg-1/range"), (8080, "sg-1/range"), (8081, IN_DENY)):
            assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=port)[2] == expected
    cfg = single(ingress("udp", "0.0.0.0/0", "-1/-1", id="all-udp"))
    for port in (0, 1, 65535):
        assert decide(cfg, OUTSIDE, "10.0.1.10", "udp", dst_port=port) == ("allow", "", "sg-1/all-udp")


def test_tcp_rule_does_not_match_udp_and_vice_versa():
    cfg = single(ingress("tcp", "0.0.0.0/0", "53", id="tcp53"), ingress("UDP", "0.0.0.0/0", "123", id="ntp"))
    assert decide(cfg, OUTSIDE, "10.0.1.10", "udp", dst_port=53) == ("deny", "", IN_DENY)
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=123) == ("deny", "", IN_DENY)
    assert decide(cfg, OUTSIDE, "10.0.1.10", 17, dst_port=123) == ("allow", "", "sg-1/ntp")
    assert decide(cfg, OUTSIDE, "10.0.1.10", 6, dst_port=53) == ("allow", "", "sg-1/tcp53")


def test_icmp_rule_does_not_match_icmpv6_flow():
    cfg = single(ingress("icmp", "0.0.0.0/0", id="ping4"), ingress("icmpv6", "::/0", id="ping6"), ipv6=["2001:db8::10"])
    assert decide(cfg, OUTSIDE, "10.0.1.10", "icmp") == ("allow", "", "sg-1/ping4")
    assert decide(cfg, OUTSIDE6, "2001:db8::10", "icmpv6") == ("allow", "", "sg-1/ping6")
    assert decide(cfg, OUTSIDE6, "2001:db8::10", 58) == ("allow", "", "sg-1/ping6")
    # icmp is protocol 1, icmpv6 is protocol 58: neither rule fits the other's packets
    assert decide(cfg, OUTSIDE, "10.0.1.10", "icmpv6") == ("deny", "", IN_DENY)
    assert decide(cfg, OUTSIDE6, "2001:db8::10", "icmp") == ("deny", "", IN_DENY)


def test_gre_rule():
    cfg = single(ingress("gre", "198.51.100.0/24", id="tunnel"), ingress("47", "203.0.113.0/24", action="drop", id="no-tunnel"))
    assert decide(cfg, "198.51.100.1", "10.0.1.10", "gre") == ("allow", "", "sg-1/tunnel")
    assert decide(cfg, "198.51.100.1", "10.0.1.10", 47) == ("allow", "", "sg-1/tunnel")
    assert decide(cfg, OUTSIDE, "10.0.1.10", "gre") == ("deny", "", "sg-1/no-tunnel")
    assert decide(cfg, "198.51.100.1", "10.0.1.10", "tcp", dst_port=47) == ("deny", "", IN_DENY)


def test_numeric_protocol_rule():
    cfg = single(ingress(132, "0.0.0.0/0", id="sctp"), ingress("89", "10.0.0.0/8", id="ospf"), ingress(0, "0.0.0.0/0", id="hopopt"))
    assert decide(cfg, OUTSIDE, "10.0.1.10", 132) == ("allow", "", "sg-1/sctp")
    assert decide(cfg, OUTSIDE, "10.0.1.10", "132") == ("allow", "", "sg-1/sctp")
    assert decide(cfg, OUTSIDE, "10.0.1.10", 133) == ("deny", "", IN_DENY)
    assert decide(cfg, "10.2.3.4", "10.0.1.10", 89) == ("allow", "", "sg-1/ospf")
    assert decide(cfg, OUTSIDE, "10.0.1.10", 89) == ("deny", "", IN_DENY)
    assert decide(cfg, OUTSIDE, "10.0.1.10", 0) == ("allow", "", "sg-1/hopopt")
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=132) == ("deny", "", IN_DENY)


def test_numeric_6_and_17_rules_are_tcp_and_udp_with_ports():
    cfg = single(ingress(6, "0.0.0.0/0", "22", id="ssh"), ingress("17", "0.0.0.0/0", "53", id="dns"))
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("allow", "", "sg-1/ssh")
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=23) == ("deny", "", IN_DENY)
    assert decide(cfg, OUTSIDE, "10.0.1.10", "udp", dst_port=53) == ("allow", "", "sg-1/dns")


@pytest.mark.parametrize("protocol,port", [("tcp", 1), ("tcp", 65535), ("udp", 0), ("icmp", 0), ("gre", 0), (132, 0), (255, 0)])
def test_all_protocol_rule_matches_every_protocol_and_port(protocol, port):
    cfg = single(ingress("all", "0.0.0.0/0", id="any"), ingress("ALL", "::/0", id="any6"), ipv6=["2001:db8::10"])
    assert decide(cfg, OUTSIDE, "10.0.1.10", protocol, dst_port=port) == ("allow", "", "sg-1/any")
    if protocol != "icmp":
        assert decide(cfg, OUTSIDE6, "2001:db8::10", protocol, dst_port=port) == ("allow", "", "sg-1/any6")


def test_ipv4_cidr_never_matches_ipv6_address_and_vice_versa():
    cfg = single(ingress("all", "0.0.0.0/0", id="any4"), egress("all", "0.0.0.0/0", action="drop", id="drop4"),
                 ipv6=["2001:db8::10"], type="basic")
    assert decide(cfg, OUTSIDE6, "2001:db8::10", "tcp", dst_port=22) == ("deny", "", IN_DENY)
    assert decide(cfg, "2001:db8::10", OUTSIDE6, "tcp", dst_port=22) == ("allow", OUT_ALLOW, "")
    # an IPv4-mapped IPv6 address is still IPv6
    assert decide(cfg, "::ffff:203.0.113.5", "2001:db8::10", "tcp", dst_port=22) == ("deny", "", IN_DENY)
    cfg = single(ingress("all", "::/0", id="any6"), egress("all", "::/0", action="drop", id="drop6"), ipv6=["2001:db8::10"])
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("deny", "", IN_DENY)
    assert decide(cfg, "10.0.1.10", OUTSIDE, "tcp", dst_port=22) == ("allow", OUT_ALLOW, "")
    assert decide(cfg, OUTSIDE6, "2001:db8::10", "tcp", dst_port=22) == ("allow", "", "sg-1/any6")
    assert decide(cfg, "2001:db8::10", OUTSIDE6, "udp", dst_port=1) == ("deny", "sg-1/drop6", "")


def test_bare_address_peer_is_a_host_route():
    cfg = single(ingress("tcp", "203.0.113.5", "22", id="one4"), ingress("tcp", "2001:db8:ffff::5", "22", id="one6"),
                 ipv6=["2001:db8::10"])
    assert decide(cfg, "203.0.113.5", "10.0.1.10", "tcp", dst_port=22)[2] == "sg-1/one4"
    assert decide(cfg, "203.0.113.6", "10.0.1.10", "tcp", dst_port=22)[2] == IN_DENY
    assert decide(cfg, "2001:db8:ffff::5", "2001:db8::10", "tcp", dst_port=22)[2] == "sg-1/one6"
    assert decide(cfg, "2001:db8:ffff::6", "2001:db8::10", "tcp", dst_port=22)[2] == IN_DENY


# ================================================================ several groups, several policies (Decisions)
def multi_policy_config() -> dict:
    return net({"sg-open": sg(policy="accept"), "sg-iso": sg(policy="drop"), "sg-iso2": sg(policy="drop")},
               {"eni-a": eni("sg-open", "sg-iso", ips=["10.0.1.1"]),   # open + isolating
                "eni-b": eni("sg-iso", ips=["10.0.1.2"]),              # shares only sg-iso with a
                "eni-c": eni("sg-open", ips=["10.0.1.3"]),             # shares sg-open with a
                "eni-d": eni("sg-iso", "sg-iso2", ips=["10.0.1.4"]),   # shares two isolating groups with e
                "eni-e": eni("sg-iso", "sg-iso2", ips=["10.0.1.5"]),
                "eni-f": eni("sg-iso", "sg-open", ips=["10.0.1.6"])})  # shares both with a


def test_sharing_an_accept_basic_group_gives_intra_group_allow():
    cfg = multi_policy_config()
    assert decide(cfg, "10.0.1.1", "10.0.1.3", "tcp", dst_port=22) == ("allow", OUT_ALLOW, INTRA)
    assert decide(cfg, "10.0.1.3", "10.0.1.1", "tcp", dst_port=22) == ("allow", OUT_ALLOW, INTRA)
    # a shared isolating group does not cancel a shared interconnected one
    assert decide(cfg, "10.0.1.6", "10.0.1.1", "tcp", dst_port=22) == ("allow", OUT_ALLOW, INTRA)


def test_sharing_only_isolating_groups_gives_no_default_allow():
    cfg = multi_policy_config()
    # a is in an accept group, but b is not in it: no default allow either way
    assert decide(cfg, "10.0.1.2", "10.0.1.1", "tcp", dst_port=22) == ("deny", OUT_ALLOW, IN_DENY)
    assert decide(cfg, "10.0.1.1", "10.0.1.2", "tcp", dst_port=22) == ("deny", OUT_ALLOW, IN_DENY)
    assert decide(cfg, "10.0.1.4", "10.0.1.5", "tcp", dst_port=22) == ("deny", OUT_ALLOW, IN_DENY)
    assert decide(cfg, "10.0.1.3", "10.0.1.2", "tcp", dst_port=22) == ("deny", OUT_ALLOW, IN_DENY)


def test_outbound_decision_custom_egress_drop_blocks_fellow_member():
    cfg = net({"sg-web": sg(egress("tcp", "10.0.0.0/8", "22", action="drop", id="no-ssh-out"))},
              {"eni-a": eni("sg-web", ips=["10.0.1.10"]), "eni-b": eni("sg-web", ips=["10.0.1.20"])})
    assert decide(cfg, "10.0.1.10", "10.0.1.20", "tcp", dst_port=22) == ("deny", "sg-web/no-ssh-out", INTRA)
    assert decide(cfg, "10.0.1.10", "10.0.1.20", "tcp", dst_port=80) == ("allow", OUT_ALLOW, INTRA)


def test_outbound_decision_egress_drop_naming_a_peer_group():
    cfg = net({"sg-web": sg(egress("all", "sg-tag", action="drop", id="not-to-tagged")), "sg-tag": sg()},
              {"eni-a": eni("sg-web", ips=["10.0.1.10"]), "eni-b": eni("sg-web", "sg-tag", ips=["10.0.1.20"])})
    assert decide(cfg, "10.0.1.10", "10.0.1.20", "udp", dst_port=5) == ("deny", "sg-web/not-to-tagged", INTRA)
    assert decide(cfg, "10.0.1.20", "10.0.1.10", "udp", dst_port=5) == ("allow", OUT_ALLOW, INTRA)


# ================================================================ path mode edges (§3)
def test_unmanaged_when_neither_address_is_modelled():
    cfg = single(ingress("all", "0.0.0.0/0", id="any"))
    assert decide(cfg, OUTSIDE, "198.51.100.1", "tcp", dst_port=80) == ("unmanaged", "", "")
    assert decide(cfg, OUTSIDE6, "2001:db8:eeee::1", "udp", dst_port=53) == ("unmanaged", "", "")
    # ENI 10.0.1.10 exists, but not 10.0.1.11
    assert decide(cfg, "10.0.1.11", "10.0.1.12", "icmp") == ("unmanaged", "", "")


def test_only_the_modelled_side_is_checked():
    cfg = single(ingress("tcp", "0.0.0.0/0", "22", id="ssh"), egress("all", "0.0.0.0/0", action="drop", id="no-out"))
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22) == ("allow", "", "sg-1/ssh")
    assert decide(cfg, "10.0.1.10", OUTSIDE, "tcp", dst_port=22) == ("deny", "sg-1/no-out", "")


def test_both_sides_must_allow():
    cfg = net({"sg-a": sg(egress("tcp", "0.0.0.0/0", "22", id="ssh-out"), policy="drop"),
               "sg-b": sg(ingress("tcp", "10.0.1.0/24", "80", id="http-in"), policy="drop")},
              {"eni-a": eni("sg-a", ips=["10.0.1.10"]), "eni-b": eni("sg-b", ips=["10.0.2.10"])})
    assert decide(cfg, "10.0.1.10", "10.0.2.10", "tcp", dst_port=22) == ("deny", "sg-a/ssh-out", IN_DENY)
    assert decide(cfg, "10.0.1.10", "10.0.2.10", "tcp", dst_port=80) == ("allow", OUT_ALLOW, "sg-b/http-in")


def test_flow_between_two_addresses_of_one_eni_is_not_filtered():
    cfg = single(ingress("all", "0.0.0.0/0", action="drop", id="drop-in"), egress("all", "0.0.0.0/0", action="drop", id="drop-out"),
                 type="advanced", extra_ips=["10.0.1.11"], ipv4_prefixes=["10.0.9.0/28"], ipv6=["2001:db8::1", "2001:db8::2"])
    assert decide(cfg, "10.0.1.10", "10.0.1.11", "tcp", dst_port=22) == ("allow", "", "")
    assert decide(cfg, "10.0.9.3", "10.0.1.10", "udp", dst_port=53) == ("allow", "", "")
    assert decide(cfg, "10.0.1.10", "10.0.1.10", "icmp") == ("allow", "", "")
    assert decide(cfg, "2001:db8::1", "2001:db8::2", "icmpv6") == ("allow", "", "")


# ================================================================ endpoint mode (§4)
def endpoint_config() -> dict:
    return net({"sg-web": sg(ingress("tcp", "0.0.0.0/0", "443", id="https"), egress("tcp", "sg-db", "3306", action="drop", id="no-db")),
                "sg-db": sg(policy="drop")},
               {"eni-web-1": eni("sg-web", ips=["10.0.1.10"]), "eni-web-2": eni("sg-web", ips=["10.0.1.20"]),
                "eni-db": eni("sg-db", ips=["10.0.3.10"])})


def test_endpoint_mode_ingress_evaluates_only_that_eni():
    cfg = endpoint_config()
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=443, eni="eni-web-1", direction="ingress") == ("allow", "", "sg-web/https")
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=22, eni="eni-web-1", direction="ingress") == ("deny", "", IN_DENY)
    # in path mode the db ENI would check egress too; in endpoint mode only the named side is reported
    assert decide(cfg, "10.0.3.10", "10.0.1.10", "tcp", dst_port=443, eni="eni-web-1", direction="ingress") == ("allow", "", "sg-web/https")


def test_endpoint_mode_resolves_the_other_endpoint_for_intra_group_allow():
    cfg = endpoint_config()
    assert decide(cfg, "10.0.1.20", "10.0.1.10", "tcp", dst_port=22, eni="eni-web-1", direction="ingress") == ("allow", "", INTRA)


def test_endpoint_mode_resolves_the_other_endpoint_for_group_peer_rules():
    cfg = endpoint_config()
    assert decide(cfg, "10.0.1.10", "10.0.3.10", "tcp", dst_port=3306, eni="eni-web-1", direction="egress") == ("deny", "sg-web/no-db", "")
    assert decide(cfg, "10.0.1.10", "10.0.3.11", "tcp", dst_port=3306, eni="eni-web-1", direction="egress") == ("allow", OUT_ALLOW, "")
    # the egress side of a fellow member: no intra-group default on the way out
    assert decide(cfg, "10.0.1.10", "10.0.1.20", "tcp", dst_port=22, eni="eni-web-1", direction="egress") == ("allow", OUT_ALLOW, "")


def test_endpoint_mode_unknown_eni_is_unmanaged():
    cfg = endpoint_config()
    assert decide(cfg, OUTSIDE, "10.0.1.10", "tcp", dst_port=443, eni="eni-nope", direction="ingress") == ("unmanaged", "", "")


def test_endpoint_mode_batch_with_in_and_out_directions():
    pair = Pair(endpoint_config())
    flows = [pair.flow(OUTSIDE, "10.0.1.10", "tcp", dst_port=443, eni="eni-web-1", direction="ingress"),
             pair.flow("10.0.1.10", "10.0.3.10", "tcp", dst_port=3306, eni="eni-web-1", direction="egress"),
             pair.flow("10.0.1.10", "10.0.3.10", "tcp", dst_port=3306),   # path mode row in the same batch
             pair.flow(OUTSIDE, "10.0.3.10", "tcp", dst_port=1, eni="eni-gone", direction="ingress")]
    rows = evaluate_rows(pair.engine, flows)
    refs = [pair.reference.evaluate(f) for f in flows]
    assert rows["verdict"] == [r.verdict for r in refs] == ["allow", "deny", "deny", "unmanaged"]
    assert rows["egress_rule"] == [r.egress_rule for r in refs] == ["", "sg-web/no-db", "sg-web/no-db", ""]
    assert rows["ingress_rule"] == [r.ingress_rule for r in refs] == ["sg-web/https", "", IN_DENY, ""]


# ================================================================ several VPCs (§3 Decision)
def two_vpc_config() -> dict:
    return net({"sg-a": sg(ingress("tcp", "0.0.0.0/0", "80", id="http"), vpc="vpc-a"),
                "sg-b": sg(ingress("tcp", "0.0.0.0/0", "80", action="drop", id="no-http"), vpc="vpc-b")},
               {"eni-a": eni("sg-a", ips=["10.0.0.5"], vpc="vpc-a"), "eni-b": eni("sg-b", ips=["10.0.0.5"], vpc="vpc-b"),
                "eni-a2": eni("sg-a", ips=["10.0.0.6"], vpc="vpc-a")})


def test_vpc_column_picks_the_owner_when_address_space_is_reused():
    cfg = two_vpc_config()
    assert decide(cfg, OUTSIDE, "10.0.0.5", "tcp", dst_port=80, vpc="vpc-a") == ("allow", "", "sg-a/http")
    assert decide(cfg, OUTSIDE, "10.0.0.5", "tcp", dst_port=80, vpc="vpc-b") == ("deny", "", "sg-b/no-http")
    assert decide(cfg, "10.0.0.6", "10.0.0.5", "tcp", dst_port=80, vpc="vpc-a") == ("allow", OUT_ALLOW, INTRA)
    # in vpc-b, 10.0.0.6 belongs to nobody
    assert decide(cfg, "10.0.0.6", "10.0.0.5", "tcp", dst_port=80, vpc="vpc-b") == ("deny", "", "sg-b/no-http")
    assert decide(cfg, OUTSIDE, "10.0.0.5", "tcp", dst_port=80, vpc="vpc-unknown") == ("unmanaged", "", "")


def test_address_unique_across_vpcs_needs_no_vpc_column():
    cfg = two_vpc_config()
    assert decide(cfg, OUTSIDE, "10.0.0.6", "tcp", dst_port=80) == ("allow", "", "sg-a/http")


def test_ambiguous_address_without_vpc_is_refused_by_both_evaluators():
    pair = Pair(two_vpc_config())
    flow = pair.flow(OUTSIDE, "10.0.0.5", "tcp", dst_port=80)
    with pytest.raises(InputError):
        pair.reference.evaluate(flow)
    with pytest.raises(InputError):
        pair.engine.explain(flow)
    with pytest.raises(InputError):
        evaluate_rows(pair.engine, [flow])


def test_endpoint_mode_resolves_peer_in_the_eni_vpc():
    cfg = two_vpc_config()
    # 10.0.0.6 is eni-a2 in vpc-a: a fellow member of eni-a; in vpc-b it is nobody
    assert decide(cfg, "10.0.0.6", "10.0.0.5", "tcp", dst_port=80, eni="eni-a", direction="ingress") == ("allow", "", INTRA)
    assert decide(cfg, "10.0.0.6", "10.0.0.5", "tcp", dst_port=80, eni="eni-b", direction="ingress") == ("deny", "", "sg-b/no-http")


# ================================================================ the example configuration
def test_example_configuration_agrees_between_evaluators():
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "traces" / "example.yaml"
    pair = Pair(flowsim.load_config(example))
    assert pair.decide("10.0.1.10", "10.0.2.10", "tcp", dst_port=8080) == ("allow", OUT_ALLOW, "sg-app/from-web")
    assert pair.decide("10.0.1.66", "10.0.2.10", "tcp", dst_port=8080) == ("deny", "", "sg-app/block-bad-host")
    assert pair.decide("203.0.113.9", "10.0.1.12", "tcp", dst_port=22) == ("allow", "", "sg-web/ssh-office")
    assert pair.decide("10.0.1.10", "10.0.1.12", "tcp", dst_port=25) == ("deny", "sg-web/no-smtp-out", INTRA)
    assert pair.decide("10.0.2.70", "10.0.3.10", "tcp", dst_port=3306) == ("allow", OUT_ALLOW, "sg-db/mysql-from-app")
    assert pair.decide("10.0.3.10", "100.100.2.136", "udp", dst_port=53) == ("allow", "sg-db/dns", "")
    assert pair.decide("10.0.3.10", "8.8.8.8", "udp", dst_port=53) == ("deny", OUT_DENY, "")


def test_reference_and_engine_return_side_details():
    pair = Pair(endpoint_config())
    flow = Flow(ipaddress.ip_address(OUTSIDE), ipaddress.ip_address("10.0.1.10"), 6, 40000, 443)
    ref = ReferenceEvaluator(pair.config).evaluate(flow)
    eng = pair.engine.explain(flow).verdict
    for v in (ref, eng):
        assert v.ingress.eni == "eni-web-1" and v.ingress.direction == "ingress"
        assert v.ingress.group == "sg-web" and v.ingress.priority == 1 and v.ingress.allowed
        assert v.egress is None
