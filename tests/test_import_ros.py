"""Importing ROS templates (`flowsim import ros`): the vendor's template library, intrinsic functions, conditions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowsim.config.loader import load_config
from flowsim.errors import InputError
from flowsim.importers import import_config


@pytest.fixture(scope="module")
def ros_dir(shared_data: Path) -> Path:
    """The real ROS templates (`shared_data` skips when ../shared/data is absent)."""
    return shared_data / "real" / "alicloud-sg" / "ros"


def rule_tuples(group: dict) -> list[tuple]:
    """(direction, action, priority, protocol, ports, peer) of each rule, in order."""
    return [(r["direction"], r["action"], r["priority"], r["protocol"], r.get("ports"), r["peer"]) for r in group["rules"]]


def ros(tmp_path: Path, text: str, params: dict | None = None, name: str = "t.yml"):
    (tmp_path / name).write_text(text)
    return import_config("ros", [tmp_path / name], params)


WEB_DROP_ALL = [("ingress", "accept", 1, "tcp", "80/80", "0.0.0.0/0"), ("ingress", "accept", 1, "tcp", "443/443", "0.0.0.0/0"),
                ("ingress", "accept", 1, "icmp", None, "0.0.0.0/0"), ("ingress", "drop", 10, "all", None, "0.0.0.0/0")]


# ---------------------------------------------------------------- real templates
def test_minimal_group_defaults(ros_dir):
    result = import_config("ros", [ros_dir / "security-group-case1.yml"])
    group = result.config["security_groups"]["sg-SecurityGroup"]
    assert (group["type"], group["vpc"], group["name"]) == ("basic", "vpc-VpcId", "TestSecurityGroupName")
    assert [r["id"] for r in group["rules"]] == ["ingress[0]", "ingress[1]", "egress[0]"]
    assert rule_tuples(group) == [("ingress", "accept", 1, "tcp", "22/22", "0.0.0.0/0"),
                                  ("ingress", "accept", 1, "tcp", "80/80", "0.0.0.0/0"),
                                  ("egress", "accept", 1, "tcp", "443/443", "0.0.0.0/0")]
    assert any("VpcId is unresolved (parameter VpcId has no default" in n for n in result.notes)
    load_config(result.config)
    with_vpc = import_config("ros", [ros_dir / "security-group-case1.yml"], {"VpcId": "vpc-123"})
    assert with_vpc.config["security_groups"]["sg-SecurityGroup"]["vpc"] == "vpc-123"


def test_enterprise_variant(ros_dir):
    config = import_config("ros", [ros_dir / "security-group-case2-enterprise.yml"]).config
    group = config["security_groups"]["sg-SecurityGroup"]
    assert group["type"] == "advanced" and len(group["rules"]) == 3
    load_config(config)  # advanced: internal policy defaults to drop


def test_global_deployment_group_references_and_condition(ros_dir):
    path = ros_dir / "global-deployment-network-deploy-single-env.yml"
    result = import_config("ros", [path])
    groups = result.config["security_groups"]
    assert list(groups) == ["sg-EcsSecurityGroup1", "sg-EcsSecurityGroup2"]
    assert {g["vpc"] for g in groups.values()} == {"vpc-EcsVpc"}
    assert rule_tuples(groups["sg-EcsSecurityGroup1"]) == WEB_DROP_ALL
    assert rule_tuples(groups["sg-EcsSecurityGroup2"]) == [
        ("ingress", "accept", 1, "tcp", "1024/1024", "sg-EcsSecurityGroup1"),
        ("ingress", "accept", 1, "udp", "2000/2048", "sg-EcsSecurityGroup1"),
        ("ingress", "accept", 1, "icmp", None, "0.0.0.0/0"),
        ("ingress", "drop", 10, "all", None, "0.0.0.0/0")]
    assert any(f"{path}:225: EcsSecurityGroup3: condition IsCreateManageEnv is false" in n for n in result.notes)
    load_config(result.config)
    managed = import_config("ros", [path], {"CreateManageEnv": "true"})
    assert rule_tuples(managed.config["security_groups"]["sg-EcsSecurityGroup3"]) == [
        ("ingress", "accept", 1, "all", None, "0.0.0.0/0")]
    assert any("sg-EcsSecurityGroup3: NicType internet has no effect" in n for n in managed.notes)
    load_config(managed.config)


@pytest.mark.parametrize("template, group", [
    ("game-business-zone-service-env.yml", "sg-SecurityGroup"),
    ("alb-create-ipv4-load-balancer-and-dnsrecord.yml", "sg-EcsSecurityGroup"),
])
def test_accept_web_then_drop_everything(ros_dir, template, group):
    result = import_config("ros", [ros_dir / template])
    imported = result.config["security_groups"][group]
    assert rule_tuples(imported)[:4] == WEB_DROP_ALL
    load_config(result.config)


def test_alb_egress_for_both_nic_types(ros_dir):
    result = import_config("ros", [ros_dir / "alb-create-ipv4-load-balancer-and-dnsrecord.yml"])
    group = result.config["security_groups"]["sg-EcsSecurityGroup"]
    assert rule_tuples(group)[4:] == [("egress", "accept", 1, "all", None, "0.0.0.0/0")] * 2
    assert group["vpc"] == "vpc-EcsVpc"
    assert any("instance or ENI resource(s) not imported" in n for n in result.notes)


def test_spring_cloud_port_range(ros_dir):
    config = import_config("ros", [ros_dir / "spring-cloud-netflix-migrate-edas.yml"]).config
    group = config["security_groups"]["sg-SecurityGroup"]
    assert group["vpc"] == "vpc-Vpc"  # Fn::GetAtt [Vpc, VpcId]
    assert rule_tuples(group) == WEB_DROP_ALL[:3] + [
        ("ingress", "accept", 1, "tcp", "4000/9000", "0.0.0.0/0"),
        ("ingress", "accept", 1, "tcp", "15672/15672", "0.0.0.0/0"), WEB_DROP_ALL[3]]
    load_config(config)


def test_ipv6_rules(ros_dir):
    config = import_config("ros", [ros_dir / "ecs-ipv6-instance.yml"]).config
    assert rule_tuples(config["security_groups"]["sg-EcsSecurityGroup"]) == [
        ("ingress", "accept", 1, "tcp", "3389/3389", "0.0.0.0/0"), ("ingress", "accept", 1, "all", None, "::/0"),
        ("egress", "accept", 1, "tcp", "3389/3389", "0.0.0.0/0"), ("egress", "accept", 1, "all", None, "::/0")]
    load_config(config)


def test_four_groups_in_four_vpcs(ros_dir):
    result = import_config("ros", [ros_dir / "enterprise-cloud-network-architecture-planning.yml"])
    groups = result.config["security_groups"]
    assert {gid: g["vpc"] for gid, g in groups.items()} == {
        "sg-SecurityGroupForVpcPrd1": "vpc-VpcPrd1", "sg-SecurityGroupForVpcPrd2": "vpc-VpcPrd2",
        "sg-SecurityGroupForVpcPrd3": "vpc-VpcPrd3", "sg-SecurityGroupForVpcSec": "vpc-VpcSec"}
    assert groups["sg-SecurityGroupForVpcPrd1"]["name"] == "enterprise-cloud_SG_For_VPC_PRD1"  # Fn::Sub with a default
    for group in groups.values():
        assert rule_tuples(group) == [("ingress", "accept", 1, "tcp", "3389/3389", "0.0.0.0/0"),
                                      ("egress", "accept", 1, "all", None, "0.0.0.0/0"),
                                      ("egress", "accept", 1, "all", None, "0.0.0.0/0")]
    assert sum("NicType internet" in n for n in result.notes) == 4
    load_config(result.config)


def test_hadoop_conditions_choose_between_new_group_and_standalone_rules(ros_dir):
    path = ros_dir / "hadoop-standalone-ingress.yml"
    new = import_config("ros", [path])
    assert list(new.config["security_groups"]) == ["sg-SecurityGroup"]
    assert rule_tuples(new.config["security_groups"]["sg-SecurityGroup"]) == [
        ("ingress", "accept", 1, "tcp", "8088/8088", "0.0.0.0/0"), ("ingress", "accept", 1, "tcp", "9870/9870", "0.0.0.0/0"),
        ("ingress", "accept", 1, "icmp", None, "0.0.0.0/0")]
    assert sum("condition UseExistedInstance is false" in n for n in new.notes) == 2
    existing = import_config("ros", [path], {"InstanceSource": "UseExisted"})
    (gid, group), = existing.config["security_groups"].items()  # the existing instance's group: a placeholder
    assert [r["id"] for r in group["rules"]] == ["SecurityGroupIngress_8088", "SecurityGroupIngress_9870"]
    assert any("SecurityGroupId is unresolved" in n and gid in n for n in existing.notes)
    load_config(existing.config)


def test_standalone_egress_needs_its_parameters(ros_dir):
    path = ros_dir / "security-group-egress.yml"
    result = import_config("ros", [path])
    assert result.config["security_groups"]["sg-SecurityGroupId"]["rules"] == []
    assert any(f"{path}:18: SgIngress: unresolved: Policy" in n and "DestCidrIp" in n and "rule skipped" in n
               for n in result.notes)
    given = import_config("ros", [path], {"SecurityGroupId": "sg-abc", "DestCidrIp": "10.0.0.0/8", "Policy": "drop"})
    assert rule_tuples(given.config["security_groups"]["sg-abc"]) == [("egress", "drop", 1, "all", None, "10.0.0.0/8")]
    load_config(given.config)


def test_standalone_ingress_on_an_existing_group(ros_dir):
    result = import_config("ros", [ros_dir / "security-group-ingress-case1.yml"])
    group = result.config["security_groups"]["sg-SecurityGroupId"]
    assert group["rules"][0]["id"] == "SecurityGroupIngress_3306"
    assert rule_tuples(group) == [("ingress", "accept", 1, "tcp", "3306/3306", "0.0.0.0/0")]
    load_config(result.config)


def test_templates_reusing_logical_ids_are_imported_separately(ros_dir):
    with pytest.raises(InputError, match="import the templates separately"):
        import_config("ros", [ros_dir])


# ---------------------------------------------------------------- functions, tags, clones
def test_short_form_tags_and_functions(tmp_path):
    result = ros(tmp_path, """
ROSTemplateFormatVersion: '2015-09-01'
Parameters:
  Env: {Type: String, Default: prod}
  Ports: {Type: CommaDelimitedList, Default: "22,443"}
  Open: {Type: Boolean, Default: false}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  OpenAll: !And [!Condition IsProd, !Equals [!Ref Open, true]]
  NotOpen: !Not [!Condition OpenAll]
Mappings:
  Nets: {prod: {office: 203.0.113.0/24}}
Resources:
  Vpc: {Type: ALIYUN::ECS::VPC, Properties: {CidrBlock: 10.0.0.0/16}}
  Web:
    Type: ALIYUN::ECS::SecurityGroup
    Properties:
      VpcId: !GetAtt Vpc.VpcId
      SecurityGroupName: !Sub "${Env}-web"
      SecurityGroupIngress:
        - IpProtocol: tcp
          PortRange: !Join ['/', [!Select [1, !Ref Ports], !Select [1, !Ref Ports]]]
          SourceCidrIp: !FindInMap [Nets, !Ref Env, office]
          Priority: !If [IsProd, 5, 50]
          Description: !Ref ALIYUN::NoValue
        - IpProtocol: all
          SourceCidrIp: 0.0.0.0/0
          Policy: !If [NotOpen, drop, accept]
          Priority: 100
  Extra:
    Type: ALIYUN::ECS::SecurityGroupIngress
    Condition: OpenAll
    Properties: {SecurityGroupId: !Ref Web, IpProtocol: all, SourceCidrIp: 0.0.0.0/0}
""")
    group = result.config["security_groups"]["sg-Web"]
    assert (group["name"], group["vpc"]) == ("prod-web", "vpc-Vpc")
    assert rule_tuples(group) == [("ingress", "accept", 5, "tcp", "443/443", "203.0.113.0/24"),
                                  ("ingress", "drop", 100, "all", None, "0.0.0.0/0")]
    assert any("Extra: condition OpenAll is false" in n for n in result.notes)
    opened = ros(tmp_path, (tmp_path / "t.yml").read_text(), {"Open": "true"})
    assert [r["id"] for r in opened.config["security_groups"]["sg-Web"]["rules"]] == ["ingress[0]", "ingress[1]", "Extra"]
    assert opened.config["security_groups"]["sg-Web"]["rules"][1]["action"] == "accept"


def test_json_template_with_clone_and_unresolved_condition(tmp_path):
    template = {
        "ROSTemplateFormatVersion": "2015-09-01",
        "Parameters": {"Region": {"Type": "String"}},
        "Conditions": {"InBeijing": {"Fn::Equals": [{"Ref": "Region"}, "cn-beijing"]}},
        "Resources": {
            "Base": {"Type": "ALIYUN::ECS::SecurityGroup", "Properties": {
                "VpcId": "vpc-1", "SecurityGroupEgress": [
                    {"IpProtocol": "tcp", "PortRange": "443/443", "DestCidrIp": "0.0.0.0/0", "SourceCidrIp": "10.0.1.0/24"}]}},
            "Copy": {"Type": "ALIYUN::ECS::SecurityGroupClone", "Condition": "InBeijing",
                     "Properties": {"SourceSecurityGroupId": {"Ref": "Base"}, "VpcId": "vpc-1"}},
        },
    }
    result = ros(tmp_path, json.dumps(template), name="t.json")
    groups = result.config["security_groups"]
    assert groups["sg-Base"]["rules"][0] == {"id": "egress[0]", "direction": "egress", "action": "accept", "priority": 1,
                                             "protocol": "tcp", "ports": "443/443", "peer": "0.0.0.0/0",
                                             "local": "10.0.1.0/24"}
    assert groups["sg-Copy"]["rules"] == groups["sg-Base"]["rules"]
    notes = "\n".join(result.notes)
    assert "Copy: condition InBeijing is unresolved" in notes and "clone of sg-Base" in notes
    load_config(result.config)


def test_classic_group_and_unknown_properties_are_noted(tmp_path):
    result = ros(tmp_path, """
Resources:
  Classic:
    Type: ALIYUN::ECS::SecurityGroup
    Properties: {SecurityGroupIngress: [{IpProtocol: tcp, PortRange: 22/22, SourceCidrIp: 0.0.0.0/0}]}
  Vpc1:
    Type: ALIYUN::ECS::SecurityGroup
    Properties:
      VpcId: vpc-1
      Shiny: true
      SecurityGroupIngress: [{IpProtocol: tcp, PortRange: 22/22, SourceGroupId: !Ref Classic, Bogus: 1}]
""")
    assert list(result.config["security_groups"]) == ["sg-Vpc1"]
    notes = "\n".join(result.notes)
    assert "Classic: group has no VpcId (classic network)" in notes
    assert "Vpc1: unknown property Shiny ignored" in notes
    assert "Vpc1.SecurityGroupIngress[0]: unknown property Bogus ignored" in notes
    assert "Vpc1.SecurityGroupIngress[0]: peer sg-Classic is a classic-network group (out of scope); rule skipped" in notes


# ---------------------------------------------------------------- malformed input
def test_bad_yaml_names_file_and_line(tmp_path):
    (tmp_path / "bad.yml").write_text("Resources:\n  Sg:\n    Type: [unclosed\n")
    with pytest.raises(InputError) as info:
        import_config("ros", [tmp_path / "bad.yml"])
    assert str(tmp_path / "bad.yml") in str(info.value) and "invalid YAML" in str(info.value)
    assert info.value.problems[0].line is not None


@pytest.mark.parametrize("text, expected", [
    ("- just\n- a list\n", "not a ROS template"),
    ("Description: hello\n", "not a ROS template"),
    ("Resources: [1, 2]\n", "Resources must be a mapping"),
    ("Resources:\n  A: {Type: ALIYUN::ECS::SecurityGroup}\n  A: {Type: ALIYUN::ECS::SecurityGroup}\n", "duplicate key 'A'"),
    ("Resources:\n  A:\n    Type: ALIYUN::ECS::SecurityGroup\n    Properties: {VpcId: v, SecurityGroupIngress: [42]}\n",
     "a rule must be a mapping"),
])
def test_wrong_shape_names_the_file(tmp_path, text, expected):
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(InputError) as info:
        import_config("ros", [tmp_path / "t.yaml"])
    assert str(tmp_path / "t.yaml") in str(info.value) and expected in str(info.value)


def test_unsafe_yaml_tags_are_not_executed(tmp_path):
    (tmp_path / "t.yml").write_text("Resources: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(InputError):
        import_config("ros", [tmp_path / "t.yml"])


def test_every_real_template_imports_and_validates(ros_dir):
    files = sorted(ros_dir.glob("*.yml"))
    assert len(files) == 11
    for path in files:
        load_config(import_config("ros", [path]).config)
