"""Alibaba Cloud ECS API responses (JSON, as `aliyun ecs ...` prints them) -> native configuration.

Reads DescribeSecurityGroupAttribute (one per group; several pages of one group
merge), DescribeSecurityGroups, DescribeNetworkInterfaces, DescribePrefixLists,
DescribePrefixListAttributes, DescribePortRangeLists and DescribePortRangeListEntries,
in any order. Field names and spellings are the API's; empty strings mean unset.

A DescribePortRangeListEntries response does not name its list (the id is only in the
request), so its file must: a `PortRangeListId` field added to the response, or the
list id in the file name (`prl-xxxx.json`, `entries-prl-xxxx.json`).
Rules the cloud created itself may carry the legacy priority 110: kept, marked
`legacy: true` and noted (docs/semantics.md §1).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..model.network import LEGACY_PRIORITY
from .common import (
    PERMISSION_FIELDS,
    ConfigBuilder,
    ImportResult,
    Notes,
    input_error,
    is_set,
    native_ports,
    permission_rule,
    read_json,
)

_KINDS = ("DescribeSecurityGroupAttribute, DescribeSecurityGroups, DescribeNetworkInterfaces, "
          "DescribePrefixLists, DescribePrefixListAttributes, DescribePortRangeLists or DescribePortRangeListEntries")
_PORT_LIST_ID = re.compile(r"prl-[A-Za-z0-9]+")


def api_items(record: Mapping, outer: str, inner: str, source: str, kind: type = Mapping) -> list:
    """The list under `outer.inner` (`{"SecurityGroups": {"SecurityGroup": [...]}}`), each item of `kind`;
    documentation samples sometimes drop the inner level, which is accepted too."""
    value = record.get(outer)
    if isinstance(value, Mapping):
        value = value.get(inner)
    if value is None:
        return []
    if not isinstance(value, list):
        raise input_error(f"{outer} must hold a list, not {type(value).__name__}", source)
    for item in value:
        if not isinstance(item, kind):
            raise input_error(f"{outer} entries must be {'objects' if kind is Mapping else 'text'}, "
                              f"not {type(item).__name__}", source)
    return value


class _GroupRecord:
    """Everything the inputs say about one group: facts from every response, permissions de-duplicated."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.facts: list[tuple[str, Mapping]] = []
        self.permissions: list[tuple[str, Mapping]] = []

    def add_permission(self, source: str, perm: Mapping) -> None:
        rule_id = perm.get("SecurityGroupRuleId")
        for _, seen in self.permissions:
            same_id = is_set(rule_id) and seen.get("SecurityGroupRuleId") == rule_id
            if same_id or seen == perm:  # pages may overlap; the cloud never holds two identical rules
                return
        self.permissions.append((source, perm))


def import_files(paths: list[Path], params: Mapping[str, str]) -> ImportResult:
    """Import API responses from `paths` (see the module docstring)."""
    notes = Notes()
    builder = ConfigBuilder(notes)
    groups: dict[str, _GroupRecord] = {}
    enis: list[tuple[str, Mapping]] = []
    if params:
        notes.add("", "parameters", f"the alibaba-api importer takes no parameters; ignored {', '.join(sorted(params))}")
    for path in paths:
        source = str(path)
        document = read_json(path)
        responses = document if isinstance(document, list) else [document]
        for response in responses:
            if not isinstance(response, Mapping):
                raise input_error(f"not an ECS API response (a JSON {type(response).__name__}; expected {_KINDS})", source)
            _read_response(response, source, groups, enis, builder, notes)
    for gid, record in groups.items():
        _emit_group(gid, record, builder, notes)
    for source, eni in enis:
        _emit_interface(eni, source, builder, notes)
    return ImportResult(builder.finish(), notes.items())


def _read_response(response: Mapping, source: str, groups: dict[str, _GroupRecord], enis: list,
                   builder: ConfigBuilder, notes: Notes) -> None:
    def record(gid: Any) -> _GroupRecord:
        if not is_set(gid):
            raise input_error("a security group record has no SecurityGroupId", source)
        return groups.setdefault(str(gid), _GroupRecord(source))

    if "Code" in response and "Message" in response and "RequestId" in response and len(response) <= 5:
        raise input_error(f"an API error response, not data: {response.get('Code')}: {response.get('Message')}", source)
    if "Permissions" in response:
        rec = record(response.get("SecurityGroupId"))
        rec.facts.append((source, response))
        for perm in api_items(response, "Permissions", "Permission", source):
            rec.add_permission(source, perm)
    elif "SecurityGroups" in response:
        for item in api_items(response, "SecurityGroups", "SecurityGroup", source):
            if "SecurityGroupId" not in item and ("GroupId" in item or "IpPermissions" in item):
                raise input_error("this is an AWS EC2 DescribeSecurityGroups response (GroupId, IpPermissions), not "
                                  "an Alibaba Cloud one; flowsim imports Alibaba Cloud security groups", source)
            rec = record(item.get("SecurityGroupId"))
            rec.facts.append((source, item))
            for perm in api_items(item, "Permissions", "Permission", source):
                rec.add_permission(source, perm)
    elif "NetworkInterfaceSets" in response:
        enis.extend((source, eni) for eni in api_items(response, "NetworkInterfaceSets", "NetworkInterfaceSet", source))
    elif "PrefixLists" in response:
        for pl in api_items(response, "PrefixLists", "PrefixList", source):
            builder.add_prefix_list(str(pl.get("PrefixListId")), None, pl.get("MaxEntries"))
    elif "PrefixListId" in response and "Entries" in response:
        entries = [str(e.get("Cidr")).strip() for e in api_items(response, "Entries", "Entry", source) if is_set(e.get("Cidr"))]
        builder.add_prefix_list(str(response["PrefixListId"]), entries, response.get("MaxEntries"))
    elif "PortRangeLists" in response:
        for prl in api_items(response, "PortRangeLists", "PortRangeList", source):
            if not is_set(prl.get("PortRangeListId")):
                raise input_error("a PortRangeLists entry has no PortRangeListId", source)
            builder.add_port_list(str(prl["PortRangeListId"]).strip(), None, prl.get("MaxEntries"))
    elif "Entries" in response:
        pid = _port_list_id(response, source)
        entries = [native_ports(e.get("PortRange")) or str(e.get("PortRange")).strip()
                   for e in api_items(response, "Entries", "Entry", source) if is_set(e.get("PortRange"))]
        builder.add_port_list(pid, entries, response.get("MaxEntries"))
    elif "SecurityGroupReferences" in response:
        notes.add(source, "DescribeSecurityGroupReferences",
                  "lists which groups reference which; it holds no rules (the rules themselves carry the references); skipped")
    else:
        raise input_error(f"not a response this importer reads (expected {_KINDS}); "
                          f"top-level fields: {', '.join(list(response)[:8]) or 'none'}", source)


def _port_list_id(response: Mapping, source: str) -> str:
    """The list a DescribePortRangeListEntries response belongs to: its PortRangeListId, else the file name's."""
    if is_set(response.get("PortRangeListId")):
        return str(response["PortRangeListId"]).strip()
    found = _PORT_LIST_ID.findall(Path(source).name)
    if len(found) != 1:
        raise input_error("a DescribePortRangeListEntries response does not say which port list it holds; add "
                          "\"PortRangeListId\" to it or put the list id in the file name (prl-xxxx.json)", source)
    return found[0]


def _emit_group(gid: str, record: _GroupRecord, builder: ConfigBuilder, notes: Notes) -> None:
    vpc = next((f.get("VpcId") for _, f in record.facts if is_set(f.get("VpcId"))), None)
    if vpc is None:
        notes.add(record.source, gid, f"classic-network group (no VpcId); out of scope, skipped with its "
                                      f"{len(record.permissions)} rule(s)")
        builder.classic.add(gid)
        return
    for source, facts in record.facts:
        builder.add_group(gid, source, type=facts.get("SecurityGroupType"), vpc=facts.get("VpcId"),
                          internal_policy=facts.get("InnerAccessPolicy"), name=facts.get("SecurityGroupName"),
                          description=facts.get("Description"))
    group = builder.groups[gid]
    if "type" not in group and group.get("internal_policy") != "accept":
        notes.add(record.source, gid, "SecurityGroupType not given (DescribeSecurityGroupAttribute omits it) and the "
                                      "internal policy does not rule out an advanced group: assumed basic; add the "
                                      "DescribeSecurityGroups response to be sure")
    for position, (source, perm) in enumerate(record.permissions, 1):
        rule_id = perm.get("SecurityGroupRuleId")
        subject = f"{gid} rule {rule_id}" if is_set(rule_id) else f"{gid} rule #{position}"
        unknown = sorted(set(perm) - PERMISSION_FIELDS)
        if unknown:
            notes.add(source, subject, f"unknown field(s) {', '.join(unknown)} ignored")
        rule = builder.add_rule(gid, permission_rule(perm, perm.get("Direction"), rule_id), source, subject)
        if rule is not None and rule.get("priority") == LEGACY_PRIORITY:
            rule["legacy"] = True
            notes.add(source, subject, f"priority {LEGACY_PRIORITY} is the legacy value of rules the cloud created "
                                       "itself; kept and marked legacy: true (it sorts after every 1..100 rule)")


def _emit_interface(eni: Mapping, source: str, builder: ConfigBuilder, notes: Notes) -> None:
    eid = eni.get("NetworkInterfaceId")
    if not is_set(eid):
        raise input_error("a NetworkInterfaceSet entry has no NetworkInterfaceId", source)
    if not is_set(eni.get("VpcId")):
        notes.add(source, str(eid), "interface has no VpcId (classic network); out of scope, skipped")
        return
    ips = []
    for item in api_items(eni, "PrivateIpSets", "PrivateIpSet", source):
        address = item.get("PrivateIpAddress")
        if is_set(address):
            if str(item.get("Primary")).lower() == "true":
                ips.insert(0, address)
            else:
                ips.append(address)
    primary_ip = eni.get("PrivateIpAddress") or eni.get("PrimaryIpAddress")
    if is_set(primary_ip):
        ips = [primary_ip] + [ip for ip in ips if ip != primary_ip]
    groups = api_items(eni, "SecurityGroupIds", "SecurityGroupId", source, str)
    for gid in (g for g in groups if g in builder.classic):
        notes.add(source, str(eid), f"classic-network group {gid} left out of the interface's groups")
    builder.add_interface(
        str(eid), source, vpc=eni.get("VpcId"), instance=eni.get("InstanceId"),
        groups=[g for g in groups if g not in builder.classic],
        ips=ips,
        ipv6=[i.get("Ipv6Address") for i in api_items(eni, "Ipv6Sets", "Ipv6Set", source) if is_set(i.get("Ipv6Address"))],
        ipv4_prefixes=[i.get("Ipv4Prefix") for i in api_items(eni, "Ipv4PrefixSets", "Ipv4PrefixSet", source)
                       if is_set(i.get("Ipv4Prefix"))],
        ipv6_prefixes=[i.get("Ipv6Prefix") for i in api_items(eni, "Ipv6PrefixSets", "Ipv6PrefixSet", source)
                       if is_set(i.get("Ipv6Prefix"))],
    )
