"""Importing ECS API responses (`flowsim import alibaba-api`): real samples and CLI output, plus edge cases."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Pair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowsim.config.loader import load_config
from flowsim.errors import ConfigError, InputError
from flowsim.importers import import_config


@pytest.fixture(scope="module")
def api_dir(shared_data: Path) -> Path:
    """The real API responses (`shared_data` skips when ../shared/data is absent)."""
    return shared_data / "real" / "alicloud-sg" / "api-json"


def rule_tuples(group: dict) -> list[tuple]:
    """(direction, action, priority, protocol, ports, peer) of each rule, in order."""
    return [(r["direction"], r["action"], r["priority"], r["protocol"], r.get("ports"), r["peer"]) for r in group["rules"]]


def write(tmp_path: Path, name: str, document) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


# ---------------------------------------------------------------- real inputs
def test_doc_sample_attribute(api_dir):
    result = import_config("alibaba-api", [api_dir / "AlibabaCloudDocs-ecs_DescribeSecurityGroupAttribute_sample.json"])
    group = result.config["security_groups"]["sg-bp1gxw6bznjjvhu3****"]
    assert group["vpc"] == "vpc-bp1opxu1zkhn00gzv****"
    assert group["internal_policy"] == "accept"
    assert group["name"] == "FinanceJoshua"
    assert rule_tuples(group) == [
        ("ingress", "accept", 1, "tcp", "22/22", "10.0.0.0/8"),
        ("ingress", "accept", 1, "tcp", "443/443", "0.0.0.0/0"),
        ("ingress", "accept", 1, "tcp", "80/80", "0.0.0.0/0"),
        ("ingress", "accept", 1, "icmp", None, "10.0.0.0/8"),  # -1/-1 means all ports
    ]
    # empty DestCidrIp / SourcePortRange mean unset: no quintuple fields, no description
    assert all("local" not in r and "source_ports" not in r and "description" not in r for r in group["rules"])
    assert result.notes == []  # Accept rules out an advanced group, so the missing type needs no note
    load_config(result.config)


def test_doc_sample_zh_cn_with_prefix_list_fields(api_dir):
    result = import_config("alibaba-api", [api_dir / "AlibabaCloudDocs-ecs_DescribeSecurityGroupAttribute_sample_zh-CN.json"])
    group = result.config["security_groups"]["sg-bp1gxw6bznjjvhu3****"]
    assert rule_tuples(group) == [("ingress", "accept", 1, "tcp", "22/22", "0.0.0.0/0")]
    assert group["rules"][0]["description"] == "Description Sample 01"
    assert "prefix_lists" not in result.config  # empty SourcePrefixListId is unset
    load_config(result.config)


def test_describe_security_groups_sample(api_dir):
    result = import_config("alibaba-api", [api_dir / "AlibabaCloudDocs-ecs_DescribeSecurityGroups_sample.json"])
    assert result.config == {"security_groups": {"sg-bp67acfmxazb4p****": {
        "name": "SGTestName", "type": "basic", "vpc": "vpc-bp67acfmxazb4p****", "rules": []}}}
    load_config(result.config)


def test_security_group_references_sample_is_skipped_with_a_note(api_dir):
    path = api_dir / "AlibabaCloudDocs-ecs_DescribeSecurityGroupReferences_sample.json"
    result = import_config("alibaba-api", [path])
    assert result.config == {"security_groups": {}}
    assert len(result.notes) == 1 and str(path) in result.notes[0] and "DescribeSecurityGroupReferences" in result.notes[0]


def test_terraformgoat_cli_output(api_dir):
    result = import_config("alibaba-api", [api_dir / "HXSecurity-TerraformGoat_DescribeSecurityGroupAttribute_open_all_ports_cn-beijing.json"])
    group = result.config["security_groups"]["sg-2zebb34geaa1x63gtkor"]
    assert group["vpc"] == "vpc-2ze61byz86qst1qstj5id"
    assert group["name"] == "huocorp_terraform_goat_security_group"
    assert rule_tuples(group) == [("ingress", "accept", 1, "tcp", "1/65535", "0.0.0.0/0")]
    load_config(result.config)


def test_system_default_group_imports_as_legacy_and_validates(api_dir):
    """A 2017 system-created group used priority 110: kept, marked legacy, noted, and the result validates
    and evaluates (the legacy rules decide only where no 1..100 rule matches)."""
    path = api_dir / "yunionio-cloudmux_DescribeSecurityGroupAttribute_system-default_cn-hongkong.json"
    result = import_config("alibaba-api", [path])
    gid = "sg-j6cannq0xxj2r9z0yxwl"
    group = result.config["security_groups"][gid]
    assert rule_tuples(group) == [("ingress", "accept", 110, "all", None, "0.0.0.0/0"),
                                  ("egress", "accept", 110, "all", None, "0.0.0.0/0")]
    assert [r.get("legacy") for r in group["rules"]] == [True, True]
    assert sum("priority 110 is the legacy value" in n for n in result.notes) == 2
    config = load_config(result.config)
    assert [r.priority for r in config.groups[gid].rules] == [110, 110]
    # give the imported group a member and a 1..100 rule beside the legacy ones: the legacy rules sort last
    mapping = json.loads(json.dumps(result.config))
    mapping["security_groups"][gid]["rules"].append(
        {"id": "no-ssh", "direction": "ingress", "action": "drop", "priority": 100, "protocol": "tcp", "ports": "22",
         "peer": "0.0.0.0/0"})
    mapping["interfaces"] = {"eni-a": {"vpc": "vpc-j6c86z3sh8ufhgsxwme0q", "security_groups": [gid], "ips": ["172.16.0.5"]}}
    pair = Pair(mapping)
    assert pair.decide("198.51.100.1", "172.16.0.5", "tcp", dst_port=22) == ("deny", "", f"{gid}/no-ssh")
    assert pair.decide("198.51.100.1", "172.16.0.5", "tcp", dst_port=443) == ("allow", "", f"{gid}/#1")
    assert pair.decide("172.16.0.5", "198.51.100.1", "udp", dst_port=53) == ("allow", f"{gid}/#2", "")


def test_system_default_group_through_the_command_line(api_dir, tmp_path, capsys):
    """`flowsim import` writes it and exits 0 (it used to fail validation, exit 2); `validate` accepts the file."""
    from flowsim.cli import main

    out = tmp_path / "net.yaml"
    path = api_dir / "yunionio-cloudmux_DescribeSecurityGroupAttribute_system-default_cn-hongkong.json"
    assert main(["import", "alibaba-api", str(path), "-o", str(out)]) == 0
    assert "legacy: true" in out.read_text()
    assert main(["validate", str(out)]) == 0
    assert "Traceback" not in "".join(capsys.readouterr())


def test_legacy_priority_is_refused_on_authored_rules(api_dir):
    """Without the importer's legacy mark, 110 is outside 1..100 (an authored rule cannot have it)."""
    result = import_config("alibaba-api", [api_dir / "yunionio-cloudmux_DescribeSecurityGroupAttribute_system-default_cn-hongkong.json"])
    for r in result.config["security_groups"]["sg-j6cannq0xxj2r9z0yxwl"]["rules"]:
        del r["legacy"]
    with pytest.raises(ConfigError) as info:
        load_config(result.config)
    assert [str(p).split(" (")[0] for p in info.value.problems] == [
        "sg-j6cannq0xxj2r9z0yxwl rule #1: priority 110 is outside 1..100",
        "sg-j6cannq0xxj2r9z0yxwl rule #2: priority 110 is outside 1..100",
    ]


def test_whole_folder_merges_responses_of_one_group(api_dir):
    result = import_config("alibaba-api", [api_dir])
    groups = result.config["security_groups"]
    assert set(groups) == {"sg-bp1gxw6bznjjvhu3****", "sg-bp67acfmxazb4p****", "sg-2zebb34geaa1x63gtkor",
                           "sg-j6cannq0xxj2r9z0yxwl"}
    # the en and zh-CN samples describe the same group id: read as pages of one response
    assert len(groups["sg-bp1gxw6bznjjvhu3****"]["rules"]) == 5


# ---------------------------------------------------------------- API details
def attribute(gid="sg-a", vpc="vpc-1", permissions=(), **extra):
    return {"SecurityGroupId": gid, "VpcId": vpc, "InnerAccessPolicy": "Accept", **extra,
            "Permissions": {"Permission": list(permissions)}}


def perm(**fields):
    base = {"Direction": "ingress", "Policy": "Accept", "Priority": "1", "IpProtocol": "TCP", "PortRange": "22/22",
            "SourceCidrIp": "", "DestCidrIp": "", "SourceGroupId": "", "DestGroupId": "", "NicType": "intranet"}
    return {**base, **fields}


def test_paged_responses_merge_and_overlaps_are_dropped(tmp_path):
    page1 = attribute(permissions=[perm(SecurityGroupRuleId="sgr-1", SourceCidrIp="10.0.0.0/8"),
                                   perm(SecurityGroupRuleId="sgr-2", SourceCidrIp="10.1.0.0/16", PortRange="80/80")])
    page2 = attribute(permissions=[perm(SecurityGroupRuleId="sgr-2", SourceCidrIp="10.1.0.0/16", PortRange="80/80"),
                                   perm(SecurityGroupRuleId="sgr-3", SourceCidrIp="10.2.0.0/16", Priority=5)])
    result = import_config("alibaba-api", [write(tmp_path, "p2.json", page2), write(tmp_path, "p1.json", page1)])
    rules = result.config["security_groups"]["sg-a"]["rules"]
    assert [r["id"] for r in rules] == ["sgr-2", "sgr-3", "sgr-1"]
    assert [r["priority"] for r in rules] == [1, 5, 1]  # "1" (string) and 5 (number) both become ints


def test_egress_peer_is_dest_side_and_source_cidr_is_local(tmp_path):
    doc = attribute(permissions=[perm(Direction="egress", DestCidrIp="192.0.2.0/24", SourceCidrIp="10.0.1.0/24",
                                      SourcePortRange="1024/65535", IpProtocol="UDP", PortRange="53/53", Policy="Drop")])
    rule = import_config("alibaba-api", [write(tmp_path, "a.json", doc)]).config["security_groups"]["sg-a"]["rules"][0]
    assert rule == {"direction": "egress", "action": "drop", "priority": 1, "protocol": "udp", "ports": "53/53",
                    "source_ports": "1024/65535", "peer": "192.0.2.0/24", "local": "10.0.1.0/24"}


def test_ingress_dest_cidr_is_local_and_ipv6_peer(tmp_path):
    doc = attribute(permissions=[perm(Ipv6SourceCidrIp="2001:db8::/32", DestCidrIp="10.0.0.5", IpProtocol="ICMPv6",
                                      PortRange="-1/-1")])
    rule = import_config("alibaba-api", [write(tmp_path, "a.json", doc)]).config["security_groups"]["sg-a"]["rules"][0]
    assert (rule["protocol"], rule["peer"], rule["local"], "ports" in rule) == ("icmpv6", "2001:db8::/32", "10.0.0.5", False)


def test_several_peers_follow_cloud_precedence_with_a_note(tmp_path):
    doc = attribute(permissions=[perm(SourceCidrIp="10.0.0.0/8", SourceGroupId="sg-b", SourcePrefixListId="pl-x"),
                                 perm(SourceGroupId="sg-b", SourcePrefixListId="pl-x", PortRange="80/80")],
                    )
    result = import_config("alibaba-api", [write(tmp_path, "a.json", doc), write(tmp_path, "b.json", attribute("sg-b"))])
    rules = result.config["security_groups"]["sg-a"]["rules"]
    assert [r["peer"] for r in rules] == ["10.0.0.0/8", "sg-b"]
    precedence = [n for n in result.notes if "precedence" in n]
    assert len(precedence) == 2 and all("a.json" in n and "sg-a rule #" in n for n in precedence)
    load_config(result.config)


def test_unknown_peer_group_and_prefix_list_become_noted_stubs(tmp_path):
    doc = attribute(permissions=[perm(SourceGroupId="sg-other"), perm(SourcePrefixListId="pl-office", PortRange="443/443")])
    result = import_config("alibaba-api", [write(tmp_path, "a.json", doc)])
    assert result.config["security_groups"]["sg-other"] == {"vpc": "vpc-1", "rules": []}
    assert result.config["prefix_lists"] == {"pl-office": []}
    assert any("sg-other" in n and "not among the inputs" in n for n in result.notes)
    assert any("pl-office" in n and "entries are unknown" in n for n in result.notes)
    load_config(result.config)


def test_classic_group_skipped_and_internet_nic_type_noted(tmp_path):
    classic = attribute("sg-classic", vpc="", permissions=[perm(SourceCidrIp="0.0.0.0/0")])
    vpc = attribute("sg-v", permissions=[perm(SourceCidrIp="0.0.0.0/0", NicType="internet"),
                                         perm(SourceCidrIp="0.0.0.0/0", NicType="internet", PortRange="80/80")])
    result = import_config("alibaba-api", [write(tmp_path, "c.json", classic), write(tmp_path, "v.json", vpc)])
    assert list(result.config["security_groups"]) == ["sg-v"]
    assert any("sg-classic" in n and "classic-network" in n for n in result.notes)
    assert sum("NicType internet" in n for n in result.notes) == 1  # once per group


def test_unknown_fields_and_missing_type_are_noted(tmp_path):
    doc = attribute(permissions=[perm(SourceCidrIp="10.0.0.0/8", FancyNewField="x")])
    doc["InnerAccessPolicy"] = "Drop"
    result = import_config("alibaba-api", [write(tmp_path, "a.json", doc)])
    assert any("FancyNewField" in n and "a.json" in n for n in result.notes)
    assert any("assumed basic" in n for n in result.notes)
    with_type = {"SecurityGroups": {"SecurityGroup": [{"SecurityGroupId": "sg-a", "VpcId": "vpc-1",
                                                       "SecurityGroupType": "enterprise"}]}}
    result = import_config("alibaba-api", [write(tmp_path, "a.json", doc), write(tmp_path, "list.json", with_type)])
    assert result.config["security_groups"]["sg-a"]["type"] == "advanced"
    assert not any("assumed basic" in n for n in result.notes)


def test_network_interfaces_and_prefix_lists(tmp_path):
    enis = {"NetworkInterfaceSets": {"NetworkInterfaceSet": [{
        "NetworkInterfaceId": "eni-1", "VpcId": "vpc-1", "InstanceId": "i-1", "PrivateIpAddress": "10.0.0.5",
        "PrivateIpSets": {"PrivateIpSet": [{"PrivateIpAddress": "10.0.0.9", "Primary": False},
                                           {"PrivateIpAddress": "10.0.0.5", "Primary": True}]},
        "Ipv6Sets": {"Ipv6Set": [{"Ipv6Address": "2001:db8::5"}]},
        "Ipv4PrefixSets": {"Ipv4PrefixSet": [{"Ipv4Prefix": "10.0.8.0/28"}]},
        "Ipv6PrefixSets": {"Ipv6PrefixSet": []},
        "SecurityGroupIds": {"SecurityGroupId": ["sg-a"]}}]}}
    lists = {"PrefixLists": {"PrefixList": [{"PrefixListId": "pl-1", "MaxEntries": 10, "AddressFamily": "IPv4"}]}}
    entries = {"PrefixListId": "pl-1", "MaxEntries": 10, "Entries": {"Entry": [{"Cidr": "203.0.113.0/24"}, {"Cidr": "198.51.100.7/32"}]}}
    files = [write(tmp_path, n, d) for n, d in (("enis.json", enis), ("pls.json", lists), ("pl1.json", entries),
                                                 ("sg.json", attribute(permissions=[perm(SourcePrefixListId="pl-1")])))]
    config = import_config("alibaba-api", files).config
    assert config["interfaces"] == {"eni-1": {"instance": "i-1", "vpc": "vpc-1", "security_groups": ["sg-a"],
                                              "ips": ["10.0.0.5", "10.0.0.9"], "ipv6": ["2001:db8::5"],
                                              "ipv4_prefixes": ["10.0.8.0/28"]}}
    assert config["prefix_lists"] == {"pl-1": {"entries": ["203.0.113.0/24", "198.51.100.7/32"], "max_entries": 10}}
    assert config["security_groups"]["sg-a"]["rules"][0]["peer"] == "pl-1"
    load_config(config)


# ---------------------------------------------------------------- malformed input
def test_bad_json_names_file_and_line(tmp_path):
    path = write(tmp_path, "broken.json", '{\n  "SecurityGroupId": "sg-a",\n  "Permissions": {\n}')
    with pytest.raises(InputError) as info:
        import_config("alibaba-api", [path])
    message = str(info.value)
    assert str(path) in message and "invalid JSON" in message and ":4:" in message


@pytest.mark.parametrize("document, expected", [
    ({"Instances": {"Instance": []}}, "not a response this importer reads"),
    ([1, 2], "not an ECS API response"),
    ({"SecurityGroupId": "sg-a", "Permissions": {"Permission": "oops"}}, "Permissions must hold a list"),
    ({"Code": "InvalidSecurityGroupId.NotFound", "Message": "no such group", "RequestId": "x"}, "API error response"),
])
def test_wrong_shape_names_the_file(tmp_path, document, expected):
    path = write(tmp_path, "wrong.json", document)
    with pytest.raises(InputError) as info:
        import_config("alibaba-api", [path])
    assert str(path) in str(info.value) and expected in str(info.value)


def test_missing_input_and_unknown_format(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        import_config("alibaba-api", [tmp_path / "nope.json"])
    with pytest.raises(InputError, match="unknown import format"):
        import_config("aws", [tmp_path])
    with pytest.raises(InputError, match="no alibaba-api files"):
        import_config("alibaba-api", [tmp_path])


def test_every_real_response_imports_and_validates(api_dir):
    """Each file alone gives a configuration `load_config` accepts (the system-default group's 110 as legacy)."""
    files = sorted(api_dir.glob("*.json"))
    assert len(files) == 6
    for path in files:
        load_config(import_config("alibaba-api", [path]).config)


_FIELDS = st.sampled_from(["SecurityGroupId", "VpcId", "Permissions", "Permission", "PortRange", "IpProtocol",
                           "Direction", "Priority", "SecurityGroups", "SecurityGroup", "NetworkInterfaceSets",
                           "PrefixListId", "Entries", "SourceGroupId", "SourceCidrIp", "PortRangeListId",
                           "PortRangeLists"])
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 200) | st.sampled_from(["", "x", "22/22", "sg-1", "tcp"]),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_FIELDS, inner, max_size=4),
                     max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_JSON)
def test_arbitrary_json_gives_a_config_or_an_input_error(tmp_path, document):
    path = write(tmp_path, "fuzz.json", document)
    try:
        result = import_config("alibaba-api", [path])
    except InputError as exc:
        assert str(path) in str(exc)
    else:
        assert "security_groups" in result.config
