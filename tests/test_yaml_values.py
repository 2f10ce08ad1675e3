"""Configuration values are read exactly as written: YAML 1.1's implicit types never turn a port, priority or
keyword into something else; ids have the cloud's shapes; aliases cannot blow a small file up."""
from __future__ import annotations

import time

import pytest

from flowsim.cli import main
from flowsim.config.loader import load_config

BASE = """limits: {{groups_per_eni: {limit}}}
security_groups:
  sg-a:
    type: {type}
    internal_policy: {policy}
    rules:
      - id: r1
        direction: {direction}
        action: {action}
        priority: {priority}
        protocol: {protocol}
        ports: {ports}
        source_ports: {sports}
        peer: 10.0.0.0/8
        legacy: {legacy}
prefix_lists:
  pl-a: {{entries: [10.0.0.0/8], max_entries: {max_entries}}}
interfaces:
  eni-a: {{security_groups: [sg-a], ips: [10.0.0.5], load_balancer_backend: {lb}}}
"""
GOOD = dict(limit=10, type="basic", policy="accept", direction="ingress", action="accept", priority=1, protocol="tcp",
            ports=22, sports="1-65535", legacy="false", max_entries=5, lb="false")
LINE = {"limit": 1, "type": 4, "policy": 5, "direction": 8, "action": 9, "priority": 10, "protocol": 11, "ports": 12,
        "sports": 13, "legacy": 15, "max_entries": 17, "lb": 19}
# every YAML 1.1 implicit type PyYAML would otherwise apply: base 60, octal, hex, booleans, floats, dates
TRICKY = ["22:22", "80:443", "0x16", "0o16", "on", "off", "yes", "no", "y", "n", ".inf", "-.inf", ".nan",
          "2001-12-14", "2001-12-14t21:59:43.10-05:00", "1_000", "1e3", "22.0", "٢٢"]


def validate(tmp_path, capsys, **fields) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(BASE.format(**dict(GOOD, **fields)), encoding="utf-8")
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("value", TRICKY)
@pytest.mark.parametrize("field", sorted(GOOD))
def test_no_yaml_1_1_type_reinterprets_a_value(tmp_path, capsys, field, value):
    code, err = validate(tmp_path, capsys, **{field: value})
    assert code == 2, f"{field}: {value!r} was accepted"
    assert f"c.yaml:{LINE[field]}:" in err and "Traceback" not in err


@pytest.mark.parametrize("field", ["limit", "priority", "ports", "sports", "max_entries"])
def test_leading_zeros_are_decimal_not_octal(tmp_path, capsys, field):
    assert validate(tmp_path, capsys, **{field: "010"})[0] == 0
    path = tmp_path / "c.yaml"
    config = load_config(path)
    rule = config.groups["sg-a"].rules[0]
    read = {"limit": config.limits.groups_per_eni, "priority": rule.priority, "ports": rule.ports[0],
            "sports": rule.source_ports[0], "max_entries": config.prefix_lists["pl-a"].max_entries}[field]
    assert read == 10  # never 8


def test_booleans_are_true_and_false_only(tmp_path, capsys):
    assert validate(tmp_path, capsys, legacy="true", priority=110, lb="True")[0] == 0
    for word in ("yes", "on", "y", "1"):
        assert validate(tmp_path, capsys, lb=word)[0] == 2


@pytest.mark.parametrize("ids,what", [
    ("security_groups: {'10.0.0.0/8': {rules: []}}", "security group id"),
    ("security_groups: {'': {rules: []}}", "security group id must be non-empty"),
    ("security_groups: {'sg/x': {rules: []}}", "may not hold white space, '/'"),
    ("security_groups: {123: {rules: []}}", "security group id must be non-empty text"),
    ("security_groups: {web: {rules: []}}", "starts with 'sg-'"),
    ('security_groups: {"sg-a\\tb": {rules: []}}', "may not hold white space"),
    ("prefix_lists: {office: [10.0.0.0/8]}", "starts with 'pl-'"),
    ("port_lists: {admin: [22]}", "starts with 'prl-'"),
    ("interfaces: {'eni a': {security_groups: []}}", "may not hold white space"),
])
def test_ids_have_the_cloud_s_shapes(tmp_path, capsys, ids, what):
    path = tmp_path / "c.yaml"
    path.write_text(ids + "\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert what in err and "c.yaml:1:" in err


def test_a_group_named_like_a_cidr_can_no_longer_capture_a_peer(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("security_groups:\n  '10.0.0.0/8': {rules: []}\n  sg-a: {rules: [{direction: ingress, protocol: tcp, "
                    "ports: 22, peer: 10.0.0.0/8}]}\n")
    assert main(["validate", str(path)]) == 2
    assert "10.0.0.0/8: a security group id may not hold white space, '/'" in capsys.readouterr().err


def test_long_values_are_cut_in_messages(tmp_path, capsys):
    code, err = validate(tmp_path, capsys, ports="x" * 100_000)
    assert code == 2 and len(err) < 1000 and "…" in err


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    lines.append("security_groups: {sg-a: {rules: *i}}")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert len(path.read_bytes()) < 1024
    started = time.perf_counter()
    assert main(["validate", str(path)]) == 2
    assert time.perf_counter() - started < 5  # refused before expanding (a bound against hanging, not a benchmark)
    err = capsys.readouterr().err
    assert "bomb.yaml: aliases expand the document to" in err and "refused" in err


def test_moderate_aliases_still_load(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("security_groups:\n  sg-a: {rules: [&r {direction: ingress, protocol: tcp, ports: 22, peer: 10.0.0.0/8}]}\n"
                    "  sg-b: {rules: [*r, *r]}\n")
    config = load_config(path)
    assert len(config.groups["sg-b"].rules) == 2


def test_a_ros_template_alias_bomb_is_refused_at_once(tmp_path, capsys):
    lines = ["ROSTemplateFormatVersion: '2015-09-01'", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdef", "bcdefg"):
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    lines.append('Resources:\n  sg: {Type: "ALIYUN::ECS::SecurityGroup", Properties: {SecurityGroupIngress: *g}}')
    path = tmp_path / "bomb.yml"
    path.write_text("\n".join(lines) + "\n")
    assert len(path.read_bytes()) < 1024
    started = time.perf_counter()
    assert main(["import", "ros", str(path), "-o", str(tmp_path / "out.yaml")]) == 2
    assert time.perf_counter() - started < 5
    assert "bomb.yml: aliases expand the document to" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "security_groups: &g {sg-a: {rules: [*g]}}\n"])
def test_an_alias_inside_the_value_it_names_is_refused(tmp_path, capsys, text):
    path = tmp_path / "loop.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2  # it once walked the loop until memory ran out
    assert "loop.yaml: nested too deeply" in capsys.readouterr().err


def test_a_ros_template_alias_inside_the_value_it_names_is_refused(tmp_path, capsys):
    path = tmp_path / "loop.yml"
    path.write_text("ROSTemplateFormatVersion: '2015-09-01'\nResources: &r {A: *r}\n")
    assert main(["import", "ros", str(path), "-o", str(tmp_path / "out.yaml")]) == 2
    assert "loop.yml: invalid YAML: nested more than" in capsys.readouterr().err
