"""What the cloud refuses (docs/semantics.md §6) and malformed input, through `flowsim validate FILE`.

Every case writes a YAML file, runs the command in-process, and asserts exit
status 2, a message that names the object AND the file:line (the line is
computed from the YAML text), and that no traceback reaches the terminal.
"""
from __future__ import annotations

import json

import pytest
from helpers import line_of

import flowsim
from flowsim.cli import main


# ---------------------------------------------------------------- helpers
def run_validate(tmp_path, capsys, text: str | bytes, name: str = "net.yaml") -> tuple[int, str, str]:
    """Write the file, run `flowsim validate` on it; (exit code, stderr, path)."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err, str(path)


def assert_problem(err: str, path: str, line: int | None, subject: str, *fragments: str) -> None:
    """Some error line names `path:line: subject` and contains every fragment."""
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    candidates = [ln for ln in err.splitlines() if f"{where}{subject}" in ln]
    assert candidates, f"no problem at {where}{subject!r} in:\n{err}"
    assert any(all(f in ln for f in fragments) for ln in candidates), f"{fragments} not in {candidates}"


def assert_rejected(tmp_path, capsys, text: str, anchor: str, subject: str, *fragments: str) -> None:
    """`flowsim validate` exits 2 with a problem at the line holding `anchor`, naming `subject` and every fragment."""
    code, err, path = run_validate(tmp_path, capsys, text)
    assert code == 2
    assert_problem(err, path, line_of(text, anchor), subject, *fragments)


def assert_valid(tmp_path, capsys, text: str, name: str = "ok.yaml") -> None:
    code, err, _ = run_validate(tmp_path, capsys, text, name)
    assert code == 0, err


BASE = """\
security_groups:
  sg-web:
    type: basic
    rules:
      - {direction: ingress, protocol: tcp, ports: 443, peer: 0.0.0.0/0}
      - {direction: egress, protocol: all, peer: 0.0.0.0/0}
      - RULE
prefix_lists:
  pl-office: [203.0.113.0/24]
interfaces:
  eni-web:
    security_groups: [sg-web]
    ips: [10.0.1.10]
"""


def with_rule(rule_yaml: str) -> str:
    return BASE.replace("RULE", rule_yaml)


def test_base_configuration_is_valid(tmp_path, capsys):
    path = tmp_path / "ok.yaml"
    path.write_text(with_rule("{direction: ingress, protocol: tcp, ports: 22, peer: pl-office}"))
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "valid" in out and "Traceback" not in err


# ================================================================ rule syntax
RULE_SYNTAX = [
    ("priority-0", "{direction: ingress, protocol: tcp, ports: 80, peer: 0.0.0.0/0, priority: 0}", "priority 0 is outside 1..100"),
    ("priority-101", "{direction: ingress, protocol: tcp, ports: 80, peer: 0.0.0.0/0, priority: 101}", "priority 101 is outside 1..100"),
    ("priority-negative", "{direction: ingress, protocol: tcp, ports: 80, peer: 0.0.0.0/0, priority: -5}", "outside 1..100"),
    ("priority-text", "{direction: ingress, protocol: tcp, ports: 80, peer: 0.0.0.0/0, priority: high}", "priority must be an integer"),
    ("priority-float", "{direction: ingress, protocol: tcp, ports: 80, peer: 0.0.0.0/0, priority: 1.5}", "priority must be an integer"),
    ("ports-open-end", "{direction: ingress, protocol: tcp, ports: '80-', peer: 0.0.0.0/0}", "malformed port range"),
    ("ports-words", "{direction: ingress, protocol: tcp, ports: http, peer: 0.0.0.0/0}", "malformed port range"),
    ("ports-three", "{direction: ingress, protocol: tcp, ports: 1-2-3, peer: 0.0.0.0/0}", "malformed port range"),
    ("ports-reversed", "{direction: ingress, protocol: tcp, ports: 90-80, peer: 0.0.0.0/0}", "start after its end"),
    ("ports-zero", "{direction: ingress, protocol: udp, ports: 0, peer: 0.0.0.0/0}", "outside 1..65535"),
    ("ports-too-high", "{direction: ingress, protocol: udp, ports: 70000, peer: 0.0.0.0/0}", "outside 1..65535"),
    ("ports-slash-too-high", "{direction: ingress, protocol: udp, ports: 1/65536, peer: 0.0.0.0/0}", "outside 1..65535"),
    ("source-ports-malformed", "{direction: ingress, protocol: tcp, source_ports: a-b, peer: 0.0.0.0/0}", "malformed port range"),
    ("ports-on-icmp", "{direction: ingress, protocol: icmp, ports: 22, peer: 0.0.0.0/0}", "ports are not allowed for protocol icmp"),
    ("ports-on-icmpv6", "{direction: ingress, protocol: icmpv6, ports: 1-2, peer: '::/0'}", "ports are not allowed for protocol icmpv6"),
    ("ports-on-all", "{direction: ingress, protocol: all, ports: 1-65535, peer: 0.0.0.0/0}", "ports are not allowed for protocol all"),
    ("ports-on-gre", "{direction: ingress, protocol: gre, ports: 47, peer: 0.0.0.0/0}", "ports are not allowed for protocol gre"),
    ("ports-on-132", "{direction: ingress, protocol: 132, ports: 9, peer: 0.0.0.0/0}", "ports are not allowed for protocol 132"),
    ("source-ports-on-icmp", "{direction: ingress, protocol: icmp, source_ports: 1-2, peer: 0.0.0.0/0}",
     "source ports are not allowed for protocol icmp"),
    ("bad-cidr-prefix", "{direction: ingress, protocol: tcp, ports: 22, peer: 10.0.0.0/33}", "10.0.0.0/33"),
    ("bad-cidr-octet", "{direction: ingress, protocol: tcp, ports: 22, peer: 10.0.0.300}", "10.0.0.300"),
    ("bad-cidr-v6", "{direction: ingress, protocol: tcp, ports: 22, peer: '2001:db8::/129'}", "2001:db8::/129"),
    ("bad-cidr-word", "{direction: ingress, protocol: tcp, ports: 22, peer: everywhere}", "everywhere"),
    ("bad-local", "{direction: ingress, protocol: tcp, ports: 22, peer: 0.0.0.0/0, local: 10.0.0.0/40}", "bad CIDR '10.0.0.0/40'"),
    ("unknown-protocol", "{direction: ingress, protocol: foo, peer: 0.0.0.0/0}", "unknown protocol 'foo'"),
    ("protocol-256", "{direction: ingress, protocol: 256, peer: 0.0.0.0/0}", "outside 0..255"),
    ("unknown-direction", "{direction: sideways, protocol: tcp, ports: 22, peer: 0.0.0.0/0}", "unknown direction 'sideways'"),
    ("unknown-action", "{direction: ingress, action: maybe, protocol: tcp, ports: 22, peer: 0.0.0.0/0}", "unknown action 'maybe'"),
    ("missing-direction", "{protocol: tcp, ports: 22, peer: 0.0.0.0/0}", "missing direction"),
    ("missing-peer", "{direction: ingress, protocol: tcp, ports: 22}", "missing peer"),
    ("missing-protocol", "{direction: ingress, ports: 22, peer: 0.0.0.0/0}", "missing protocol"),
    ("unknown-key", "{direction: ingress, protocol: tcp, ports: 22, peer: 0.0.0.0/0, color: red}", "unknown key 'color'"),
    ("two-peers", "{direction: ingress, protocol: tcp, ports: 22, peer: [0.0.0.0/0, pl-office]}", "exactly one peer"),
    ("unknown-group", "{direction: ingress, protocol: tcp, ports: 22, peer: sg-nope}", "unknown security group 'sg-nope'"),
    ("unknown-prefix-list", "{direction: ingress, protocol: tcp, ports: 22, peer: pl-nope}", "unknown prefix list 'pl-nope'"),
    ("self-reference", "{direction: ingress, protocol: tcp, ports: 22, peer: sg-web}", "cannot reference itself"),
]


@pytest.mark.parametrize("rule_yaml,fragment", [c[1:] for c in RULE_SYNTAX], ids=[c[0] for c in RULE_SYNTAX])
def test_rule_problem_names_rule_and_line(tmp_path, capsys, rule_yaml, fragment):
    text = with_rule(rule_yaml)
    assert_rejected(tmp_path, capsys, text, rule_yaml, "sg-web rule #3", fragment)


def test_rule_problem_named_by_rule_id(tmp_path, capsys):
    text = with_rule("{id: web, direction: ingress, protocol: tcp, ports: 99999, peer: 0.0.0.0/0}")
    assert_rejected(tmp_path, capsys, text, "id: web", "sg-web rule web", "outside 1..65535")


def test_block_style_rule_problem_points_at_the_offending_key(tmp_path, capsys):
    text = BASE.replace("      - RULE\n", """\
      - id: ssh
        direction: ingress
        protocol: icmp
        ports: 22
        priority: 0
        peer: 10.0.0.0/8
""")
    code, err, path = run_validate(tmp_path, capsys, text)
    assert code == 2
    assert_problem(err, path, line_of(text, "ports: 22"), "sg-web rule ssh", "ports are not allowed for protocol icmp")
    assert_problem(err, path, line_of(text, "priority: 0"), "sg-web rule ssh", "priority 0 is outside 1..100")


def test_duplicate_rule_id(tmp_path, capsys):
    text = with_rule("{id: dup, direction: ingress, protocol: tcp, ports: 22, peer: 0.0.0.0/0}").replace(
        "- {direction: egress, protocol: all", "- {id: dup, direction: egress, protocol: all")
    assert_rejected(tmp_path, capsys, text, "ports: 22", "sg-web rule dup", "duplicate rule id")


def test_accepted_aliases_are_valid(tmp_path, capsys):
    text = """\
security_groups:
  sg-a:
    type: normal
    internal_policy: Drop
    rules:
      - {direction: in, action: Accept, priority: "5", protocol: TCP, ports: 22/22, peer: 10.0.0.0/8}
      - {direction: outbound, action: DROP, protocol: Udp, ports: 8000-8080, source_ports: "-1/-1", peer: 10.0.0.1}
      - {direction: ingress, protocol: ICMP, ports: -1/-1, peer: 10.0.0.0/8}
      - {direction: ingress, protocol: 6, ports: "22", peer: "2001:db8::/32"}
      - {direction: ingress, protocol: "-1", peer: 10.1.0.0/16}
  sg-b:
    type: enterprise
    rules: []
interfaces:
  eni-a: {security_groups: [sg-a], ips: [10.0.0.5], ipv6: ["2001:db8::5"]}
  eni-b: {security_groups: sg-b, ips: 10.0.0.6}
"""
    assert_valid(tmp_path, capsys, text)
    config = flowsim.load_config(tmp_path / "ok.yaml")
    rules = config.groups["sg-a"].rules
    assert [r.priority for r in rules] == [5, 1, 1, 1, 1]
    assert rules[0].ports == (22, 22) and rules[1].ports == (8000, 8080) and rules[1].action == "drop"
    assert rules[4].protocol == -1
    assert config.groups["sg-a"].internal_policy == "drop" and config.groups["sg-b"].type == "advanced"


# ================================================================ cross-object errors
TWO_TYPES = """\
security_groups:
  sg-basic: {type: basic}
  sg-adv: {type: advanced}
interfaces:
  eni-ok: {security_groups: [sg-basic], ips: [10.0.0.1]}
  eni-mixed: {security_groups: [sg-basic, sg-adv], ips: [10.0.0.2]}
"""


def test_eni_in_both_group_types(tmp_path, capsys):
    code, err, path = run_validate(tmp_path, capsys, TWO_TYPES)
    assert code == 2
    assert_problem(err, path, line_of(TWO_TYPES, "eni-mixed"), "eni-mixed", "both basic and advanced")


def test_eni_unknown_group(tmp_path, capsys):
    text = TWO_TYPES.replace("[sg-basic, sg-adv]", "[sg-ghost]")
    assert_rejected(tmp_path, capsys, text, "eni-mixed", "eni-mixed", "unknown security group 'sg-ghost'")


def test_eni_without_groups_and_listing_a_group_twice(tmp_path, capsys):
    text = TWO_TYPES.replace("[sg-basic, sg-adv]", "[sg-basic, sg-basic]").replace("eni-ok: {security_groups: [sg-basic]", "eni-ok: {security_groups: []")
    code, err, path = run_validate(tmp_path, capsys, text)
    assert code == 2
    assert_problem(err, path, line_of(text, "eni-mixed"), "eni-mixed", "listed twice")
    assert_problem(err, path, line_of(text, "eni-ok"), "eni-ok", "at least one security group")


VPCS = """\
security_groups:
  sg-a: {vpc: vpc-a}
  sg-b:
    vpc: vpc-b
    rules:
      - {direction: ingress, protocol: tcp, ports: 22, peer: sg-b2}
      - {direction: ingress, protocol: tcp, ports: 22, peer: sg-a}
  sg-b2: {vpc: vpc-b}
interfaces:
  eni-a: {vpc: vpc-a, security_groups: [sg-a], ips: [10.0.0.1]}
  eni-wrong: {vpc: vpc-b, security_groups: [sg-a], ips: [10.0.0.2]}
  eni-default: {security_groups: [sg-b], ips: [10.0.0.3]}
"""


def test_eni_and_group_in_different_vpcs(tmp_path, capsys):
    code, err, path = run_validate(tmp_path, capsys, VPCS)
    assert code == 2
    assert_problem(err, path, line_of(VPCS, "eni-wrong"), "eni-wrong", "VPC vpc-b", "sg-a", "vpc-a")
    # an ENI without vpc is in VPC "default"
    assert_problem(err, path, line_of(VPCS, "eni-default"), "eni-default", "VPC default", "sg-b")
    assert not any("eni-a:" in ln for ln in err.splitlines())


def test_group_reference_across_vpcs(tmp_path, capsys):
    code, err, path = run_validate(tmp_path, capsys, VPCS)
    assert code == 2
    assert_problem(err, path, line_of(VPCS, "peer: sg-a"), "sg-b rule #2", "sg-a", "vpc-a")
    assert "sg-b rule #1" not in err  # same-VPC reference is fine


ADVANCED_REFS = """\
security_groups:
  sg-basic:
    rules:
      - {direction: ingress, protocol: tcp, ports: 22, peer: 10.0.0.0/8}
      - {direction: ingress, protocol: tcp, ports: 3306, peer: sg-adv}
  sg-adv:
    type: advanced
    rules:
      - {direction: ingress, protocol: tcp, ports: 22, peer: 10.0.0.0/8}
      - {direction: egress, protocol: tcp, ports: 22, peer: sg-basic}
  sg-adv-open:
    type: advanced
    internal_policy: accept
interfaces:
  eni-1: {security_groups: [sg-adv], ips: [10.0.0.1]}
"""


def test_advanced_group_cannot_reference_a_group(tmp_path, capsys):
    code, err, path = run_validate(tmp_path, capsys, ADVANCED_REFS)
    assert code == 2
    assert_problem(err, path, line_of(ADVANCED_REFS, "peer: sg-basic"), "sg-adv rule #2", "advanced group cannot reference")


def test_rule_cannot_reference_an_advanced_group(tmp_path, capsys):
    code, err, path = run_validate(tmp_path, capsys, ADVANCED_REFS)
    assert code == 2
    assert_problem(err, path, line_of(ADVANCED_REFS, "peer: sg-adv}"), "sg-basic rule #2", "advanced group sg-adv cannot be referenced")


def test_advanced_group_internal_policy_accept(tmp_path, capsys):
    code, err, path = run_validate(tmp_path, capsys, ADVANCED_REFS)
    assert code == 2
    assert_problem(err, path, line_of(ADVANCED_REFS, "internal_policy: accept"), "sg-adv-open", "internal_policy must be drop")
    assert "3 problems" in err


ADDRESSES = """\
security_groups:
  sg-a: {}
  sg-b: {vpc: vpc-b}
interfaces:
  eni-1: {security_groups: [sg-a], ips: [10.0.0.1], ipv6: ["2001:db8::1"]}
  eni-2: {security_groups: [sg-a], ips: [10.0.0.2]}
  eni-3: {security_groups: [sg-b], vpc: vpc-b, ips: [10.0.0.1], ipv6: ["2001:db8::1"], ipv4_prefixes: [10.9.0.0/28]}
"""


def test_same_address_in_different_vpcs_is_valid(tmp_path, capsys):
    assert_valid(tmp_path, capsys, ADDRESSES)


@pytest.mark.parametrize("eni2,fragment", [
    ("ips: [10.0.0.2, 10.0.0.1]", "10.0.0.1"),
    ("ips: [10.0.0.2], ipv6: ['2001:db8::1']", "2001:db8::1"),
    ("ips: [10.0.0.2], ipv4_prefixes: [10.0.0.0/30]", "10.0.0."),
    ("ips: [10.0.0.2], ipv6_prefixes: ['2001:db8::/64']", "2001:db8::"),
], ids=["ipv4", "ipv6", "ipv4-prefix-overlap", "ipv6-prefix-overlap"])
def test_two_enis_of_one_vpc_owning_one_address(tmp_path, capsys, eni2, fragment):
    text = ADDRESSES.replace("ips: [10.0.0.2]}", eni2 + "}")
    code, err, path = run_validate(tmp_path, capsys, text)
    assert code == 2
    lines = [ln for ln in err.splitlines() if "also owned by" in ln]
    assert lines, err
    named = {line_of(text, "eni-1"): "eni-1", line_of(text, "eni-2"): "eni-2"}
    assert any(f"{path}:{n}: {e}" in ln and fragment in ln and ({"eni-1", "eni-2"} - {e}).pop() in ln
               for ln in lines for n, e in named.items()), err
    assert "eni-3" not in err


def test_prefix_overlapping_a_primary_address(tmp_path, capsys):
    text = ADDRESSES.replace("ips: [10.0.0.2]}", "ips: [10.0.5.5], ipv4_prefixes: [10.0.0.0/28]}")
    code, err, path = run_validate(tmp_path, capsys, text)
    assert code == 2
    assert "10.0.0.1" in err and "eni-1" in err and "eni-2" in err


def test_bad_eni_addresses(tmp_path, capsys):
    text = """\
security_groups:
  sg-a: {}
interfaces:
  eni-1:
    security_groups: [sg-a]
    ips:
      - 10.0.0.1
      - 10.0.0.300
    ipv6: [10.0.0.9]
    ipv4_prefixes: [10.0.0.0/33]
"""
    code, err, path = run_validate(tmp_path, capsys, text)
    assert code == 2
    assert_problem(err, path, line_of(text, "10.0.0.300"), "eni-1", "10.0.0.300")
    assert_problem(err, path, line_of(text, "ipv6:"), "eni-1", "not an IPv6 address")
    assert_problem(err, path, line_of(text, "ipv4_prefixes"), "eni-1", "10.0.0.0/33")


def test_bad_prefix_list_entry(tmp_path, capsys):
    text = BASE.replace("pl-office: [203.0.113.0/24]", "pl-office:\n    - 203.0.113.0/24\n    - 203.0.113.0/99").replace("RULE", "{direction: ingress, protocol: tcp, ports: 22, peer: pl-office}")
    assert_rejected(tmp_path, capsys, text, "203.0.113.0/99", "pl-office entry #2", "bad CIDR")


# ================================================================ quotas, default and override
def groups_text(n_groups: int, limits: str = "") -> str:
    groups = "".join(f"  sg-{i}: {{}}\n" for i in range(n_groups))
    names = ", ".join(f"sg-{i}" for i in range(n_groups))
    return f"{limits}security_groups:\n{groups}interfaces:\n  eni-1: {{security_groups: [{names}], ips: [10.0.0.1]}}\n"


def test_quota_groups_per_eni_default(tmp_path, capsys):
    assert_valid(tmp_path, capsys, groups_text(10))
    text = groups_text(11)
    assert_rejected(tmp_path, capsys, text, "eni-1", "eni-1", "11 security groups", "quota is 10", "groups_per_eni")


def test_quota_groups_per_eni_override(tmp_path, capsys):
    assert_valid(tmp_path, capsys, groups_text(11, "limits: {groups_per_eni: 11}\n"))
    text = groups_text(3, "limits:\n  groups_per_eni: 2\n")
    assert_rejected(tmp_path, capsys, text, "eni-1", "eni-1", "quota is 2")


def rules_text(counts: list[int], limits: str = "", extra_rules: str = "", prefix_lists: str = "") -> str:
    out = [limits, "security_groups:\n"]
    for g, n in enumerate(counts):
        out.append(f"  sg-{g}:\n    rules:\n")
        out.extend(f"      - {{direction: ingress, protocol: tcp, ports: {p + 1}, peer: 10.0.0.0/8}}\n" for p in range(n))
        if g == 0:
            out.append(extra_rules)
    out.append(prefix_lists)
    names = ", ".join(f"sg-{g}" for g in range(len(counts)))
    out.append(f"interfaces:\n  eni-1: {{security_groups: [{names}], ips: [10.0.0.1]}}\n")
    return "".join(out)


def test_quota_rules_per_eni_default(tmp_path, capsys):
    assert_valid(tmp_path, capsys, rules_text([500, 500]))
    text = rules_text([500, 501])
    assert_rejected(tmp_path, capsys, text, "eni-1", "eni-1", "1001 rules", "quota is 1000", "rules_per_eni")


def test_quota_rules_per_eni_counts_both_directions(tmp_path, capsys):
    text = rules_text([2], "limits: {rules_per_eni: 3}\n",
                      extra_rules="      - {direction: egress, protocol: all, peer: 0.0.0.0/0}\n"
                                  "      - {direction: egress, protocol: udp, ports: 53, peer: 0.0.0.0/0}\n")
    assert_rejected(tmp_path, capsys, text, "eni-1", "eni-1", "4 rules", "quota is 3")


def test_quota_rules_per_eni_override(tmp_path, capsys):
    assert_valid(tmp_path, capsys, rules_text([500, 501], "limits: {rules_per_eni: 1001}\n"))


def pl_rules_text(n_pl_rules: int, max_entries: int, plain_rules: int, limits: str = "") -> str:
    extra = "".join(f"      - {{direction: ingress, protocol: tcp, ports: {2000 + i}, peer: pl-big}}\n" for i in range(n_pl_rules))
    pls = f"prefix_lists:\n  pl-big: {{entries: [203.0.113.0/24], max_entries: {max_entries}}}\n"
    return rules_text([plain_rules], limits, extra, pls)


def test_quota_rules_per_eni_counts_prefix_list_as_max_entries(tmp_path, capsys):
    # 5 rules naming a list of max_entries 200 weigh 1000; one plain rule more is one too many
    assert_valid(tmp_path, capsys, pl_rules_text(5, 200, 0))
    text = pl_rules_text(5, 200, 1)
    assert_rejected(tmp_path, capsys, text, "eni-1", "eni-1", "1001 rules", "quota is 1000")


def test_quota_rules_per_eni_prefix_list_with_override(tmp_path, capsys):
    assert_valid(tmp_path, capsys, pl_rules_text(1, 8, 2, "limits: {rules_per_eni: 10}\n"))
    text = pl_rules_text(1, 9, 2, "limits: {rules_per_eni: 10}\n")
    assert_rejected(tmp_path, capsys, text, "eni-1", "eni-1", "11 rules", "quota is 10")


def group_refs_text(n: int, limits: str = "") -> str:
    rules = "".join(f"      - {{direction: ingress, protocol: tcp, ports: {p + 1}, peer: sg-other}}\n" for p in range(n))
    return (f"{limits}security_groups:\n  sg-other: {{}}\n  sg-refs:\n    rules:\n{rules}"
            "interfaces:\n  eni-1: {security_groups: [sg-refs], ips: [10.0.0.1]}\n")


def test_quota_group_rules_per_group_default(tmp_path, capsys):
    assert_valid(tmp_path, capsys, group_refs_text(20))
    text = group_refs_text(21)
    assert_rejected(tmp_path, capsys, text, "sg-refs:", "sg-refs", "21 rules that reference", "quota is 20", "group_rules_per_group")


def test_quota_group_rules_per_group_override(tmp_path, capsys):
    assert_valid(tmp_path, capsys, group_refs_text(21, "limits: {group_rules_per_group: 21}\n"))
    text = group_refs_text(3, "limits: {group_rules_per_group: 2}\n")
    assert_rejected(tmp_path, capsys, text, "sg-refs:", "sg-refs", "quota is 2")


def addresses_text(n: int, limits: str = "") -> str:
    ips = ", ".join(f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}" for i in range(1, n + 1))
    return f"{limits}security_groups:\n  sg-big: {{}}\ninterfaces:\n  eni-1:\n    security_groups: [sg-big]\n    ips: [{ips}]\n"


def test_quota_addresses_per_basic_group_default(tmp_path, capsys):
    assert_valid(tmp_path, capsys, addresses_text(6000))
    text = addresses_text(6001)
    assert_rejected(tmp_path, capsys, text, "sg-big", "sg-big", "6001 private addresses", "quota is 6000", "addresses_per_basic_group")


def test_quota_addresses_per_basic_group_override(tmp_path, capsys):
    assert_valid(tmp_path, capsys, addresses_text(6001, "limits: {addresses_per_basic_group: 6001}\n"))


def test_quota_addresses_count_every_kind_across_members(tmp_path, capsys):
    # eni-1: one IPv4, one IPv6, one IPv4 prefix, one IPv6 prefix (each counts 1); eni-2: two IPv4: 6 in sg-a
    body = ("security_groups:\n  sg-a: {}\n  sg-adv: {type: advanced}\ninterfaces:\n"
            "  eni-1: {security_groups: [sg-a], ips: [10.0.0.1], ipv6: ['2001:db8::1'], ipv4_prefixes: [10.1.0.0/28], ipv6_prefixes: ['2001:db8:1::/80']}\n"
            "  eni-2: {security_groups: [sg-a], ips: [10.0.0.2, 10.0.0.3]}\n"
            "  eni-3: {security_groups: [sg-adv], ips: [10.0.0.4, 10.0.0.5, 10.0.0.6, 10.0.0.7, 10.0.0.8, 10.0.0.9]}\n")
    assert_valid(tmp_path, capsys, "limits: {addresses_per_basic_group: 6}\n" + body)
    text = "limits: {addresses_per_basic_group: 5}\n" + body
    code, err, path = run_validate(tmp_path, capsys, text)
    assert code == 2
    assert_problem(err, path, line_of(text, "sg-a:"), "sg-a", "6 private addresses", "quota is 5")
    assert "sg-adv" not in err  # advanced groups count interfaces, not addresses


def advanced_text(n: int, limits: str = "") -> str:
    enis = "".join(f"  eni-{i}: {{security_groups: [sg-adv], ips: [10.0.0.{i + 1}]}}\n" for i in range(n))
    return f"{limits}security_groups:\n  sg-adv: {{type: advanced}}\ninterfaces:\n{enis}"


def test_quota_enis_per_advanced_group_default():
    # 65,537 ENIs: built as a mapping (a YAML file this size takes ~20 s to parse)
    doc = {"security_groups": {"sg-adv": {"type": "advanced"}},
           "interfaces": {f"eni-{i}": {"security_groups": ["sg-adv"]} for i in range(65537)}}
    with pytest.raises(flowsim.ConfigError) as info:
        flowsim.load_config(doc)
    assert any(p.subject == "sg-adv" and "65537 interfaces" in p.message and "65536" in p.message for p in info.value.problems)
    del doc["interfaces"]["eni-0"]
    flowsim.load_config(doc)


def test_quota_enis_per_advanced_group_override(tmp_path, capsys):
    assert_valid(tmp_path, capsys, advanced_text(3, "limits: {enis_per_advanced_group: 3}\n"))
    text = advanced_text(3, "limits: {enis_per_advanced_group: 2}\n")
    assert_rejected(tmp_path, capsys, text, "sg-adv:", "sg-adv", "3 interfaces", "quota is 2", "enis_per_advanced_group")


def prefix_list_text(n: int, max_entries: int | None = None, limits: str = "") -> str:
    entries = ", ".join(f"10.{i // 256}.{i % 256}.0/24" for i in range(n))
    pl = f"{{entries: [{entries}], max_entries: {max_entries}}}" if max_entries is not None else f"[{entries}]"
    return (f"{limits}security_groups:\n  sg-a: {{rules: [{{direction: ingress, protocol: all, peer: pl-big}}]}}\n"
            f"prefix_lists:\n  pl-big: {pl}\ninterfaces:\n  eni-1: {{security_groups: [sg-a], ips: [192.168.0.1]}}\n")


def test_quota_entries_per_prefix_list_default(tmp_path, capsys):
    assert_valid(tmp_path, capsys, prefix_list_text(200))
    text = prefix_list_text(201)
    assert_rejected(tmp_path, capsys, text, "pl-big:", "pl-big", "201 entries", "quota is 200", "entries_per_prefix_list")


def test_quota_entries_per_prefix_list_counts_max_entries(tmp_path, capsys):
    text = prefix_list_text(1, max_entries=201)
    assert_rejected(tmp_path, capsys, text, "pl-big:", "pl-big", "201 entries", "quota is 200")


def test_quota_entries_per_prefix_list_override(tmp_path, capsys):
    assert_valid(tmp_path, capsys, prefix_list_text(201, limits="limits: {entries_per_prefix_list: 201}\n"))
    text = prefix_list_text(3, limits="limits: {entries_per_prefix_list: 2}\n")
    assert_rejected(tmp_path, capsys, text, "pl-big:", "pl-big", "quota is 2")


def test_prefix_list_more_entries_than_max_entries(tmp_path, capsys):
    text = prefix_list_text(3, max_entries=2)
    assert_rejected(tmp_path, capsys, text, "pl-big:", "pl-big", "3 entries but max_entries is 2")


def test_bad_limits(tmp_path, capsys):
    text = "limits:\n  groups_per_eni: -1\n  rules_per_eni: lots\n  speed: 9\n" + groups_text(1)
    code, err, path = run_validate(tmp_path, capsys, text)
    assert code == 2
    assert_problem(err, path, line_of(text, "groups_per_eni: -1"), "limits", "groups_per_eni")
    assert_problem(err, path, line_of(text, "rules_per_eni"), "limits", "rules_per_eni")
    assert_problem(err, path, line_of(text, "speed"), "limits", "unknown quota 'speed'")


# ================================================================ every problem in one run
MANY = """\
limits: {groups_per_eni: 1}
security_groups:
  sg-web:
    rules:
      - {direction: ingress, protocol: tcp, ports: 80, peer: 0.0.0.0/0, priority: 0}
      - {direction: ingress, protocol: icmp, ports: 22, peer: 10.0.0.0/8}
      - {direction: ingress, protocol: tcp, ports: 22, peer: sg-web}
      - {direction: ingress, protocol: tcp, ports: 3306, peer: sg-adv}
      - {direction: ingress, protocol: bogus, peer: pl-missing}
  sg-adv:
    type: advanced
    internal_policy: accept
    rules:
      - {direction: egress, protocol: tcp, ports: 22, peer: sg-web}
interfaces:
  eni-1: {security_groups: [sg-web, sg-adv], ips: [10.0.0.1]}
  eni-2: {security_groups: [sg-web], ips: [10.0.0.1], extra: 1}
"""


def test_many_problems_reported_in_one_run(tmp_path, capsys):
    code, err, path = run_validate(tmp_path, capsys, MANY)
    assert code == 2
    expected = [
        ("priority: 0", "sg-web rule #1", "priority 0"),
        ("ports: 22, peer: 10.0.0.0/8", "sg-web rule #2", "ports are not allowed"),
        ("ports: 22, peer: sg-web", "sg-web rule #3", "itself"),
        ("peer: sg-adv", "sg-web rule #4", "advanced group sg-adv"),
        ("protocol: bogus", "sg-web rule #5", "unknown protocol"),
        ("protocol: bogus", "sg-web rule #5", "pl-missing"),
        ("internal_policy: accept", "sg-adv", "internal_policy"),
        ("direction: egress", "sg-adv rule #1", "cannot reference"),
        ("eni-1:", "eni-1", "both basic and advanced"),
        ("eni-1:", "eni-1", "quota is 1"),
        ("eni-2:", "eni-2", "unknown key 'extra'"),
        ("10.0.0.1], extra", "eni-2", "also owned by eni-1"),
    ]
    for needle, subject, fragment in expected:
        assert_problem(err, path, line_of(MANY, needle), subject, fragment)
    assert f"{len(err.splitlines()) - 1} problems" in err


# ================================================================ malformed files
@pytest.mark.parametrize("content", [
    "security_groups: [unclosed\n",
    "security_groups:\n  sg-a: {rules: [}\n",
    "security_groups:\n\tsg-a: {}\n",
    "a: b: c\n",
    "key: 'unterminated\n",
], ids=["unclosed-list", "bad-flow", "tab-indent", "nested-colon", "unterminated-quote"])
def test_bad_yaml(tmp_path, capsys, content):
    code, err, path = run_validate(tmp_path, capsys, content)
    assert code == 2
    assert f"{path}:" in err and "invalid YAML" in err


def test_bad_yaml_names_the_line(tmp_path, capsys):
    text = "security_groups:\n  sg-a: {}\ninterfaces:\n  eni-1: {security_groups: [sg-a]\n"
    code, err, path = run_validate(tmp_path, capsys, text)
    assert code == 2
    assert f"{path}:5: invalid YAML" in err or f"{path}:4: invalid YAML" in err


@pytest.mark.parametrize("content,needle,subject,fragment", [
    ("security_groups:\n  sg-a:\n    rules: every-rule\ninterfaces: {}\n", "rules: every-rule", "sg-a", "rules must be a list"),
    ("security_groups:\n  sg-a:\n    rules:\n      - {direction: ingress, protocol: tcp, ports: 22, peer: 0.0.0.0/0, priority: high}\n",
     "priority: high", "sg-a rule #1", "priority must be an integer"),
    ("security_groups:\n  - sg-a\n  - sg-b\n", "security_groups:", "security_groups", "must be a mapping"),
    ("security_groups: {}\ninterfaces: eni-1\n", "interfaces:", "interfaces", "must be a mapping"),
    ("security_groups:\n  sg-a: 42\n", "sg-a:", "sg-a", "must be a mapping"),
    ("security_groups:\n  sg-a: {}\ninterfaces:\n  eni-1: [sg-a]\n", "eni-1:", "eni-1", "must be a mapping"),
    ("security_groups:\n  sg-a: {}\ninterfaces:\n  eni-1: {security_groups: {sg-a: 1}, ips: [10.0.0.1]}\n", "eni-1:", "eni-1", "security_groups must be a list"),
    ("security_groups:\n  sg-a: {rules: [{direction: ingress, protocol: tcp, ports: [22], peer: 0.0.0.0/0}]}\n",
     "ports: [22]", "sg-a rule #1", "malformed port range"),
    ("security_groups:\n  sg-a: {rules: [{direction: ingress, protocol: [tcp], peer: 0.0.0.0/0}]}\n",
     "protocol: [tcp]", "sg-a rule #1", "unknown protocol"),
    ("security_groups:\n  sg-a: {rules: [{direction: ingress, protocol: tcp, peer: {cidr: 0.0.0.0/0}}]}\n",
     "peer: {cidr", "sg-a rule #1", "peer"),
], ids=["rules-as-string", "priority-high", "groups-as-list", "interfaces-as-string", "group-as-number", "eni-as-list",
        "eni-groups-as-mapping", "ports-as-list", "protocol-as-list", "peer-as-mapping"])
def test_wrong_types(tmp_path, capsys, content, needle, subject, fragment):
    code, err, path = run_validate(tmp_path, capsys, content)
    assert code == 2
    assert_problem(err, path, line_of(content, needle), subject, fragment)


def test_rules_as_string_names_the_line(tmp_path, capsys):
    content = "security_groups:\n  sg-a:\n    rules: every-rule\n"
    code, err, path = run_validate(tmp_path, capsys, content)
    assert code == 2
    assert_problem(err, path, 3, "sg-a", "")


def test_wrong_type_messages_use_plain_words(tmp_path, capsys):
    content = "security_groups:\n  - sg-a\ninterfaces:\n  eni-1: {security_groups: {a: 1}}\n"
    code, err, path = run_validate(tmp_path, capsys, content)
    assert code == 2
    assert "_Line" not in err


def test_top_level_not_a_mapping(tmp_path, capsys):
    for content in ("- a\n- b\n", "just a string\n", "42\n"):
        code, err, path = run_validate(tmp_path, capsys, content)
        assert code == 2 and path in err and "must be a mapping" in err


@pytest.mark.parametrize("content,needle,subject", [
    ("security_groups: {}\ninterfaces: {}\nsecurity_group: {}\n", "security_group:", "configuration"),
    ("security_groups:\n  sg-a: {type: basic, colour: blue}\n", "sg-a:", "sg-a"),
    ("security_groups:\n  sg-a:\n    rules:\n      - direction: ingress\n        protocol: tcp\n        port: 22\n        peer: 0.0.0.0/0\n",
     "port: 22", "sg-a rule #1"),
    ("security_groups:\n  sg-a: {}\ninterfaces:\n  eni-1:\n    security_groups: [sg-a]\n    ip: [10.0.0.1]\n", "ip: [", "eni-1"),
    ("security_groups: {}\nprefix_lists:\n  pl-a: {entries: [10.0.0.0/8], size: 3}\n", "pl-a:", "pl-a"),
], ids=["top", "group", "rule", "eni", "prefix-list"])
def test_unknown_keys(tmp_path, capsys, content, needle, subject):
    code, err, path = run_validate(tmp_path, capsys, content)
    assert code == 2
    assert_problem(err, path, line_of(content, needle), subject, "unknown key")


@pytest.mark.parametrize("missing", ["direction", "peer", "protocol"])
def test_missing_rule_keys(tmp_path, capsys, missing):
    fields = {"direction": "ingress", "protocol": "tcp", "peer": "0.0.0.0/0"}
    del fields[missing]
    body = "".join(f"        {k}: {v}\n" for k, v in fields.items())
    text = f"security_groups:\n  sg-a:\n    rules:\n      - id: r1\n{body}        ports: 22\n" if missing != "protocol" else \
        f"security_groups:\n  sg-a:\n    rules:\n      - id: r1\n{body}"
    assert_rejected(tmp_path, capsys, text, "id: r1", "sg-a rule r1", f"missing {missing}")


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "---\n", "~\n"], ids=["empty", "blank", "comment", "marker", "null"])
def test_empty_file(tmp_path, capsys, content):
    code, err, path = run_validate(tmp_path, capsys, content)
    assert code == 2
    assert path in err and "empty" in err


@pytest.mark.parametrize("content", [b"\x00\x01\x02\x03garbage\xff", b"\xff\xfe\xfa not utf-8", bytes(range(256)) * 4,
                                     b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"],
                         ids=["nul-bytes", "not-utf8", "all-bytes", "png-header"])
def test_binary_garbage(tmp_path, capsys, content):
    code, err, path = run_validate(tmp_path, capsys, content)
    assert code == 2
    assert path in err


def test_directory(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert str(tmp_path) in err and "Traceback" not in out + err


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main(["validate", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert str(missing) in err and "Traceback" not in out + err


@pytest.mark.parametrize("content,needle,line", [
    ("security_groups:\n  sg-a: {}\n  sg-a: {}\n", "sg-a", 3),
    ("security_groups:\n  sg-a:\n    rules:\n      - {direction: ingress, direction: egress, protocol: tcp, peer: 0.0.0.0/0}\n", "direction", 4),
    ("security_groups:\n  sg-a: {}\ninterfaces:\n  eni-1: {security_groups: [sg-a]}\n  eni-1: {security_groups: [sg-a]}\n", "eni-1", 5),
    ("security_groups: {}\nsecurity_groups: {}\n", "security_groups", 2),
], ids=["group", "rule-field", "eni", "top"])
def test_duplicate_keys(tmp_path, capsys, content, needle, line):
    code, err, path = run_validate(tmp_path, capsys, content)
    assert code == 2
    assert f"{path}:{line}: " in err and f"duplicate key '{needle}'" in err


def test_yaml_python_tags_are_not_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    content = f"security_groups:\n  sg-a: !!python/object/apply:os.system ['touch {marker}']\n"
    code, err, path = run_validate(tmp_path, capsys, content)
    assert code == 2 and path in err
    assert not marker.exists()


def test_json_configuration(tmp_path, capsys):
    doc = {"security_groups": {"sg-a": {"rules": [{"direction": "ingress", "protocol": "tcp", "ports": "22", "peer": "10.0.0.0/8"}]}},
           "interfaces": {"eni-1": {"security_groups": ["sg-a"], "ips": ["10.0.0.1"]}}}
    assert_valid(tmp_path, capsys, json.dumps(doc, indent=2), "net.json")
    doc["security_groups"]["sg-a"]["rules"][0]["priority"] = 0
    text = json.dumps(doc, indent=2)
    code, err, path = run_validate(tmp_path, capsys, text, "bad.json")
    assert code == 2
    assert_problem(err, path, line_of(text, '"priority"'), "sg-a rule #1", "priority 0")
    code, err, path = run_validate(tmp_path, capsys, '{"security_groups": {\n  "sg-a": {"rules": [}}', "broken.json")
    assert code == 2 and path in err


def test_load_config_raises_config_error_with_every_problem():
    doc = {"security_groups": {"sg-a": {"rules": [{"direction": "ingress", "protocol": "icmp", "ports": "22", "peer": "sg-b"},
                                                  {"direction": "up", "protocol": "tcp", "peer": "0.0.0.0/0"}]}},
           "interfaces": {"eni-1": {"security_groups": ["sg-a", "sg-z"]}}}
    with pytest.raises(flowsim.ConfigError) as info:
        flowsim.load_config(doc)
    subjects = [p.subject for p in info.value.problems]
    assert subjects.count("sg-a rule #1") == 2 and "sg-a rule #2" in subjects and "eni-1" in subjects
