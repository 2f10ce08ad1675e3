"""Importing Terraform (`flowsim import terraform`): real projects, HCL evaluation, JSON syntax and `terraform show -json`."""
from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from flowsim.config.loader import load_config, parse_protocol
from flowsim.engine.reference import Flow, ReferenceEvaluator
from flowsim.errors import InputError
from flowsim.importers import import_config


@pytest.fixture(scope="module")
def tf_dir(shared_data: Path) -> Path:
    """The real Terraform inputs (`shared_data` skips when ../shared/data is absent)."""
    return shared_data / "real" / "alicloud-sg" / "terraform"


def rule_tuples(group: dict) -> list[tuple]:
    """(direction, action, priority, protocol, ports, peer) of each rule, in order."""
    return [(r["direction"], r["action"], r["priority"], r["protocol"], r.get("ports"), r["peer"]) for r in group["rules"]]


def tf(tmp_path: Path, text: str, name: str = "main.tf", params: dict | None = None):
    (tmp_path / name).write_text(text)
    return import_config("terraform", [tmp_path], params)


# ---------------------------------------------------------------- real inputs
def test_terraformgoat_open_all_ports(tf_dir):
    result = import_config("terraform", [tf_dir / "HXSecurity-TerraformGoat" / "open_all_ports_main.tf"])
    config = result.config
    group = config["security_groups"]["sg-group"]
    assert (group["name"], group["vpc"]) == ("huocorp_terraform_goat_security_group", "vpc-vpc")
    assert rule_tuples(group) == [("ingress", "accept", 1, "tcp", "1/65535", "0.0.0.0/0")]
    assert group["rules"][0]["id"] == "allow_all_tcp"
    # the instance's groups come from alicloud_security_group.group.*.id, its VPC through the vswitch
    assert config["interfaces"] == {"i-instance": {"instance": "i-instance", "vpc": "vpc-vpc",
                                                   "security_groups": ["sg-group"], "ips": []}}
    assert any("alicloud_instance.instance" in n and "no literal private IP" in n for n in result.notes)
    load_config(config)


def test_terraformgoat_matches_its_captured_cli_output(tf_dir):
    """The lab's Terraform and the real DescribeSecurityGroupAttribute output of the deployed lab give the same rules."""
    api = tf_dir.parent / "api-json" / "HXSecurity-TerraformGoat_DescribeSecurityGroupAttribute_open_all_ports_cn-beijing.json"
    from_api = import_config("alibaba-api", [api]).config["security_groups"]["sg-2zebb34geaa1x63gtkor"]
    from_tf = import_config("terraform", [tf_dir / "HXSecurity-TerraformGoat" / "open_all_ports_main.tf"]).config
    assert rule_tuples(from_tf["security_groups"]["sg-group"]) == rule_tuples(from_api)
    assert from_tf["security_groups"]["sg-group"]["name"] == from_api["name"]


def test_terraformgoat_gives_the_same_verdicts_as_its_cli_output(tf_dir):
    """With the same two ENIs in each imported group, every probe gets the same verdict by the same kind of rule."""
    api = tf_dir.parent / "api-json" / "HXSecurity-TerraformGoat_DescribeSecurityGroupAttribute_open_all_ports_cn-beijing.json"
    from_api = import_config("alibaba-api", [api]).config
    from_tf = import_config("terraform", [tf_dir / "HXSecurity-TerraformGoat" / "open_all_ports_main.tf"]).config
    from_tf.pop("interfaces")
    probes = [("203.0.113.5", "172.16.0.10", "tcp", 40000, port) for port in (1, 22, 3389, 65535)]
    probes += [("203.0.113.5", "172.16.0.10", proto, 0, 0) for proto in ("udp", "icmp", "gre", "47")]
    probes += [("172.16.0.10", "198.51.100.1", "tcp", 40000, 443), ("172.16.0.11", "172.16.0.10", "udp", 5000, 5000)]
    flows = [Flow(ipaddress.ip_address(s), ipaddress.ip_address(d), parse_protocol(p), sp, dp) for s, d, p, sp, dp in probes]
    verdicts = []
    for config in (from_api, from_tf):
        (gid, group), = config["security_groups"].items()
        config["interfaces"] = {"eni-lab": {"vpc": group["vpc"], "security_groups": [gid], "ips": ["172.16.0.10"]},
                                "eni-peer": {"vpc": group["vpc"], "security_groups": [gid], "ips": ["172.16.0.11"]}}
        reference = ReferenceEvaluator(load_config(config))
        # a custom rule is named GROUP/RULE, which differs between the imports; defaults are named alike
        verdicts.append([(r.verdict, r.egress_rule.startswith(gid + "/") or r.egress_rule,
                          r.ingress_rule.startswith(gid + "/") or r.ingress_rule)
                         for r in map(reference.evaluate, flows)])
    assert verdicts[0] == verdicts[1]
    assert [v for v, _, _ in verdicts[0]] == ["allow"] * 4 + ["deny"] * 4 + ["allow"] * 2
    assert verdicts[0][0][2] is True  # tcp is allowed by the imported rule, not a default


def test_terraformgoat_open_common_ports(tf_dir):
    config = import_config("terraform", [tf_dir / "HXSecurity-TerraformGoat" / "open_common_ports_main.tf"]).config
    rules = config["security_groups"]["sg-group"]["rules"]
    ports = [21, 22, 23, 25, 137, 138, 445, 1433, 1434, 1521, 1522, 2375, 2376, 3306, 3389, 4505, 4506, 5432, 5500,
             5601, 5900, 6379, 8020, 9200, 27017, 50070, 50470]
    assert rule_tuples({"rules": rules}) == [("ingress", "accept", 1, "tcp", f"{p}/{p}", "0.0.0.0/0") for p in ports]
    assert [r["id"] for r in rules][:2] == ["allow_21_port", "allow_22_port"]
    load_config(config)


def test_sarakhild_three_tier_references(tf_dir):
    result = import_config("terraform", [tf_dir / "SaraKhild-terraform-infrastructure"])
    groups = result.config["security_groups"]
    assert list(groups) == ["sg-bastion-sg", "sg-db-sg", "sg-redis-sg", "sg-web-sg"]  # file order
    assert {g["vpc"] for g in groups.values()} == {"vpc-vpc"}
    assert rule_tuples(groups["sg-bastion-sg"]) == [("ingress", "accept", 1, "tcp", "22/22", "0.0.0.0/0")]
    assert rule_tuples(groups["sg-db-sg"]) == [("ingress", "accept", 1, "tcp", "22/22", "sg-bastion-sg"),
                                               ("ingress", "accept", 1, "tcp", "3306/3306", "sg-web-sg")]
    assert rule_tuples(groups["sg-redis-sg"]) == [("ingress", "accept", 1, "tcp", "22/22", "sg-bastion-sg"),
                                                  ("ingress", "accept", 1, "tcp", "6379/6379", "sg-web-sg")]
    assert rule_tuples(groups["sg-web-sg"]) == [("ingress", "accept", 1, "tcp", "22/22", "sg-bastion-sg")]
    assert any("alicloud_nat_gateway" in n for n in result.notes)  # other resource types are named, not silently lost
    load_config(result.config)


def test_nightylol911_keeps_the_users_reference_mistake(tf_dir):
    groups = import_config("terraform", [tf_dir / "Nightylol911-capestone-terraform-project"]).config["security_groups"]
    assert list(groups) == ["sg-basiton", "sg-http", "sg-mysql", "sg-redis-sg"]
    assert rule_tuples(groups["sg-http"]) == [("ingress", "accept", 1, "tcp", "22/22", "sg-basiton"),
                                              ("ingress", "accept", 1, "tcp", "80/80", "0.0.0.0/0")]
    assert rule_tuples(groups["sg-mysql"]) == [("ingress", "accept", 1, "tcp", "22/22", "sg-basiton"),
                                               ("ingress", "accept", 1, "tcp", "3306/3306", "sg-http")]
    redis = {r["id"]: r["peer"] for r in groups["sg-redis-sg"]["rules"]}
    assert redis == {"allow-ssh-reddis": "sg-basiton", "allow-web-reddis": "sg-basiton", "allow-http-ssh-reddis": "sg-http"}
    load_config({"security_groups": groups})


def test_checkov_fixture_edge_cases(tf_dir):
    result = import_config("terraform", [tf_dir / "checkov-fixtures"])
    group = result.config["security_groups"]["sg-default"]  # referenced, never defined: an empty placeholder group
    assert len(group["rules"]) == 18  # 19 rules, one without any peer
    assert ("ingress", "accept", 1, "tcp", "1/100", "0.0.0.0/0") in rule_tuples(group)
    assert ("ingress", "accept", 1, "tcp", "101/65535", "0.0.0.0/0") in rule_tuples(group)
    assert all(r["priority"] == 1 and r["action"] == "accept" for r in group["rules"])  # provider defaults
    notes = "\n".join(result.notes)
    assert "allow_all_tcp2: rule names no peer" in notes
    assert "sg-default, which is not defined in the inputs" in notes
    assert notes.count("NicType internet") == 1
    load_config(result.config)


@pytest.mark.parametrize("project, group, vpc, expected", [
    ("gablooge-alibaba-terraform-challenge", "sg-sg", "vpc-vpc",
     [("ingress", "accept", 1, "tcp", "80/80", "0.0.0.0/0"), ("ingress", "accept", 2, "tcp", "22/22", "0.0.0.0/0")]),
    ("yuboliu-iSync", "sg-default", "vpc-main",
     [("ingress", "accept", 1, "icmp", None, "0.0.0.0/0"), ("ingress", "accept", 2, "tcp", "22/22", "0.0.0.0/0")]),
    ("terraform-group-terraform-alicloud", "sg-group", "vpc-var.vpc_id",
     [("ingress", "accept", 1, "tcp", "80/80", "0.0.0.0/0"), ("ingress", "accept", 1, "tcp", "22/22", "0.0.0.0/0")]),
])
def test_small_user_projects(tf_dir, project, group, vpc, expected):
    result = import_config("terraform", [tf_dir / project])
    imported = result.config["security_groups"][group]
    assert (imported["vpc"], rule_tuples(imported)) == (vpc, expected)
    assert result.notes  # the VPC resource is outside the inputs (or a variable without default): said so
    load_config(result.config)


def test_variable_without_default_takes_a_parameter(tf_dir):
    result = import_config("terraform", [tf_dir / "terraform-group-terraform-alicloud"], {"vpc_id": "vpc-123"})
    group = result.config["security_groups"]["sg-group"]
    assert (group["vpc"], group["type"]) == ("vpc-123", "basic")
    assert any("var.vpc_id" in n and "took its value from the parameter" in n for n in result.notes)


def test_provider_security_group_example_conditional_and_count(tf_dir):
    path = tf_dir / "terraform-provider-alicloud-examples" / "security-group_main.tf"
    unresolved = import_config("terraform", [path])
    assert unresolved.config["security_groups"]["sg-default"]["vpc"] == "vpc-var.vpc_id"
    assert any("vpc_name ignored" in n for n in unresolved.notes)  # not an argument of alicloud_security_group
    # vpc_id = "" selects the module's own VPC: alicloud_vpc.this (count = 1) -> alicloud_vpc.this.0.id
    resolved = import_config("terraform", [path], {"vpc_id": ""})
    group = resolved.config["security_groups"]["sg-default"]
    assert group["vpc"] == "vpc-this[0]"
    assert rule_tuples(group) == [("ingress", "accept", 1, "tcp", "80/80", "0.0.0.0/0"),
                                  ("ingress", "accept", 1, "tcp", "22/22", "0.0.0.0/0")]


def test_provider_ecs_slb_example_is_classic_network(tf_dir):
    result = import_config("terraform", [tf_dir / "terraform-provider-alicloud-examples" / "ecs-slb_main.tf"])
    assert result.config == {"security_groups": {}}
    notes = "\n".join(result.notes)
    assert "alicloud_security_group.group: group has no vpc_id (classic network)" in notes
    assert notes.count("rule of classic-network group sg-group; skipped") == 3
    assert "alicloud_instance.instance: count = var.number is unresolved" in notes


def test_csv_driven_rules_are_unresolved(tf_dir):
    result = import_config("terraform", [tf_dir / "imeks100-alisg-csv2json"])
    assert result.config["security_groups"]["sg-this"]["rules"] == []
    assert any("security_group_rules: count = " in n and "local.data is not defined" in n for n in result.notes)


def test_module_examples_note_every_unexpanded_module(tf_dir):
    result = import_config("terraform", [tf_dir / "tf-alicloud-security-group-module"])
    assert result.config["security_groups"] == {"sg-default": {"vpc": "vpc-data.alicloud_vpcs.default.ids[0]", "rules": []}}
    module_notes = [n for n in result.notes if "is not expanded" in n]
    assert len(module_notes) == 10
    assert any("examples_complete_main.tf:26: module.complete_sg" in n for n in module_notes)
    assert any("data source" in n and "vpc_id" in n for n in result.notes)
    load_config(result.config)


def test_two_example_files_in_one_folder_collide(tf_dir):
    """Files of one directory form one module, as in Terraform; these examples redefine the same resources."""
    with pytest.raises(InputError, match="duplicate resource alicloud_security_group_rule.http-in"):
        import_config("terraform", [tf_dir / "terraform-provider-alicloud-examples"])


# ---------------------------------------------------------------- HCL evaluation
def test_count_for_each_locals_tfvars_and_functions(tmp_path):
    (tmp_path / "terraform.tfvars").write_text('office = "203.0.113.0/24"\n')
    config = tf(tmp_path, '''
variable "ports" { default = [22, 443] }
variable "office" {}
variable "tiers" { default = { web = "10.0.1.0/24", app = "10.0.2.0/24" } }
locals { prio = 1 + 1 }
resource "alicloud_vpc" "main" { cidr_block = "10.0.0.0/16" }
resource "alicloud_security_group" "tier" {
  for_each = var.tiers
  name     = "sg-${each.key}"
  vpc_id   = alicloud_vpc.main.id
}
resource "alicloud_security_group_rule" "office" {
  count             = length(var.ports)
  type              = "ingress"
  ip_protocol       = "tcp"
  port_range        = format("%d/%d", var.ports[count.index], var.ports[count.index])
  priority          = local.prio
  security_group_id = alicloud_security_group.tier["web"].id
  cidr_ip           = var.office
}
resource "alicloud_security_group_rule" "app_from_web" {
  type                     = "egress"
  ip_protocol              = "all"
  policy                   = "drop"
  security_group_id        = alicloud_security_group.tier["app"].id
  source_security_group_id = alicloud_security_group.tier["web"].id
}
''').config
    groups = config["security_groups"]
    assert list(groups) == ["sg-tier[web]", "sg-tier[app]"]
    assert groups["sg-tier[web]"]["name"] == "sg-web" and groups["sg-tier[web]"]["vpc"] == "vpc-main"
    assert [(r["id"], r["ports"], r["priority"], r["peer"]) for r in groups["sg-tier[web]"]["rules"]] == [
        ("office[0]", "22/22", 2, "203.0.113.0/24"), ("office[1]", "443/443", 2, "203.0.113.0/24")]
    assert rule_tuples(groups["sg-tier[app]"]) == [("egress", "drop", 1, "all", None, "sg-tier[web]")]
    load_config(config)


def test_interfaces_with_literal_addresses_and_attachment(tmp_path):
    result = tf(tmp_path, '''
resource "alicloud_vpc" "v" { cidr_block = "10.0.0.0/16" }
resource "alicloud_vswitch" "s" {
  vpc_id     = alicloud_vpc.v.id
  cidr_block = cidrsubnet(alicloud_vpc.v.cidr_block, 8, 1)
}
resource "alicloud_security_group" "web" { vpc_id = alicloud_vpc.v.id }
resource "alicloud_instance" "web" {
  count           = 2
  vswitch_id      = alicloud_vswitch.s.id
  security_groups = [alicloud_security_group.web.id]
  private_ip      = cidrhost(alicloud_vswitch.s.cidr_block, 10 + count.index)
}
resource "alicloud_ecs_network_interface" "extra" {
  vswitch_id         = alicloud_vswitch.s.id
  security_group_ids = [alicloud_security_group.web.id]
  primary_ip_address = "10.0.1.50"
  private_ip_addresses = ["10.0.1.51"]
  ipv6_addresses     = ["2001:db8::50"]
}
resource "alicloud_ecs_network_interface_attachment" "a" {
  network_interface_id = alicloud_ecs_network_interface.extra.id
  instance_id          = alicloud_instance.web[0].id
}
''')
    interfaces = result.config["interfaces"]
    assert interfaces["i-web[0]"] == {"instance": "i-web[0]", "vpc": "vpc-v", "security_groups": ["sg-web"], "ips": ["10.0.1.10"]}
    assert interfaces["i-web[1]"]["ips"] == ["10.0.1.11"]
    assert interfaces["eni-extra"] == {"instance": "i-web[0]", "vpc": "vpc-v", "security_groups": ["sg-web"],
                                       "ips": ["10.0.1.50", "10.0.1.51"], "ipv6": ["2001:db8::50"]}
    load_config(result.config)


def test_dynamic_blocks_in_a_prefix_list_and_a_prefix_list_peer(tmp_path):
    config = tf(tmp_path, '''
variable "office" { default = ["203.0.113.0/24", "198.51.100.0/24"] }
resource "alicloud_ecs_prefix_list" "office" {
  max_entries = 5
  dynamic "entry" {
    for_each = var.office
    content { cidr = entry.value }
  }
}
resource "alicloud_security_group" "g" { vpc_id = "vpc-1" }
resource "alicloud_security_group_rule" "r" {
  type = "ingress"
  ip_protocol = "tcp"
  port_range = "443/443"
  security_group_id = alicloud_security_group.g.id
  prefix_list_id = alicloud_ecs_prefix_list.office.id
}
''').config
    assert config["prefix_lists"] == {"pl-office": {"entries": ["203.0.113.0/24", "198.51.100.0/24"], "max_entries": 5}}
    assert config["security_groups"]["sg-g"]["rules"][0]["peer"] == "pl-office"
    load_config(config)


def test_unresolved_values_are_noted_by_attribute(tmp_path):
    result = tf(tmp_path, '''
data "alicloud_security_groups" "existing" { name_regex = "^web" }
variable "port" {}
resource "alicloud_security_group" "g" {
  vpc_id = "vpc-1"
  inner_access_policy = "Drop"
}
resource "alicloud_security_group_rule" "from_existing" {
  type = "ingress"
  ip_protocol = "tcp"
  port_range = "22/22"
  security_group_id = alicloud_security_group.g.id
  source_security_group_id = data.alicloud_security_groups.existing.ids[0]
}
resource "alicloud_security_group_rule" "needs_port" {
  type = "ingress"
  ip_protocol = "tcp"
  port_range = var.port
  security_group_id = alicloud_security_group.g.id
  cidr_ip = "0.0.0.0/0"
}
''')
    rules = result.config["security_groups"]["sg-g"]["rules"]
    assert result.config["security_groups"]["sg-g"]["internal_policy"] == "drop"
    assert [r["id"] for r in rules] == ["from_existing"]
    assert rules[0]["peer"] == "sg-data.alicloud_security_groups.existing.ids[0]"
    notes = "\n".join(result.notes)
    assert "main.tf:8: alicloud_security_group_rule.from_existing: source_security_group_id = " \
           "data.alicloud_security_groups.existing.ids[0] is unresolved (a data source" in notes
    assert "alicloud_security_group_rule.needs_port: unresolved: port_range = var.port (variable port has no default" in notes
    load_config(result.config)


def test_json_configuration_syntax(tmp_path):
    document = {
        "variable": {"cidr": {"default": "10.0.0.0/8"}},
        "resource": {
            "alicloud_security_group": {"web": {"vpc_id": "vpc-1", "security_group_type": "enterprise"}},
            "alicloud_security_group_rule": {"ssh": {
                "type": "ingress", "ip_protocol": "tcp", "port_range": "22/22",
                "security_group_id": "${alicloud_security_group.web.id}", "cidr_ip": "${var.cidr}"}},
        },
    }
    (tmp_path / "main.tf.json").write_text(json.dumps(document))
    config = import_config("terraform", [tmp_path]).config
    group = config["security_groups"]["sg-web"]
    assert group["type"] == "advanced"
    assert rule_tuples(group) == [("ingress", "accept", 1, "tcp", "22/22", "10.0.0.0/8")]


# ---------------------------------------------------------------- terraform show -json
STATE = {
    "format_version": "1.0",
    "values": {"root_module": {"resources": [
        {"address": "alicloud_security_group.web", "mode": "managed", "type": "alicloud_security_group", "name": "web",
         "values": {"id": "sg-2ze111", "vpc_id": "vpc-2ze999", "security_group_type": "normal",
                    "inner_access_policy": "Accept", "name": "web"}},
        {"address": "alicloud_security_group_rule.https", "mode": "managed", "type": "alicloud_security_group_rule",
         "name": "https", "values": {"id": "sg-2ze111:ingress:tcp:443/443:intranet:0.0.0.0/0:accept:1", "type": "ingress",
                                     "ip_protocol": "tcp", "port_range": "443/443", "policy": "accept", "priority": 1,
                                     "nic_type": "intranet", "cidr_ip": "0.0.0.0/0", "ipv6_cidr_ip": "",
                                     "source_security_group_id": "", "prefix_list_id": "",
                                     "security_group_id": "sg-2ze111", "description": ""}},
        {"address": "data.alicloud_zones.z", "mode": "data", "type": "alicloud_zones", "name": "z", "values": {}},
    ], "child_modules": [{"address": "module.db", "resources": [
        {"address": "module.db.alicloud_security_group.this[0]", "mode": "managed", "type": "alicloud_security_group",
         "name": "this", "index": 0, "values": {"id": "sg-2ze222", "vpc_id": "vpc-2ze999"}},
        {"address": "module.db.alicloud_security_group_rule.mysql[0]", "mode": "managed",
         "type": "alicloud_security_group_rule", "name": "mysql", "index": 0,
         "values": {"type": "ingress", "ip_protocol": "tcp", "port_range": "3306/3306", "priority": 1, "policy": "accept",
                    "source_security_group_id": "sg-2ze111", "security_group_id": "sg-2ze222", "cidr_ip": ""}},
    ]}]}},
}

PLAN = {
    "format_version": "1.2",
    "planned_values": {"root_module": {"resources": [
        {"address": "alicloud_vpc.main", "mode": "managed", "type": "alicloud_vpc", "name": "main",
         "values": {"cidr_block": "10.0.0.0/16"}},
        {"address": "alicloud_security_group.web", "mode": "managed", "type": "alicloud_security_group", "name": "web",
         "values": {"name": "web"}},
        {"address": "alicloud_security_group_rule.ssh", "mode": "managed", "type": "alicloud_security_group_rule",
         "name": "ssh", "values": {"type": "ingress", "ip_protocol": "tcp", "port_range": "22/22", "priority": 1,
                                   "cidr_ip": "10.0.0.0/8"}},
    ]}},
    "configuration": {"root_module": {"resources": [
        {"address": "alicloud_security_group.web", "type": "alicloud_security_group", "name": "web",
         "expressions": {"vpc_id": {"references": ["alicloud_vpc.main.id", "alicloud_vpc.main"]}}},
        {"address": "alicloud_security_group_rule.ssh", "type": "alicloud_security_group_rule", "name": "ssh",
         "expressions": {"security_group_id": {"references": ["alicloud_security_group.web.id", "alicloud_security_group.web"]}}},
    ]}},
}


def test_show_json_state_with_child_module(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps(STATE))
    config = import_config("terraform", [tmp_path / "state.json"]).config
    groups = config["security_groups"]
    assert list(groups) == ["sg-2ze111", "sg-2ze222"]
    assert (groups["sg-2ze111"]["vpc"], groups["sg-2ze111"]["internal_policy"]) == ("vpc-2ze999", "accept")
    assert rule_tuples(groups["sg-2ze111"]) == [("ingress", "accept", 1, "tcp", "443/443", "0.0.0.0/0")]
    assert groups["sg-2ze111"]["rules"][0]["id"] == "https"
    assert rule_tuples(groups["sg-2ze222"]) == [("ingress", "accept", 1, "tcp", "3306/3306", "sg-2ze111")]
    assert groups["sg-2ze222"]["rules"][0]["id"] == "module.db.alicloud_security_group_rule.mysql[0]"
    load_config(config)


def test_show_json_plan_resolves_references_from_configuration(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    config = import_config("terraform", [tmp_path / "plan.json"]).config
    group = config["security_groups"]["sg-web"]
    assert group["vpc"] == "vpc-main"
    assert rule_tuples(group) == [("ingress", "accept", 1, "tcp", "22/22", "10.0.0.0/8")]


# ---------------------------------------------------------------- malformed input
def test_bad_hcl_names_file_and_line(tmp_path):
    (tmp_path / "broken.tf").write_text('resource "alicloud_security_group" "g" {\n  vpc_id = "vpc-1"\n  name = = "x"\n}\n')
    with pytest.raises(InputError) as info:
        import_config("terraform", [tmp_path / "broken.tf"])
    assert f"{tmp_path / 'broken.tf'}:3:" in str(info.value) and "invalid HCL" in str(info.value)


@pytest.mark.parametrize("name, text, expected", [
    ("x.json", '{"Resources": {}}', "neither a Terraform JSON configuration nor `terraform show -json` output"),
    ("x.json", '[1, 2]', "not Terraform JSON"),
    ("x.json", '{"resource": ', "invalid JSON"),
    ("x.tf", 'server "web" { port = 80 }\n', "unsupported top-level block type 'server'"),
    ("x.tf", 'port = 80\n', "outside any block"),
    ("x.tf", 'resource "alicloud_security_group" { }\n', "needs a type and a name"),
])
def test_wrong_shape_names_the_file(tmp_path, name, text, expected):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError) as info:
        import_config("terraform", [tmp_path / name])
    assert str(tmp_path / name) in str(info.value) and expected in str(info.value)


def test_duplicate_resource_names_both_places(tmp_path):
    (tmp_path / "a.tf").write_text('resource "alicloud_security_group" "g" { vpc_id = "v" }\n')
    (tmp_path / "b.tf").write_text('\nresource "alicloud_security_group" "g" { vpc_id = "v" }\n')
    with pytest.raises(InputError) as info:
        import_config("terraform", [tmp_path])
    assert f"{tmp_path / 'b.tf'}:2:" in str(info.value) and f"{tmp_path / 'a.tf'}:1" in str(info.value)


def test_every_real_project_imports_and_validates(tf_dir):
    """Each project folder (each file where a folder holds unrelated examples) gives a valid configuration."""
    inputs = []
    for folder in sorted(p for p in tf_dir.iterdir() if p.is_dir()):
        separate = folder.name in ("HXSecurity-TerraformGoat", "terraform-provider-alicloud-examples")
        inputs += sorted(folder.glob("*.tf")) if separate else [folder]
    assert len(inputs) == 12
    for item in inputs:
        load_config(import_config("terraform", [item]).config)


def test_show_json_of_an_unexpected_shape(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"format_version": "1.0", "values": {"root_module": {"resources": ["oops"]}}}))
    with pytest.raises(InputError) as info:
        import_config("terraform", [path])
    assert str(path) in str(info.value) and "unexpected shape" in str(info.value)


def test_another_clouds_resources_are_refused_saying_what_they_are(shared_data, tmp_path, capsys):
    """AWS Terraform is no empty Alibaba Cloud configuration: exit 2 naming the cloud, and no file written."""
    from flowsim.cli import main

    target = tmp_path / "aws.yaml"
    code = main(["import", "terraform", str(shared_data / "real" / "aws-sg" / "terraform" / "HXSecurity-TerraformGoat"),
                 "-o", str(target)])
    err = capsys.readouterr().err
    assert code == 2 and "AWS resources" in err and "aws_security_group" in err and not target.exists()
    aws_json = shared_data / "real" / "aws-sg" / "json" / "cloudmapper-demo" / "ec2-describe-security-groups.json"
    code = main(["import", "alibaba-api", str(aws_json), "-o", str(target)])
    err = capsys.readouterr().err
    assert code == 2 and "AWS EC2 DescribeSecurityGroups" in err and not target.exists()


def test_other_clouds_in_every_import_format_are_refused_naming_the_file(tmp_path, capsys):
    """`terraform show -json` of AWS resources, a CloudFormation template given to the ROS importer and an HCL file
    of Google Cloud resources were imported as empty configurations (or named only their directory)."""
    from flowsim.cli import main

    show = tmp_path / "show.json"
    show.write_text(json.dumps({"format_version": "1.0", "values": {"root_module": {"resources": [
        {"address": "aws_security_group.web", "mode": "managed", "type": "aws_security_group", "name": "web",
         "values": {"name": "web", "ingress": [{"from_port": 22, "to_port": 22, "protocol": "tcp",
                                                "cidr_blocks": ["0.0.0.0/0"]}]}}]}}}))
    cfn = tmp_path / "stack.json"
    cfn.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Sg": {
        "Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "web", "SecurityGroupIngress": [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}]}}}}))
    hcl = tmp_path / "gcp.tf"
    hcl.write_text('resource "google_compute_firewall" "ssh" {\n  name = "ssh"\n}\n')
    target = tmp_path / "out.yaml"
    for fmt, path, cloud in (("terraform", show, "AWS resources (aws_security_group)"),
                             ("ros", cfn, "AWS CloudFormation resources (AWS::EC2::SecurityGroup)"),
                             ("terraform", hcl, "Google Cloud resources (google_compute_firewall)")):
        assert main(["import", fmt, str(path), "-o", str(target)]) == 2, path
        err = capsys.readouterr().err
        assert f"error: {path}: these are {cloud}" in err and "nothing of Alibaba Cloud's was found" in err
        assert not target.exists()


def test_an_import_that_finds_nothing_says_so(tmp_path, capsys):
    from flowsim.cli import main

    path = tmp_path / "vars.tf"
    path.write_text('variable "region" {\n  default = "cn-hangzhou"\n}\n')
    assert main(["import", "terraform", str(path), "-o", str(tmp_path / "out.yaml")]) == 0
    err = capsys.readouterr().err
    assert f"warning: nothing was imported: {path} holds no Alibaba Cloud security group" in err
