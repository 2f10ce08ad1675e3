"""Terraform resources of the alicloud provider -> native groups, rules, prefix lists and ENIs.

Both Terraform readers (HCL/JSON configuration, `terraform show -json`) present
their resources as `TfInstance`s; `emit_resources` maps the provider's fields
(see the provider docs for alicloud_security_group and alicloud_security_group_rule)
onto the native configuration, so both readers agree on every field.
"""
from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from typing import Any

from .common import ConfigBuilder, Notes, RawRule, Unknown, first_unknown, is_set, placeholder_id

GROUP = "alicloud_security_group"
RULE = "alicloud_security_group_rule"
VPC = "alicloud_vpc"
VSWITCH = "alicloud_vswitch"
INSTANCE = "alicloud_instance"
ENIS = ("alicloud_ecs_network_interface", "alicloud_network_interface")
ATTACHMENTS = ("alicloud_ecs_network_interface_attachment", "alicloud_network_interface_attachment")
PREFIX_LIST = "alicloud_ecs_prefix_list"

#: Resource type -> kind of id it gets (common.ID_PREFIX).
ID_KINDS = {GROUP: "group", VPC: "vpc", VSWITCH: "vswitch", INSTANCE: "instance", PREFIX_LIST: "prefix_list",
            **{t: "eni" for t in ENIS}}

_META = {"count", "for_each", "depends_on", "provider", "lifecycle", "timeouts"}
_GROUP_FIELDS = _META | {"name", "security_group_name", "description", "vpc_id", "security_group_type",
                         "inner_access_policy", "inner_access", "tags", "resource_group_id"}
#: Native RawRule field -> provider argument, for the rule resource.
_RULE_MAP = {"direction": "type", "protocol": "ip_protocol", "port_range": "port_range", "policy": "policy",
             "priority": "priority", "cidr4": "cidr_ip", "cidr6": "ipv6_cidr_ip", "group": "source_security_group_id",
             "prefix_list": "prefix_list_id", "nic_type": "nic_type", "description": "description",
             "group_owner": "source_group_owner_account"}
_RULE_FIELDS = _META | set(_RULE_MAP.values()) | {"security_group_id", "source_group_owner_id"}


class TfInstance(ABC):
    """One resource instance as either Terraform reader sees it."""

    rtype: str
    address: str  # e.g. alicloud_security_group.web[0] or module.sg.alicloud_security_group.this
    source: str
    line: int | None = None

    @property
    @abstractmethod
    def id(self) -> str | Unknown:
        """The instance's id (the real one from state, else a readable placeholder)."""

    @abstractmethod
    def attr(self, name: str) -> Any:
        """An argument's value: None when unset, `Unknown` when it cannot be known offline."""

    def fields(self) -> set[str] | None:
        """Arguments written in the configuration (None where the reader sees the full schema)."""
        return None


def emit_resources(instances: list[TfInstance], builder: ConfigBuilder, notes: Notes) -> None:
    """Add every modelled resource of `instances` to `builder`, noting what is skipped or assumed."""
    by_type: dict[str, list[TfInstance]] = {}
    for inst in instances:
        by_type.setdefault(inst.rtype, []).append(inst)
    for inst in by_type.get(PREFIX_LIST, []):
        _prefix_list(inst, builder, notes)
    for inst in by_type.get(GROUP, []):
        _group(inst, builder, notes)
    for inst in by_type.get(RULE, []):
        _rule(inst, builder, notes)
    vswitches = {inst.id: inst for inst in by_type.get(VSWITCH, []) if isinstance(inst.id, str)}
    attached: dict[str, Any] = {}
    for inst in (i for t in ATTACHMENTS for i in by_type.get(t, [])):
        eni = inst.attr("network_interface_id")
        if isinstance(eni, str):
            attached[eni] = inst.attr("instance_id")
    for inst in (i for t in ENIS for i in by_type.get(t, [])):
        groups = _first_set(inst, "security_group_ids", "security_groups")
        primary = _first_set(inst, "primary_ip_address", "private_ip", "private_ip_address")
        secondary = _first_set(inst, "private_ip_addresses", "private_ips", "secondary_private_ip_addresses")
        _interface(inst, builder, notes, groups, vswitches, primary, secondary, attached.get(inst.id))
    for inst in by_type.get(INSTANCE, []):
        if inst.attr("vswitch_id") is None:
            notes.add(inst.source, inst.address, "instance has no vswitch_id (classic network); out of scope, skipped", inst.line)
            continue
        _interface(inst, builder, notes, inst.attr("security_groups"), vswitches, inst.attr("private_ip"),
                   inst.attr("secondary_private_ips"), inst.id)


def _first_set(inst: TfInstance, *names: str) -> Any:
    return next((v for v in (inst.attr(n) for n in names) if v is not None), None)


def _unknown_fields(inst: TfInstance, known: set[str], notes: Notes) -> None:
    written = inst.fields()
    if written is not None and written - known:
        notes.add(inst.source, inst.address, f"unknown field(s) {', '.join(sorted(written - known))} ignored", inst.line)


def _known(inst: TfInstance, name: str, notes: Notes, treatment: str) -> Any:
    """An argument's value, or None (noted) when it is unresolved."""
    value = inst.attr(name)
    unknown = first_unknown(value)
    if unknown is None:
        return value
    text = f" = {unknown.text}" if unknown.text else ""
    notes.add(inst.source, inst.address, f"{name}{text} is unresolved ({unknown.reason}); {treatment}", inst.line)
    return None


def _group(inst: TfInstance, builder: ConfigBuilder, notes: Notes) -> None:
    _unknown_fields(inst, _GROUP_FIELDS, notes)
    gid = inst.id
    if isinstance(gid, Unknown):
        notes.add(inst.source, inst.address, f"id is unresolved ({gid.reason}); group skipped", inst.line)
        return
    vpc = inst.attr("vpc_id")
    if isinstance(vpc, Unknown):
        placeholder = placeholder_id("vpc", vpc.text or f"{inst.address}.vpc_id")
        text = f" = {vpc.text}" if vpc.text else ""
        notes.add(inst.source, inst.address, f"vpc_id{text} is unresolved ({vpc.reason}); "
                                             f"kept placeholder VPC id {placeholder}", inst.line)
        vpc = placeholder
    elif not is_set(vpc):
        notes.add(inst.source, inst.address, "group has no vpc_id (classic network); out of scope, skipped with its rules", inst.line)
        builder.classic.add(gid)
        return
    gtype = _known(inst, "security_group_type", notes, "assumed normal (basic)")
    policy = _known(inst, "inner_access_policy", notes, "left to the type's default")
    if policy is None:
        inner = _known(inst, "inner_access", notes, "left to the type's default")
        if isinstance(inner, (bool, str)) and str(inner).lower() in ("true", "false"):
            policy = "accept" if str(inner).lower() == "true" else "drop"
    name = next((v for v in (inst.attr("security_group_name"), inst.attr("name")) if isinstance(v, str) and v), None)
    description = inst.attr("description")
    builder.add_group(gid, inst.source, type=gtype, vpc=vpc, internal_policy=policy, name=name,
                      description=description if isinstance(description, str) else None, line=inst.line)


def _group_ref(value: Any, inst: TfInstance, what: str, builder: ConfigBuilder, notes: Notes, vpc: Any) -> str:
    """A group id from an argument; unresolved ones become placeholders, unknown ones empty groups (noted)."""
    if isinstance(value, Unknown):
        gid = placeholder_id("group", value.text or f"{inst.address}.{what}")
        builder.ensure_group(gid, vpc, inst.source, inst.address, f"{what} is unresolved ({value.reason})", inst.line)
        return gid
    gid = str(value)
    builder.ensure_group(gid, vpc, inst.source, inst.address, f"{what} names {gid}, which is not defined in the inputs",
                         inst.line)
    return gid


def _rule(inst: TfInstance, builder: ConfigBuilder, notes: Notes) -> None:
    _unknown_fields(inst, _RULE_FIELDS, notes)
    target = inst.attr("security_group_id")
    if not isinstance(target, Unknown) and not is_set(target):
        notes.add(inst.source, inst.address, "rule has no security_group_id; skipped", inst.line)
        return
    if isinstance(target, str) and target in builder.classic:
        notes.add(inst.source, inst.address, f"rule of classic-network group {target}; skipped", inst.line)
        return
    gid = _group_ref(target, inst, "security_group_id", builder, notes, None)
    values = {field: inst.attr(arg) for field, arg in _RULE_MAP.items()}
    if values["group_owner"] is None:
        values["group_owner"] = inst.attr("source_group_owner_id")
    if values["port_range"] is None and str(values["protocol"]).lower() in ("tcp", "udp"):
        notes.add(inst.source, inst.address, "no port_range: the provider's default -1/-1 (all ports) is refused by the "
                                             "cloud for tcp and udp; imported as all ports", inst.line)
    rule_id = inst.address.split(".", 1)[1] if inst.address.startswith(RULE + ".") else inst.address
    builder.add_rule(gid, RawRule(id=rule_id, **values), inst.source, inst.address, inst.line, _RULE_MAP)


def _prefix_list(inst: TfInstance, builder: ConfigBuilder, notes: Notes) -> None:
    entries = _known(inst, "entry", notes, "prefix list imported without entries")
    entries = entries if isinstance(entries, list) else []
    cidrs = [e.get("cidr") for e in entries if isinstance(e, dict) and isinstance(e.get("cidr"), str)]
    max_entries = _known(inst, "max_entries", notes, "left unset")
    if isinstance(inst.id, Unknown):
        notes.add(inst.source, inst.address, f"id is unresolved ({inst.id.reason}); prefix list skipped", inst.line)
        return
    builder.add_prefix_list(inst.id, cidrs, max_entries if isinstance(max_entries, int) else None)


def _addresses(inst: TfInstance, notes: Notes, what: str, values: Any, version: int, network: bool = False) -> list[str]:
    """Literal addresses (or prefixes) from an argument; unresolved or malformed ones are noted and left out."""
    unknown = first_unknown(values)
    if unknown is not None:
        text = f" = {unknown.text}" if unknown.text else ""
        notes.add(inst.source, inst.address, f"{what}{text} is unresolved ({unknown.reason}); left out", inst.line)
        return []
    out = []
    for value in values if isinstance(values, list) else ([] if values is None else [values]):
        try:
            parsed = ipaddress.ip_network(str(value), strict=False) if network else ipaddress.ip_address(str(value))
        except ValueError:
            notes.add(inst.source, inst.address, f"{what} value {value!r} is not an IPv{version} "
                                                 f"{'prefix' if network else 'address'}; left out", inst.line)
            continue
        if parsed.version == version:
            out.append(str(parsed))
    return out


def _interface(inst: TfInstance, builder: ConfigBuilder, notes: Notes, groups: Any, vswitches: dict[str, TfInstance],
               primary: Any, secondary: Any, instance_id: Any) -> None:
    eid = inst.id
    if isinstance(eid, Unknown):
        notes.add(inst.source, inst.address, f"id is unresolved ({eid.reason}); interface skipped", inst.line)
        return
    if isinstance(groups, Unknown) or not groups:
        reason = f"unresolved ({groups.reason})" if isinstance(groups, Unknown) else "not set"
        notes.add(inst.source, inst.address, f"security groups are {reason}; interface skipped", inst.line)
        return
    vpc = _interface_vpc(inst, vswitches)
    group_ids = []
    for value in groups if isinstance(groups, list) else [groups]:
        if isinstance(value, str) and value in builder.classic:
            notes.add(inst.source, inst.address, f"classic-network group {value} left out of the interface's groups", inst.line)
            continue
        group_ids.append(_group_ref(value, inst, "security group", builder, notes, vpc))
    if vpc is None:
        vpc = next((builder.groups[g].get("vpc") for g in group_ids if builder.groups[g].get("vpc")), None)
        if vpc is not None:
            notes.add(inst.source, inst.address, f"VPC unknown from the vswitch; taken from its security groups ({vpc})", inst.line)
    ips = _addresses(inst, notes, "primary private IP", primary, 4) + _addresses(inst, notes, "secondary private IPs", secondary, 4)
    if primary is None:
        notes.add(inst.source, inst.address, "no literal private IP (the cloud assigns it at creation); "
                                             "imported without that address", inst.line)
    builder.add_interface(
        eid, inst.source, vpc=vpc, groups=group_ids, ips=ips,
        ipv6=_addresses(inst, notes, "ipv6_addresses", inst.attr("ipv6_addresses"), 6),
        ipv4_prefixes=_addresses(inst, notes, "ipv4_prefixes", inst.attr("ipv4_prefixes"), 4, network=True),
        ipv6_prefixes=_addresses(inst, notes, "ipv6_prefixes", inst.attr("ipv6_prefixes"), 6, network=True),
        instance=instance_id if isinstance(instance_id, str) else None, line=inst.line,
    )


def _interface_vpc(inst: TfInstance, vswitches: dict[str, TfInstance]) -> str | None:
    vsw = inst.attr("vswitch_id")
    if isinstance(vsw, str) and vsw in vswitches:
        vpc = vswitches[vsw].attr("vpc_id")
        return vpc if isinstance(vpc, str) and vpc else None
    return None
