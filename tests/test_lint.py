"""Hand-built lint cases for every finding kind (Alibaba's pooled groups, drop-wins-ties, default rules), the
real configurations after import, and the lint/search commands."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("dd.cudd")

from helpers import egress, eni, ingress, net, sg  # noqa: E402
from test_analysis_exact import check_exact  # noqa: E402

import flowsim  # noqa: E402
from flowsim.analysis.lint import lint  # noqa: E402
from flowsim.analysis.search import Query, search  # noqa: E402
from flowsim.cli import main  # noqa: E402
from flowsim.importers import import_config  # noqa: E402


def findings(mapping) -> set[tuple[str, str, tuple[str, ...]]]:
    """(kind, rule, ENIs) of every finding, after checking the whole report against brute force."""
    config = flowsim.load_config(mapping)
    check_exact(config)
    return {(f.kind, f.rule, f.enis) for f in lint(config).findings}


def one(mapping, kind: str, rule: str):
    (f,) = [f for f in lint(flowsim.load_config(mapping)).findings if f.kind == kind and f.rule == rule]
    return f


PAIR = {"eni-1": eni("sg-a", ips=["10.0.0.1"]), "eni-2": eni("sg-a", ips=["10.0.0.2"])}


def test_drop_aimed_at_a_fellow_member_is_taken_by_the_intra_group_allow():
    cfg = net({"sg-a": sg(ingress(peer="10.0.0.2", action="drop", id="no-peer"))}, PAIR)
    assert ("shadowed", "sg-a/no-peer", ("eni-1", "eni-2")) in findings(cfg)
    f = one(cfg, "shadowed", "sg-a/no-peer")
    assert f.by == ("default:intra-group-allow",) and f.severity == "error"
    assert f.example["src_ip"] == "10.0.0.2" and "intra-group-allow" in f.message


def test_a_drop_partly_taken_by_the_intra_group_allow_is_overridden_by_default():
    cfg = net({"sg-a": sg(ingress(peer="10.0.0.0/24", action="drop", id="lan"))}, PAIR)
    got = findings(cfg)
    assert ("overridden-by-default", "sg-a/lan", ("eni-1", "eni-2")) in got
    assert not any(k == "shadowed" for k, _, _ in got)


def test_isolating_group_has_no_intra_group_allow():
    cfg = net({"sg-a": sg(ingress(peer="10.0.0.2", action="drop", id="no-peer"), policy="drop")}, PAIR)
    assert not any(k in ("shadowed", "overridden-by-default") for k, _, _ in findings(cfg))


def test_accept_loses_to_a_drop_of_the_same_priority_listed_after_it():
    cfg = net({"sg-a": sg(ingress("tcp", "0.0.0.0/0", 22, priority=5, id="ssh"),
                          ingress("tcp", "10.9.0.0/16", 22, priority=5, action="drop", id="no-lab"))},
              {"eni-1": eni("sg-a", ips=["10.0.0.1"])})
    assert ("tie", "sg-a/ssh", ("eni-1",)) in findings(cfg)
    f = one(cfg, "tie", "sg-a/ssh")
    assert f.by == ("sg-a/no-lab",) and f.example["src_ip"].startswith("10.9.")


def test_a_group_peer_with_no_members_matches_nothing():
    cfg = net({"sg-a": sg(ingress("tcp", "sg-b", 80, id="from-b")), "sg-b": sg()},
              {"eni-1": eni("sg-a", ips=["10.0.0.1"])})
    assert ("unmatchable", "sg-a/from-b", ("eni-1",)) in findings(cfg)
    assert "sg-b has no member ENI" in one(cfg, "unmatchable", "sg-a/from-b").message


def test_shadowed_on_one_group_set_and_not_on_another():
    cfg = net({"sg-a": sg(ingress("tcp", "10.1.0.0/16", 80, priority=2, id="web")),
               "sg-b": sg(ingress("all", "10.0.0.0/8", priority=1, id="lan"))},
              {"eni-1": eni("sg-a", "sg-b", ips=["10.0.0.1"]), "eni-2": eni("sg-a", ips=["10.0.0.2"])})
    got = findings(cfg)
    assert ("shadowed", "sg-a/web", ("eni-1",)) in got
    assert not any(rule == "sg-a/web" and enis == ("eni-2",) for _, rule, enis in got)
    f = one(cfg, "shadowed", "sg-a/web")
    assert f.by == ("sg-b/lan",) and f.severity == "warning"
    assert "sg-b/lan (priority 1, accept all from 10.0.0.0/8) takes all of its traffic" in f.message


def test_ipv6_and_prefix_list_peers():
    cfg = net({"sg-a": sg(ingress("icmp", "::/0", id="ping6"),
                          ingress("tcp", "pl-v6", 443, priority=1, id="pl"),
                          ingress("tcp", "2001:db8:5::/48", 443, priority=2, id="narrow"))},
              {"eni-1": eni("sg-a", ips=["10.0.0.1"], ipv6=["2001:db8::1"])},
              prefix_lists={"pl-v6": ["2001:db8::/32", "192.0.2.0/24"]})
    got = findings(cfg)
    assert ("unmatchable", "sg-a/ping6", ("eni-1",)) in got
    assert ("shadowed", "sg-a/narrow", ("eni-1",)) in got
    assert one(cfg, "shadowed", "sg-a/narrow").by == ("sg-a/pl",)


def test_port_lists():
    cfg = net({"sg-a": sg(ingress("tcp", "10.0.0.0/8", "1/100", id="low"),
                          ingress("tcp", "10.0.0.0/8", port_list="prl-admin", priority=2, id="admin"),
                          ingress("tcp", "10.0.0.0/8", port_list="prl-mixed", priority=2, id="mixed"))},
              {"eni-1": eni("sg-a", ips=["10.0.0.1"])})
    cfg["port_lists"] = {"prl-admin": {"entries": ["22", "80/90"], "max_entries": 5},
                         "prl-mixed": {"entries": ["22", "8080"], "max_entries": 5}}
    got = findings(cfg)
    assert ("shadowed", "sg-a/admin", ("eni-1",)) in got
    assert not any(k == "shadowed" and r == "sg-a/mixed" for k, r, _ in got)


def test_quintuple_local():
    cfg = net({"sg-a": sg(ingress("tcp", "0.0.0.0/0", 443, id="elsewhere", local="10.9.9.9"),
                          ingress("tcp", "0.0.0.0/0", 443, id="here", local="10.0.0.0/24", source_ports="1024/65535"))},
              {"eni-1": eni("sg-a", ips=["10.0.0.1"], ipv4_prefixes=["10.0.8.0/28"])})
    got = findings(cfg)
    assert ("unmatchable", "sg-a/elsewhere", ("eni-1",)) in got
    assert "local 10.9.9.9/32" in one(cfg, "unmatchable", "sg-a/elsewhere").message
    assert not any(r == "sg-a/here" and k in ("unmatchable", "shadowed") for k, r, _ in got)


def test_drop_before_the_final_deny_is_redundant_and_health_checks_pass_first():
    cfg = net({"sg-a": sg(ingress("all", "0.0.0.0/0", action="drop", priority=100, id="deny-all"),
                          ingress("all", "100.64.0.0/10", action="drop", priority=1, id="no-lb"))},
              {"eni-1": eni("sg-a", ips=["10.0.0.1"], load_balancer_backend=True)})
    got = findings(cfg)
    assert ("redundant", "sg-a/deny-all", ("eni-1",)) in got
    assert ("shadowed", "sg-a/no-lb", ("eni-1",)) in got
    assert one(cfg, "shadowed", "sg-a/no-lb").by == ("default:health-check-allow",)


def test_legacy_110_sorts_after_every_other_priority():
    rule = ingress("tcp", "10.0.0.0/8", 22, priority=110, id="old")
    rule["legacy"] = True
    cfg = net({"sg-a": sg(rule, ingress("tcp", "0.0.0.0/0", 22, priority=100, action="drop", id="late"))},
              {"eni-1": eni("sg-a", ips=["10.0.0.1"])})
    assert ("shadowed", "sg-a/old", ("eni-1",)) in findings(cfg)
    assert one(cfg, "shadowed", "sg-a/old").severity == "error"


def test_permissive():
    cfg = net({"sg-a": sg(ingress("tcp", "0.0.0.0/0", 22, id="ssh"), ingress("tcp", "0.0.0.0/0", 443, id="https"),
                          ingress("tcp", "10.0.0.0/8", 3306, id="mysql-lan"),
                          ingress("all", "11.0.0.0/8", id="wide"), ingress("udp", "::/0", "1/65535", id="udp6"))},
              {"eni-1": eni("sg-a", ips=["10.0.0.1"], ipv6=["2001:db8::1"])})
    got = {(k, r) for k, r, _ in findings(cfg) if k == "permissive"}
    assert got == {("permissive", "sg-a/ssh"), ("permissive", "sg-a/wide"), ("permissive", "sg-a/udp6")}
    assert "port 22" in one(cfg, "permissive", "sg-a/ssh").message


def test_groups_with_no_enis_are_analysed_alone():
    cfg = net({"sg-a": sg(ingress("tcp", "0.0.0.0/0", 22, id="ssh"), ingress("tcp", "1.2.3.4", 22, id="one"))}, {})
    got = findings(cfg)
    assert ("shadowed", "sg-a/one", ()) in got
    assert "attached to no ENI" in one(cfg, "shadowed", "sg-a/one").message


def test_quota_headroom():
    cfg = net({"sg-a": sg(*[ingress("tcp", f"10.0.{i}.0/24", 80, id=f"r{i}") for i in range(4)]), "sg-b": sg()},
              {"eni-1": eni("sg-a", "sg-b", ips=["10.0.0.1"])}, limits={"rules_per_eni": 5, "groups_per_eni": 2})
    quota = [f for f in lint(flowsim.load_config(cfg)).findings if f.kind == "quota"]
    assert [(f.severity, f.enis) for f in quota] == [("info", ("eni-1",)), ("info", ("eni-1",))]
    assert any("4 of 5 (80 %)" in f.message for f in quota)


def test_a_groups_quota_finding_names_its_members_and_counts_as_validation_does():
    """Lint's headroom and validation's limit come from one count (config.validate.quota_usage)."""
    cfg = net({"sg-a": sg()}, {"eni-1": eni("sg-a", ips=["10.0.0.1", "10.0.0.2"]), "eni-2": eni("sg-a", ips=["10.0.0.3"])},
              limits={"addresses_per_basic_group": 3})
    quota = [f for f in lint(flowsim.load_config(cfg)).findings if f.kind == "quota"]
    assert [(f.severity, f.enis) for f in quota] == [("info", ("eni-1", "eni-2"))]
    assert quota[0].message == "sg-a holds 3 private addresses: 3 of 3 (100 %) (limits.addresses_per_basic_group)"
    cfg["limits"]["addresses_per_basic_group"] = 2
    with pytest.raises(flowsim.ConfigError, match="holds 3 private addresses; a basic group's quota is 2"):
        flowsim.load_config(cfg)


def test_egress_drop_towards_a_fellow_member_is_not_overridden():
    """Seed-faithful: the intra-group allow exists only inbound, so an egress drop still decides."""
    cfg = net({"sg-a": sg(egress("all", "10.0.0.2", action="drop", id="no-peer-out"))}, PAIR)
    assert not any(r == "sg-a/no-peer-out" for _, r, _ in findings(cfg))


# ---------------------------------------------------------------- real configurations after import
REAL = [
    ("ros", "ros/game-business-zone-service-env.yml", ("redundant", "sg-SecurityGroup/ingress[3]")),
    ("ros", "ros/global-deployment-network-deploy-single-env.yml", ("unmatchable", "sg-EcsSecurityGroup2/ingress[0]")),
    ("ros", "ros/security-group-ingress-case1.yml", ("permissive", "sg-SecurityGroupId/SecurityGroupIngress_3306")),
    ("alibaba-api", "api-json/HXSecurity-TerraformGoat_DescribeSecurityGroupAttribute_open_all_ports_cn-beijing.json",
     ("permissive", "sg-2zebb34geaa1x63gtkor/#1")),
    ("terraform", "terraform/checkov-fixtures", ("shadowed", "sg-default/allow_all_ssh")),
    ("terraform", "terraform/SaraKhild-terraform-infrastructure", ("unmatchable", "sg-db-sg/allow-web-to-db")),
]


@pytest.mark.parametrize("fmt, path, expected", REAL)
def test_real_configurations_lint_after_import(shared_data, fmt, path, expected):
    config = flowsim.load_config(import_config(fmt, [shared_data / "real" / "alicloud-sg" / path]).config)
    report = lint(config)
    assert not report.incomplete
    assert expected in {(f.kind, f.rule) for f in report.findings}


def test_every_real_configuration_lints(shared_data):
    root = shared_data / "real" / "alicloud-sg"
    linted = 0
    for fmt, folder in (("ros", "ros"), ("alibaba-api", "api-json")):
        for path in sorted((root / folder).iterdir()):
            report = lint(flowsim.load_config(import_config(fmt, [path]).config))
            assert not report.incomplete and all(f.example is None or "src_ip" in f.example for f in report.findings)
            linted += 1
    assert linted >= 15


def test_checkov_shadowed_rules_name_the_rule_that_takes_them(shared_data):
    config = flowsim.load_config(import_config("terraform", [shared_data / "real/alicloud-sg/terraform/checkov-fixtures"]).config)
    shadowed = [f for f in lint(config).findings if f.kind == "shadowed"]
    assert len(shadowed) >= 10 and all(f.by == ("sg-default/allow_all_tcp",) for f in shadowed)


# ---------------------------------------------------------------- commands
EXAMPLE = "traces/example.yaml"


def test_lint_command_json_and_fail_on(capsys):
    assert main(["lint", EXAMPLE, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (f,) = out["findings"]
    assert set(f) == {"kind", "severity", "rule", "by", "direction", "enis", "example", "message"}
    assert (f["kind"], f["rule"], f["enis"]) == ("redundant", "sg-app/block-bad-host", ["eni-app-1"])
    assert main(["lint", EXAMPLE, "--fail-on", "info"]) == 3
    assert main(["lint", EXAMPLE, "--fail-on", "warning"]) == 0
    capsys.readouterr()
    assert main(["lint", EXAMPLE]) == 0
    assert "redundant" in capsys.readouterr().out


def test_search_command(capsys):
    assert main(["search", EXAMPLE, "--verdict", "allow", "--src", "external", "--dst", "sg-web", "-p", "tcp",
                 "--dst-port", "22", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exists"] and out["size"] == 257 * 3 * 65536  # pl-office's addresses × sg-web's IPv4 × source ports
    assert out["examples"][0]["ingress_rule"] == "sg-web/ssh-office"
    assert main(["search", EXAMPLE, "--verdict", "allow", "--src", "external", "--dst", "eni-db-1", "-p", "udp"]) == 0
    assert "no such flow exists" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["search", EXAMPLE, "--verdict", "allow", "--dst-port", "70000"],
    ["search", EXAMPLE, "--verdict", "allow", "--src", "not-a-thing"],
    ["search", EXAMPLE, "--verdict", "allow", "--rule", "sg-web/nope"],
    ["search", EXAMPLE, "--verdict", "allow", "-p", "bogus"],
    ["search", EXAMPLE, "--verdict", "allow", "--limit", "0"],
])
def test_search_bad_input_exits_2(argv, capsys):
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_search_api_on_the_example_matches_the_reference():
    config = flowsim.load_config(EXAMPLE)
    result = search(config, Query("deny", src="sg-web", dst="sg-db"))
    assert result.exists
    import ipaddress

    from flowsim.engine.reference import Flow, ReferenceEvaluator
    ref = ReferenceEvaluator(config)
    for ex in result.examples:
        v = ref.evaluate(Flow(ipaddress.ip_address(ex["src_ip"]), ipaddress.ip_address(ex["dst_ip"]),
                              flowsim.model.network.flow_protocol_number(ex["protocol"]), ex["src_port"], ex["dst_port"]))
        assert (v.verdict, v.egress_rule, v.ingress_rule) == ("deny", ex["egress_rule"], ex["ingress_rule"])


def test_a_unit_over_its_budget_is_reported_incomplete_not_hung(capsys):
    config = flowsim.load_config(EXAMPLE)
    report = lint(config, node_budget=1)
    assert report.incomplete and not [f for f in report.findings if f.kind != "quota"]
    assert all(i.reason.startswith("the open region grew past 1 BDD nodes") for i in report.incomplete)
    assert {i.enis for i in report.incomplete} >= {("eni-web-1", "eni-web-2"), ("eni-db-1",)}
    from flowsim.analysis.lint import format_report
    assert "ANALYSIS INCOMPLETE: sg-web ingress on eni-web-1, eni-web-2" in format_report(report)
    timed = lint(config, time_budget_s=0.0)
    assert timed.incomplete and "ran past 0 s" in timed.incomplete[0].reason


def test_boxes_cover_a_region_exactly():
    import ipaddress

    from flowsim.analysis.space import Space
    s = Space()
    region = (s.network("src", ipaddress.ip_network("10.0.0.0/8")) & s.port_range("dport", 20, 1000)
              & s.protocol(6)) | (s.network("dst", ipaddress.ip_network("2001:db8::/32")) & s.protocol(17))
    boxes = list(s.boxes(region))
    assert sum(b.size for b in boxes) == s.count(region)
    rebuilt = s.disj(s.network("src", b.src) & s.network("dst", b.dst) & s.port_range("proto", *b.protocols)
                     & s.port_range("sport", *b.src_ports) & s.port_range("dport", *b.dst_ports) for b in boxes)
    assert rebuilt == region


def test_boxes_under_a_limit_are_the_first_boxes_whatever_was_listed_before():
    """Field blocks are remembered per node, also when a walk stopped early: a later, longer walk must list them
    all, and a shorter one the same first boxes."""
    import ipaddress

    from flowsim.analysis.space import Space
    s = Space()
    region = s.disj(s.network("src", ipaddress.ip_network(f"10.{k}.{3 * k}.0/{20 + k % 9}", strict=False)) & s.port_range("dport", k, 3 * k)
                    & s.protocol(6 + 11 * (k % 2)) for k in range(1, 40))
    short = list(s.boxes(region, 7))
    everything = list(s.boxes(region, 10**6))
    assert len(short) == 7 and everything[:7] == short and len(everything) > 7
    assert sum(b.size for b in everything) == s.count(region)
    assert list(s.boxes(region, 50)) == everything[:50]
