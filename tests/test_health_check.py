"""The load-balancer health-check allowance (docs/semantics.md §2, platform allowances): inbound from 100.64.0.0/10
to a `load_balancer_backend: true` interface is accepted before every rule, as default:health-check-allow;
and the legacy priority 110 (docs/semantics.md §1), which sorts after every 1..100 rule."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from helpers import Pair, egress, eni, ingress, net, sg
from test_validation import assert_rejected, assert_valid

import flowsim
from flowsim.batch.replay import replay
from flowsim.cli import main
from flowsim.kernels import evaluate as K
from flowsim.model.network import HEALTH_CHECK_NETWORK

HC = "default:health-check-allow"


def backend_net(group_type: str = "basic", backend: bool = True) -> dict:
    """eni-web (10.1.0.5) behind a load balancer, in a group that drops everything inbound at priority 1; eni-peer
    owns 100.64.0.9 and shares the (interconnected) group."""
    policy = "drop" if group_type == "advanced" else "accept"
    groups = {"sg-web": sg(ingress("all", "0.0.0.0/0", id="no-in", action="drop"),
                           egress("all", "100.64.0.0/10", id="no-out", action="drop"), type=group_type, policy=policy)}
    return net(groups, {"eni-web": eni("sg-web", ips=["10.1.0.5"], ipv6=["2001:db8::5"], load_balancer_backend=backend),
                        "eni-peer": eni("sg-web", ips=["10.1.0.6", "100.64.0.9"])})


@pytest.mark.parametrize("src,allowed", [("100.64.0.0", True), ("100.64.0.1", True), ("100.100.3.4", True),
                                         ("100.127.255.255", True), ("100.63.255.255", False), ("100.128.0.0", False),
                                         ("10.64.0.1", False)])
def test_inbound_from_the_health_check_network_passes_before_every_rule(src, allowed):
    got = Pair(backend_net()).decide(src, "10.1.0.5", "tcp", dst_port=80)
    assert got == (("allow", "", HC) if allowed else ("deny", "", "sg-web/no-in"))


@pytest.mark.parametrize("protocol", ["tcp", "udp", "icmp", "gre"])
def test_every_protocol_and_advanced_groups_too(protocol):
    assert Pair(backend_net("advanced")).decide("100.64.1.1", "10.1.0.5", protocol, dst_port=80) == ("allow", "", HC)


def test_off_unless_the_interface_says_so():
    assert Pair(backend_net(backend=False)).decide("100.64.1.1", "10.1.0.5", "tcp", dst_port=80) == (
        "deny", "", "sg-web/no-in")


def test_only_inbound_and_only_ipv4():
    p = Pair(backend_net())
    assert p.decide("10.1.0.5", "100.64.1.1", "tcp", dst_port=80) == ("deny", "sg-web/no-out", "")
    assert p.decide("::ffff:100.64.1.1", "2001:db8::5", "tcp", dst_port=80) == ("deny", "", "default:inbound-deny")


def test_decision_it_comes_before_the_intra_group_allow():
    """A sender owning an address in 100.64.0.0/10 that shares an interconnected group: both defaults would allow;
    the platform's allowance is the one reported (Decision, README)."""
    p = Pair(backend_net())
    assert p.decide("100.64.0.9", "10.1.0.5", "tcp", dst_port=80) == ("allow", "default:outbound-allow", HC)
    assert p.decide("10.1.0.6", "10.1.0.5", "tcp", dst_port=80) == ("allow", "default:outbound-allow",
                                                                     "default:intra-group-allow")


def test_endpoint_mode():
    p = Pair(backend_net())
    assert p.decide("100.64.1.1", "10.1.0.5", "tcp", dst_port=80, eni="eni-web", direction="ingress") == ("allow", "", HC)
    assert p.decide("100.64.1.1", "10.1.0.6", "tcp", dst_port=80, eni="eni-peer", direction="ingress") == (
        "deny", "", "sg-web/no-in")


def test_the_kernel_tests_the_network_the_model_names():
    assert HEALTH_CHECK_NETWORK.prefixlen == 32 - K.HEALTH_CHECK_SHIFT
    assert int(HEALTH_CHECK_NETWORK.network_address) >> K.HEALTH_CHECK_SHIFT == K.HEALTH_CHECK_PREFIX


def test_replay_health_checks_open_sessions_for_their_replies(tmp_path):
    """The check passes by the allowance and its reply, though egress drops 100.64.0.0/10, passes by the session."""
    path = tmp_path / "net.json"
    path.write_text(json.dumps(backend_net()))
    rows = {"time": [0.0, 0.5, 2000.0], "src_ip": ["100.64.7.7", "10.1.0.5", "10.1.0.5"],
            "dst_ip": ["10.1.0.5", "100.64.7.7", "100.64.7.7"], "protocol": ["tcp"] * 3,
            "src_port": [40000, 80, 80], "dst_port": [80, 40000, 40000]}
    trace, out = tmp_path / "trace.csv", tmp_path / "out.csv"
    pacsv.write_csv(pa.table(rows), trace)
    summary = replay(flowsim.compile(flowsim.load_config(path)), str(trace), str(out))
    got = pacsv.read_csv(out, convert_options=pacsv.ConvertOptions(strings_can_be_null=False)).to_pylist()
    assert [(r["verdict"], r["stateful"], r["egress_rule"], r["ingress_rule"]) for r in got] == [
        ("allow", False, "", HC), ("allow", True, "", ""), ("deny", False, "sg-web/no-out", "")]
    assert summary.rule_hits[HC] == 1


def test_check_explains_it(tmp_path, capsys):
    path = tmp_path / "net.json"
    path.write_text(json.dumps(backend_net()))
    assert main(["check", str(path), "--src", "100.64.0.1", "--dst", "10.1.0.5", "--protocol", "tcp",
                 "--dst-port", "80", "--json"]) == 0
    side = json.loads(capsys.readouterr().out)["ingress"]
    assert side["rule"] == HC and side["default"] is True and "100.64.0.0/10" in side["meaning"]
    assert main(["check", str(path), "--src", "100.64.0.1", "--dst", "10.1.0.5", "--protocol", "icmp"]) == 0
    assert f"allow by {HC} (a load-balancer health check from 100.64.0.0/10" in capsys.readouterr().out


def test_the_flag_must_be_true_or_false(tmp_path, capsys):
    text = "security_groups: {sg-a: {}}\ninterfaces:\n  eni-a:\n    security_groups: [sg-a]\n    ips: [10.0.0.1]\n" \
           "    load_balancer_backend: 'yes'\n"
    assert_rejected(tmp_path, capsys, text, "load_balancer_backend", "eni-a", "must be true or false")


# ---------------------------------------------------------------- legacy priority 110
LEGACY = """\
security_groups:
  sg-a:
    rules:
      - {id: old, direction: ingress, protocol: all, peer: 0.0.0.0/0, priority: 110, LEGACY}
interfaces:
  eni-a: {security_groups: [sg-a], ips: [10.0.0.1]}
"""


def test_110_only_on_legacy_rules(tmp_path, capsys):
    assert_valid(tmp_path, capsys, LEGACY.replace("LEGACY", "legacy: true"))
    for mark in ("legacy: false", "description: x"):
        assert_rejected(tmp_path, capsys, LEGACY.replace("LEGACY", mark), "priority: 110", "sg-a rule old",
                        "priority 110 is outside 1..100", "legacy: true")
    assert_rejected(tmp_path, capsys, LEGACY.replace("110", "111").replace("LEGACY", "legacy: true"), "priority: 111",
                    "sg-a rule old", "priority 111 is outside 1..100")
    assert_rejected(tmp_path, capsys, LEGACY.replace("LEGACY", "legacy: 'yes'"), "priority: 110", "sg-a rule old",
                    "legacy must be true or false")


def test_legacy_rules_sort_after_every_1_to_100_rule():
    groups = {"sg-old": sg(ingress("tcp", "0.0.0.0/0", "22", id="old-drop", action="drop", priority=110, legacy=True),
                           ingress("all", "0.0.0.0/0", id="old-allow", priority=110, legacy=True)),
              "sg-new": sg(ingress("tcp", "10.0.0.0/8", "22", id="ssh", priority=100),
                           ingress("udp", "0.0.0.0/0", id="no-udp", action="drop", priority=100))}
    p = Pair(net(groups, {"eni-a": eni("sg-old", "sg-new", ips=["10.0.0.1"])}))
    assert p.decide("10.9.0.1", "10.0.0.1", "tcp", dst_port=22) == ("allow", "", "sg-new/ssh")
    assert p.decide("192.0.2.1", "10.0.0.1", "tcp", dst_port=22) == ("deny", "", "sg-old/old-drop")
    assert p.decide("192.0.2.1", "10.0.0.1", "udp", dst_port=53) == ("deny", "", "sg-new/no-udp")
    assert p.decide("192.0.2.1", "10.0.0.1", "icmp") == ("allow", "", "sg-old/old-allow")
    rule = p.engine.explain(p.flow("192.0.2.1", "10.0.0.1", "icmp")).verdict.ingress.custom_rule
    assert (rule.priority, rule.legacy) == (110, True)


def test_check_marks_a_legacy_rule(tmp_path, capsys):
    path = tmp_path / "net.yaml"
    path.write_text(LEGACY.replace("LEGACY", "legacy: true"))
    assert main(["check", str(path), "--src", "192.0.2.1", "--dst", "10.0.0.1", "--protocol", "icmp"]) == 0
    assert "priority 110 (legacy)" in capsys.readouterr().out
