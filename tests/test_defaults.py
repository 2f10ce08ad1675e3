"""Every row of the seed's default-rule tables (docs/semantics.md §2), one named test each.

Each test evaluates with both the reference evaluator and the compiled engine
(`helpers.decide` asserts they agree on the verdict and both deciding rules).
"""
from __future__ import annotations

from helpers import decide, egress, eni, ingress, net, sg

INTRA = "default:intra-group-allow"
IN_DENY = "default:inbound-deny"
OUT_ALLOW = "default:outbound-allow"
OUT_DENY = "default:outbound-deny"

A, B = "10.0.1.10", "10.0.1.20"  # two members of the group under test
OUTSIDE = "203.0.113.5"  # no modelled ENI owns it


def two_members(group: dict, extra_groups: dict | None = None) -> dict:
    return net({"sg-x": group, **(extra_groups or {})},
               {"eni-a": eni("sg-x", ips=[A]), "eni-b": eni("sg-x", ips=[B])})


# ================================================================ basic, internal interconnectivity (accept)
def test_basic_interconnect_inbound_1_fellow_member_allowed_before_custom_rules():
    # even a custom drop-everything at priority 1 does not block a fellow member
    cfg = two_members(sg(ingress("all", "0.0.0.0/0", action="drop", priority=1, id="drop-all"), policy="accept"))
    assert decide(cfg, A, B, "tcp", dst_port=22) == ("allow", OUT_ALLOW, INTRA)
    assert decide(cfg, A, B, "udp", dst_port=53) == ("allow", OUT_ALLOW, INTRA)
    assert decide(cfg, A, B, "icmp") == ("allow", OUT_ALLOW, INTRA)
    # a drop that names the sender through another group is overridden too
    cfg = net({"sg-x": sg(ingress("tcp", "sg-tag", "22", action="drop", id="no-ssh-from-tagged")), "sg-tag": sg()},
              {"eni-a": eni("sg-x", "sg-tag", ips=[A]), "eni-b": eni("sg-x", ips=[B])})
    assert decide(cfg, A, B, "tcp", dst_port=22) == ("allow", OUT_ALLOW, INTRA)


def test_basic_interconnect_is_the_default_policy():
    cfg = two_members(sg())  # no internal_policy given
    assert decide(cfg, B, A, "tcp", dst_port=3306) == ("allow", OUT_ALLOW, INTRA)


def test_basic_interconnect_inbound_2_custom_rule_decides():
    cfg = two_members(sg(ingress("tcp", "0.0.0.0/0", "443", id="https"),
                         ingress("tcp", "203.0.113.0/24", "22", action="drop", id="no-ssh")))
    assert decide(cfg, OUTSIDE, B, "tcp", dst_port=443) == ("allow", "", "sg-x/https")
    assert decide(cfg, OUTSIDE, B, "tcp", dst_port=22) == ("deny", "", "sg-x/no-ssh")


def test_basic_interconnect_inbound_3_otherwise_deny():
    cfg = two_members(sg(ingress("tcp", "0.0.0.0/0", "443", id="https")))
    assert decide(cfg, OUTSIDE, B, "tcp", dst_port=80) == ("deny", "", IN_DENY)
    assert decide(cfg, OUTSIDE, B, "udp", dst_port=443) == ("deny", "", IN_DENY)


def test_basic_interconnect_inbound_3_non_member_eni_is_denied():
    cfg = net({"sg-x": sg(), "sg-other": sg()},
              {"eni-a": eni("sg-x", ips=[A]), "eni-c": eni("sg-other", ips=["10.0.1.30"])})
    assert decide(cfg, "10.0.1.30", A, "tcp", dst_port=22) == ("deny", OUT_ALLOW, IN_DENY)


def test_basic_interconnect_outbound_1_custom_rule_decides():
    cfg = two_members(sg(egress("tcp", "0.0.0.0/0", "25", action="drop", id="no-smtp"),
                         egress("udp", "0.0.0.0/0", "53", id="dns")))
    assert decide(cfg, A, OUTSIDE, "tcp", dst_port=25) == ("deny", "sg-x/no-smtp", "")
    assert decide(cfg, A, OUTSIDE, "udp", dst_port=53) == ("allow", "sg-x/dns", "")


def test_basic_interconnect_outbound_2_otherwise_allow():
    cfg = two_members(sg(egress("tcp", "0.0.0.0/0", "25", action="drop", id="no-smtp")))
    assert decide(cfg, A, OUTSIDE, "tcp", dst_port=443) == ("allow", OUT_ALLOW, "")
    assert decide(cfg, A, OUTSIDE, "icmp") == ("allow", OUT_ALLOW, "")


# ================================================================ basic, internal isolation (drop)
def test_basic_isolation_inbound_1_custom_rule_decides():
    cfg = two_members(sg(ingress("tcp", "10.0.1.0/24", "22", id="ssh-from-peers"),
                         ingress("tcp", "0.0.0.0/0", "443", id="https"),
                         ingress("tcp", "203.0.113.0/24", "8080", action="drop", id="no-8080"),
                         policy="drop"))
    assert decide(cfg, A, B, "tcp", dst_port=22) == ("allow", OUT_ALLOW, "sg-x/ssh-from-peers")
    assert decide(cfg, A, B, "tcp", dst_port=443) == ("allow", OUT_ALLOW, "sg-x/https")
    assert decide(cfg, OUTSIDE, B, "tcp", dst_port=8080) == ("deny", "", "sg-x/no-8080")


def test_basic_isolation_inbound_1_custom_drop_blocks_fellow_member():
    cfg = two_members(sg(ingress("all", "10.0.1.0/24", action="drop", id="no-peers"), policy="drop"))
    assert decide(cfg, A, B, "udp", dst_port=53) == ("deny", OUT_ALLOW, "sg-x/no-peers")


def test_basic_isolation_inbound_1_group_peer_rule_admits_fellow_member():
    # a fellow member let in by a rule naming a group that only the sender carries
    cfg = net({"sg-x": sg(ingress("tcp", "sg-tag", "22", id="ssh-from-tagged"), policy="drop"), "sg-tag": sg(policy="drop")},
              {"eni-a": eni("sg-x", "sg-tag", ips=[A]), "eni-b": eni("sg-x", ips=[B])})
    assert decide(cfg, A, B, "tcp", dst_port=22) == ("allow", OUT_ALLOW, "sg-x/ssh-from-tagged")
    assert decide(cfg, B, A, "tcp", dst_port=22) == ("deny", OUT_ALLOW, IN_DENY)


def test_basic_isolation_inbound_2_otherwise_deny_members_not_allowed_by_default():
    cfg = two_members(sg(policy="drop"))
    assert decide(cfg, A, B, "tcp", dst_port=22) == ("deny", OUT_ALLOW, IN_DENY)
    assert decide(cfg, B, A, "icmp") == ("deny", OUT_ALLOW, IN_DENY)
    assert decide(cfg, OUTSIDE, A, "tcp", dst_port=22) == ("deny", "", IN_DENY)


def test_basic_isolation_outbound_1_custom_rule_decides():
    cfg = two_members(sg(egress("tcp", "0.0.0.0/0", "25", action="drop", id="no-smtp"),
                         egress("tcp", "10.0.1.0/24", "5432", action="drop", id="no-pg-to-peers"),
                         policy="drop"))
    assert decide(cfg, A, OUTSIDE, "tcp", dst_port=25) == ("deny", "sg-x/no-smtp", "")
    assert decide(cfg, A, B, "tcp", dst_port=5432) == ("deny", "sg-x/no-pg-to-peers", IN_DENY)


def test_basic_isolation_outbound_2_otherwise_allow():
    cfg = two_members(sg(policy="drop"))
    assert decide(cfg, A, OUTSIDE, "tcp", dst_port=443) == ("allow", OUT_ALLOW, "")
    assert decide(cfg, A, OUTSIDE, "gre") == ("allow", OUT_ALLOW, "")


# ================================================================ advanced (always isolation)
def test_advanced_inbound_1_custom_rule_decides():
    cfg = two_members(sg(ingress("tcp", "10.0.1.0/24", "22", id="ssh-from-subnet"),
                         ingress("tcp", "0.0.0.0/0", "23", action="drop", id="no-telnet"),
                         egress("all", "0.0.0.0/0", id="out-any"), type="advanced"))
    assert decide(cfg, A, B, "tcp", dst_port=22) == ("allow", "sg-x/out-any", "sg-x/ssh-from-subnet")
    assert decide(cfg, OUTSIDE, B, "tcp", dst_port=23) == ("deny", "", "sg-x/no-telnet")


def test_advanced_inbound_2_otherwise_deny_members_isolated():
    cfg = two_members(sg(egress("all", "0.0.0.0/0", id="out-any"), type="advanced"))
    assert decide(cfg, A, B, "tcp", dst_port=22) == ("deny", "sg-x/out-any", IN_DENY)
    assert decide(cfg, OUTSIDE, B, "icmp") == ("deny", "", IN_DENY)


def test_advanced_outbound_1_custom_rule_decides():
    cfg = two_members(sg(egress("udp", "100.100.2.136", "53", id="dns"),
                         egress("tcp", "0.0.0.0/0", "25", action="drop", id="no-smtp"),
                         egress("tcp", "0.0.0.0/0", id="tcp-out", priority=2), type="advanced"))
    assert decide(cfg, A, "100.100.2.136", "udp", dst_port=53) == ("allow", "sg-x/dns", "")
    assert decide(cfg, A, OUTSIDE, "tcp", dst_port=25) == ("deny", "sg-x/no-smtp", "")
    assert decide(cfg, A, OUTSIDE, "tcp", dst_port=443) == ("allow", "sg-x/tcp-out", "")


def test_advanced_outbound_2_otherwise_deny():
    cfg = two_members(sg(egress("udp", "100.100.2.136", "53", id="dns"), type="advanced"))
    assert decide(cfg, A, OUTSIDE, "tcp", dst_port=443) == ("deny", OUT_DENY, "")
    assert decide(cfg, A, B, "tcp", dst_port=443) == ("deny", OUT_DENY, IN_DENY)
    assert decide(cfg, A, "100.100.2.136", "udp", dst_port=54) == ("deny", OUT_DENY, "")


def test_advanced_enterprise_alias_has_the_same_defaults():
    cfg = two_members({"type": "enterprise", "rules": []})
    assert decide(cfg, A, B, "tcp", dst_port=22) == ("deny", OUT_DENY, IN_DENY)
    cfg = two_members({"type": "normal", "rules": []})
    assert decide(cfg, A, B, "tcp", dst_port=22) == ("allow", OUT_ALLOW, INTRA)
