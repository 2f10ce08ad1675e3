"""Port lists (docs/semantics.md §1): loading, what validation refuses, the quota, matching in both evaluators,
`flowsim check`'s explanation, and importing them from ECS API responses."""
from __future__ import annotations

import json

import pytest
from helpers import Pair, eni, ingress, net, sg
from test_validation import assert_rejected, assert_valid

import flowsim
from flowsim.cli import main
from flowsim.errors import ConfigError
from flowsim.importers import import_config

PORTS = """\
security_groups:
  sg-web:
    rules:
      - {id: admin, direction: ingress, protocol: tcp, port_list: prl-admin, peer: 10.0.0.0/8}
      - RULE
port_lists:
  prl-admin: LIST
interfaces:
  eni-web: {security_groups: [sg-web], ips: [10.1.0.5]}
"""


def ports_yaml(rule: str = "{direction: egress, protocol: all, peer: 0.0.0.0/0}",
               port_list: str = "{entries: [22, 3389, 8000-8080], max_entries: 5}") -> str:
    return PORTS.replace("RULE", rule).replace("LIST", port_list)


# ---------------------------------------------------------------- loading and validation
def test_both_spellings_load(tmp_path, capsys):
    assert_valid(tmp_path, capsys, ports_yaml())
    assert_valid(tmp_path, capsys, ports_yaml(port_list="[22, 3389, 8000/8080]"), "short.yaml")
    config = flowsim.load_config(tmp_path / "ok.yaml")
    prl = config.port_lists["prl-admin"]
    assert (prl.entries, prl.max_entries) == (((22, 22), (3389, 3389), (8000, 8080)), 5)
    rule = config.groups["sg-web"].rules[0]
    assert rule.port_list == "prl-admin" and config.destination_ports(rule) == prl.entries
    assert flowsim.load_config(tmp_path / "short.yaml").port_lists["prl-admin"].max_entries == 3


def test_unknown_port_list(tmp_path, capsys):
    text = ports_yaml("{id: x, direction: ingress, protocol: udp, port_list: prl-nope, peer: 0.0.0.0/0}")
    assert_rejected(tmp_path, capsys, text, "prl-nope", "sg-web rule x", "unknown port list 'prl-nope'")


def test_ports_and_port_list_together(tmp_path, capsys):
    text = ports_yaml("{id: x, direction: ingress, protocol: tcp, ports: 443, port_list: prl-admin, peer: 0.0.0.0/0}")
    assert_rejected(tmp_path, capsys, text, "id: x", "sg-web rule x", "ports or a port list, not both")


@pytest.mark.parametrize("protocol", ["icmp", "all", "gre", "132"])
def test_port_list_on_a_protocol_without_ports(tmp_path, capsys, protocol):
    text = ports_yaml(f"{{id: x, direction: ingress, protocol: {protocol}, port_list: prl-admin, peer: 0.0.0.0/0}}")
    assert_rejected(tmp_path, capsys, text, "id: x", "sg-web rule x", "a port list is not allowed for protocol")


@pytest.mark.parametrize("entry", ["0", "70000", "90-80", "http", "-1/-1"])
def test_bad_entry(tmp_path, capsys, entry):
    text = ports_yaml(port_list=f"\n    - 22\n    - '{entry}'")
    assert_rejected(tmp_path, capsys, text, f"'{entry}'", "prl-admin entry #2")


def test_more_entries_than_max_entries(tmp_path, capsys):
    text = ports_yaml(port_list="{entries: [22, 23, 24], max_entries: 2}")
    assert_rejected(tmp_path, capsys, text, "prl-admin:", "prl-admin", "has 3 entries but max_entries is 2")


@pytest.mark.parametrize("value", ["0", "2001", "-3", "ten", "true"])
def test_max_entries_outside_1_to_2000(tmp_path, capsys, value):
    text = ports_yaml(port_list=f"{{entries: [22], max_entries: {value}}}")
    assert_rejected(tmp_path, capsys, text, "prl-admin:", "prl-admin", "max_entries must be an integer 1..2000")


def test_max_entries_2000_is_allowed(tmp_path, capsys):
    text = "limits: {rules_per_eni: 2001}\n" + ports_yaml(port_list="{entries: [22], max_entries: 2000}")
    assert_valid(tmp_path, capsys, text)


def test_a_port_list_rule_counts_as_its_max_entries(tmp_path, capsys):
    """1 rule + a port-list rule of max_entries 5 = 6 rules against the quota: 5 fails, 6 passes."""
    for quota, ok in ((5, False), (6, True)):
        text = f"limits: {{rules_per_eni: {quota}}}\n" + ports_yaml()
        if ok:
            assert_valid(tmp_path, capsys, text)
        else:
            assert_rejected(tmp_path, capsys, text, "eni-web:", "eni-web", "carries 6 rules", "quota is 5")


def test_with_a_prefix_list_a_rule_counts_as_the_product():
    mapping = net({"sg-a": sg(ingress("tcp", "pl-x", port_list="prl-y"))}, {"eni-a": eni("sg-a", ips=["10.0.0.1"])},
                  prefix_lists={"pl-x": {"entries": ["10.9.0.0/16"], "max_entries": 4}}, limits={"rules_per_eni": 11})
    mapping["port_lists"] = {"prl-y": {"entries": ["22"], "max_entries": 3}}
    with pytest.raises(ConfigError, match="carries 12 rules"):
        flowsim.load_config(mapping)
    mapping["limits"]["rules_per_eni"] = 12
    flowsim.load_config(mapping)


# ---------------------------------------------------------------- matching (reference and engine agree, Pair.decide)
def pair(port_list=("22", "3389", "8000-8080")) -> Pair:
    mapping = net({"sg-web": sg(ingress("tcp", "10.0.0.0/8", id="admin", port_list="prl-admin"),
                                ingress("udp", "0.0.0.0/0", id="dns-list", port_list="prl-dns"),
                                ingress("tcp", "0.0.0.0/0", "1-65535", id="rest", action="drop", priority=2))},
                  {"eni-web": eni("sg-web", ips=["10.1.0.5"])})
    mapping["port_lists"] = {"prl-admin": list(port_list), "prl-dns": {"entries": ["53"], "max_entries": 10}}
    return Pair(mapping)


@pytest.mark.parametrize("port,decided", [(22, "sg-web/admin"), (21, "sg-web/rest"), (23, "sg-web/rest"),
                                          (3389, "sg-web/admin"), (7999, "sg-web/rest"), (8000, "sg-web/admin"),
                                          (8040, "sg-web/admin"), (8080, "sg-web/admin"), (8081, "sg-web/rest")])
def test_the_destination_port_must_be_in_an_entry(port, decided):
    verdict = "allow" if decided.endswith("admin") else "deny"
    assert pair().decide("10.2.0.1", "10.1.0.5", "tcp", dst_port=port) == (verdict, "", decided)


def test_the_peer_still_applies():
    assert pair().decide("192.0.2.1", "10.1.0.5", "tcp", dst_port=22) == ("deny", "", "sg-web/rest")


def test_a_udp_port_list_and_an_empty_one():
    p = pair(port_list=())
    assert p.decide("192.0.2.1", "10.1.0.5", "udp", dst_port=53) == ("allow", "", "sg-web/dns-list")
    assert p.decide("192.0.2.1", "10.1.0.5", "udp", dst_port=54) == ("deny", "", "default:inbound-deny")
    assert p.decide("10.2.0.1", "10.1.0.5", "tcp", dst_port=22) == ("deny", "", "sg-web/rest")  # no entries: no match


def test_check_explains_the_port_list(tmp_path, capsys):
    path = tmp_path / "net.yaml"
    path.write_text(ports_yaml())
    assert main(["check", str(path), "--src", "10.2.0.1", "--dst", "10.1.0.5", "--protocol", "tcp",
                 "--dst-port", "8001"]) == 0
    out = capsys.readouterr().out
    assert "allow by sg-web/admin" in out and "tcp port list prl-admin (22/22, 3389/3389, 8000/8080)" in out
    assert main(["check", str(path), "--src", "10.2.0.1", "--dst", "10.1.0.5", "--protocol", "tcp",
                 "--dst-port", "8001", "--json"]) == 0
    side = json.loads(capsys.readouterr().out)["ingress"]
    assert side["port_list"] == "prl-admin" and side["ports"] == "22/22, 3389/3389, 8000/8080"


# ---------------------------------------------------------------- importing from ECS API responses
def group_response(*permissions: dict) -> dict:
    return {"SecurityGroupId": "sg-1", "VpcId": "vpc-1", "InnerAccessPolicy": "Accept",
            "Permissions": {"Permission": list(permissions)}}


def permission(**fields) -> dict:
    base = {"Direction": "ingress", "IpProtocol": "TCP", "Policy": "Accept", "Priority": "1", "SourceCidrIp": "10.0.0.0/8",
            "PortRange": "-1/-1"}
    return {**base, **fields}


LISTS = {"NextToken": "", "RequestId": "r", "PortRangeLists": [
    {"PortRangeListId": "prl-2ze9743abc", "PortRangeListName": "admin", "MaxEntries": 10, "AssociationCount": 1}]}
ENTRIES = {"RequestId": "r", "Entries": [{"PortRange": "22/22", "Description": "ssh"},
                                          {"PortRange": "8000/8080", "Description": "web"}]}


def write(tmp_path, name: str, document: dict):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def test_api_rules_with_port_lists_import_and_evaluate(tmp_path):
    files = [write(tmp_path, "sg.json", group_response(permission(PortRangeListId="prl-2ze9743abc", PortRange=""))),
             write(tmp_path, "lists.json", LISTS),
             write(tmp_path, "DescribePortRangeListEntries-prl-2ze9743abc.json", ENTRIES)]
    result = import_config("alibaba-api", files)
    assert result.config["port_lists"] == {"prl-2ze9743abc": {"entries": ["22/22", "8000/8080"], "max_entries": 10}}
    assert result.config["security_groups"]["sg-1"]["rules"][0]["port_list"] == "prl-2ze9743abc"
    assert "ports" not in result.config["security_groups"]["sg-1"]["rules"][0]
    mapping = dict(result.config, interfaces={"eni-1": {"vpc": "vpc-1", "security_groups": ["sg-1"], "ips": ["10.1.0.5"]}})
    p = Pair(mapping)
    assert p.decide("10.2.0.1", "10.1.0.5", "tcp", dst_port=8080) == ("allow", "", "sg-1/#1")
    assert p.decide("10.2.0.1", "10.1.0.5", "tcp", dst_port=23) == ("deny", "", "default:inbound-deny")


def test_entries_name_their_list_by_a_field_too(tmp_path):
    files = [write(tmp_path, "entries.json", dict(ENTRIES, PortRangeListId="prl-9"))]
    assert import_config("alibaba-api", files).config["port_lists"] == {"prl-9": ["22/22", "8000/8080"]}


def test_entries_of_no_named_list_are_an_input_error(tmp_path, capsys):
    path = write(tmp_path, "entries.json", ENTRIES)
    assert main(["import", "alibaba-api", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "which port list" in err and "Traceback" not in err


def test_a_port_list_not_among_the_inputs_is_added_empty_and_noted(tmp_path):
    result = import_config("alibaba-api", [write(tmp_path, "sg.json", group_response(permission(PortRangeListId="prl-x")))])
    assert result.config["port_lists"] == {"prl-x": []}
    assert any("port list prl-x is not among the inputs" in n for n in result.notes)
    flowsim.load_config(result.config)


def test_a_port_range_beside_a_port_list_wins(tmp_path):
    """AuthorizeSecurityGroup: PortRangeListId is ignored when PortRange is given."""
    perm = permission(PortRangeListId="prl-x", PortRange="443/443")
    result = import_config("alibaba-api", [write(tmp_path, "sg.json", group_response(perm))])
    rule = result.config["security_groups"]["sg-1"]["rules"][0]
    assert rule["ports"] == "443/443" and "port_list" not in rule
    assert any("ignores the port list" in n for n in result.notes)
