"""What the three importers share: the result type, notes, unresolved values,
rule normalisation (API vocabulary -> native rule) and the configuration builder.

Every importer turns its source into `RawRule`s and group/interface facts, and
`ConfigBuilder` turns those into the native mapping of docs/formats.md (configuration), so
protocol, port, priority and peer handling is written once.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, Problem

#: Prefixes the cloud gives ids of each kind; importers without real ids build
#: readable ones as PREFIX + source name (Terraform resource name, ROS logical id).
ID_PREFIX = {"group": "sg-", "vpc": "vpc-", "vswitch": "vsw-", "eni": "eni-", "instance": "i-", "prefix_list": "pl-",
             "port_list": "prl-"}
#: The API's group type names -> native ones.
_GROUP_TYPES = {"normal": "basic", "enterprise": "advanced"}


@dataclass
class ImportResult:
    """A native configuration mapping and everything the import skipped or assumed."""

    config: dict
    notes: list[str]

    def to_yaml(self) -> str:
        """The configuration as native YAML text, keys in the order the importer wrote them."""
        import yaml

        return yaml.safe_dump(self.config, sort_keys=False, allow_unicode=True)


@dataclass(frozen=True)
class Unknown:
    """A value that cannot be known offline; `reason` says why, `text` is the source expression."""

    reason: str
    text: str = ""


def first_unknown(*values: Any) -> Unknown | None:
    """The first `Unknown` among `values` (searching inside lists and dicts), else None."""
    for value in values:
        if isinstance(value, Unknown):
            return value
        if isinstance(value, (list, tuple)):
            found = first_unknown(*value)
        elif isinstance(value, dict):
            found = first_unknown(*value.values())
        else:
            found = None
        if found is not None:
            return found
    return None


def readable_id(kind: str, name: str) -> str:
    """`sg-web` for group `web`: the cloud prefix of `kind` plus the source name, once."""
    prefix = ID_PREFIX[kind]
    return name if name.startswith(prefix) else prefix + name


def placeholder_id(kind: str, text: str) -> str:
    """A stable id for an object whose real id is unknown offline, derived from its source expression."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\[\]-]+", "_", text).strip("_") or "unresolved"
    return readable_id(kind, cleaned)


def input_error(message: str, source: str, subject: str = "", line: int | None = None) -> InputError:
    """An `InputError` with one problem naming the file, and the object or line."""
    return InputError(Problem(message, subject=subject, source=source, line=line))


OTHER_CLOUDS = {"aws_": "AWS", "google_": "Google Cloud", "azurerm_": "Azure", "AWS::": "AWS CloudFormation"}


def other_cloud(resource_types: Sequence[str]) -> str:
    """The other cloud that resource types of an input name (e.g. "AWS" for aws_security_group), or ""."""
    for prefix, cloud in OTHER_CLOUDS.items():
        if any(t.startswith(prefix) for t in resource_types):
            return cloud
    return ""


def refuse_other_cloud(resource_types: Sequence[str], source: str, ours: str) -> None:
    """An InputError naming `source` when every resource type of an input is another cloud's (an import would
    otherwise be an empty configuration, as if the input held no security groups); `ours` words what was
    looked for ("alicloud_security_group...")."""
    types = sorted(set(resource_types))
    cloud = other_cloud(types)
    if cloud and all(other_cloud([t]) for t in types):
        raise input_error(f"these are {cloud} resources ({', '.join(types[:5])}{', ...' if len(types) > 5 else ''}), "
                          f"not Alibaba Cloud ones ({ours}); nothing of Alibaba Cloud's was found, and flowsim "
                          "imports Alibaba Cloud security groups", source)


def read_text(path: Path) -> str:
    """A file's UTF-8 text; unreadable files raise InputError naming them."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise input_error(f"cannot read file: {exc}", str(path)) from None


MAX_DEPTH = 100  # nesting levels: far past any real template or API response, well inside Python's stack


def read_json(path: Path) -> Any:
    """Parse a JSON file; malformed, too deeply nested or absurd text raises InputError naming the file."""
    try:
        return check_depth(json.loads(read_text(path)), str(path))
    except json.JSONDecodeError as exc:
        raise input_error(f"invalid JSON: {exc.msg}", str(path), line=exc.lineno) from None
    except RecursionError:
        raise input_error(f"invalid JSON: nested more than {MAX_DEPTH} levels deep", str(path)) from None
    except ValueError:  # Python refuses to convert a number of thousands of digits
        raise input_error("invalid JSON: a number of more than 4,300 digits", str(path)) from None


def check_depth(document: Any, source: str) -> Any:
    """The document, if no value in it is nested more than MAX_DEPTH levels deep (checked without recursion,
    so that what processes it afterwards cannot exhaust the stack)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise input_error(f"nested more than {MAX_DEPTH} levels deep", source,
                                  line=getattr(value, "line", None))
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return document


class Notes:
    """Ordered, de-duplicated notes, each naming its file and object."""

    def __init__(self) -> None:
        self._items: dict[str, None] = {}

    def add(self, source: str, subject: str, message: str, line: int | None = None) -> None:
        self._items[str(Problem(message, subject=subject, source=source, line=line))] = None

    def items(self) -> list[str]:
        return list(self._items)


# ---------------------------------------------------------------- rules
@dataclass
class RawRule:
    """One rule as a source states it, in the ECS API's vocabulary, before normalisation.

    Empty strings and None both mean unset. `local4`/`local6` are the quintuple
    local side (ingress DestCidrIp, egress SourceCidrIp).
    """

    direction: Any
    protocol: Any
    port_range: Any = None
    policy: Any = None
    priority: Any = None
    source_port_range: Any = None
    cidr4: Any = None
    cidr6: Any = None
    group: Any = None
    prefix_list: Any = None
    local4: Any = None
    local6: Any = None
    nic_type: Any = None
    description: Any = None
    group_owner: Any = None
    id: Any = None
    port_list: Any = None


#: Rule fields of the ECS API: DescribeSecurityGroupAttribute's Permission, the AuthorizeSecurityGroup
#: (Egress) parameters and ROS rule properties, which share these names.
PERMISSION_FIELDS = frozenset({
    "Direction", "IpProtocol", "PortRange", "SourcePortRange", "Policy", "Priority", "NicType", "Description",
    "SourceCidrIp", "DestCidrIp", "Ipv6SourceCidrIp", "Ipv6DestCidrIp", "SourceGroupId", "DestGroupId",
    "SourcePrefixListId", "DestPrefixListId", "SourceGroupOwnerAccount", "DestGroupOwnerAccount",
    "SourceGroupOwnerId", "DestGroupOwnerId", "SourceGroupName", "DestGroupName", "SourcePrefixListName",
    "DestPrefixListName", "SecurityGroupRuleId", "CreateTime", "PortRangeListId", "PortRangeListName",
})


def permission_rule(fields: Any, direction: Any, rule_id: Any = None) -> RawRule:
    """A `RawRule` from API-named fields: the peer is the Source* side on ingress and the Dest* side
    on egress; the other side's CIDR is the quintuple local address."""
    egress = str(direction).strip().lower() == "egress"
    peer, local = ("Dest", "Source") if egress else ("Source", "Dest")
    owner = fields.get(f"{peer}GroupOwnerAccount")
    return RawRule(
        direction=direction, protocol=fields.get("IpProtocol"), port_range=fields.get("PortRange"),
        policy=fields.get("Policy"), priority=fields.get("Priority"), source_port_range=fields.get("SourcePortRange"),
        cidr4=fields.get(f"{peer}CidrIp"), cidr6=fields.get(f"Ipv6{peer}CidrIp"), group=fields.get(f"{peer}GroupId"),
        prefix_list=fields.get(f"{peer}PrefixListId"), local4=fields.get(f"{local}CidrIp"),
        local6=fields.get(f"Ipv6{local}CidrIp"), nic_type=fields.get("NicType"), description=fields.get("Description"),
        group_owner=owner if is_set(owner) else fields.get(f"{peer}GroupOwnerId"), id=rule_id,
        port_list=fields.get("PortRangeListId"),
    )


def permission_field_names(direction: Any) -> dict[str, str]:
    """RawRule field -> the API field `permission_rule` read it from, for notes."""
    egress = str(direction).strip().lower() == "egress"
    peer, local = ("Dest", "Source") if egress else ("Source", "Dest")
    return {"direction": "Direction", "protocol": "IpProtocol", "port_range": "PortRange", "policy": "Policy",
            "priority": "Priority", "source_port_range": "SourcePortRange", "cidr4": f"{peer}CidrIp",
            "cidr6": f"Ipv6{peer}CidrIp", "group": f"{peer}GroupId", "prefix_list": f"{peer}PrefixListId",
            "local4": f"{local}CidrIp", "local6": f"Ipv6{local}CidrIp", "nic_type": "NicType",
            "description": "Description", "group_owner": f"{peer}GroupOwnerAccount", "id": "SecurityGroupRuleId",
            "port_list": "PortRangeListId"}


def is_set(value: Any) -> bool:
    """API convention: None and empty strings mean unset."""
    return value is not None and not (isinstance(value, str) and value.strip() == "")


def native_ports(value: Any) -> str | None:
    """`lo/hi` for a port range; None for all ports (unset, `-1/-1`); other text is kept for the loader to judge."""
    if not is_set(value):
        return None
    text = str(value).strip()
    if text in ("-1", "-1/-1"):
        return None
    parts = text.split("/") if "/" in text else [text, text]
    if len(parts) == 2 and all(re.fullmatch(r"-?\d+", p.strip()) for p in parts):
        return f"{int(parts[0])}/{int(parts[1])}"
    return text


def native_protocol(value: Any) -> str | int:
    """tcp/udp/icmp/icmpv6/gre/all in lower case, or the IANA number."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    return text.lower()


def native_priority(value: Any) -> Any:
    """An int where the source gives digits (the API sends strings); anything else is kept for the loader."""
    if not is_set(value):
        return 1
    text = str(value).strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else value


class ConfigBuilder:
    """Accumulates groups (in source order), rules, prefix lists and ENIs into the native mapping."""

    def __init__(self, notes: Notes) -> None:
        self.notes = notes
        self.groups: dict[str, dict] = {}
        self.prefix_lists: dict[str, Any] = {}
        self.port_lists: dict[str, Any] = {}
        self.interfaces: dict[str, dict] = {}
        self._origin: dict[str, str] = {}
        self.classic: set[str] = set()  # classic-network groups, skipped: rules on or towards them are skipped too
        self._nic_noted: set[str] = set()
        self._group_refs: list[tuple[str, str, str, str]] = []  # (target, referencing group, source, subject)
        self._list_refs: list[tuple[str, str, str]] = []
        self._port_list_refs: list[tuple[str, str, str]] = []

    # -- groups
    def add_group(self, gid: str, source: str, *, type: Any = None, vpc: Any = None, internal_policy: Any = None,
                  name: Any = None, description: Any = None, line: int | None = None) -> dict:
        """Create group `gid`, or merge facts into it (paged responses); conflicting facts keep the first and are noted."""
        group = self.groups.get(gid)
        if group is None:
            group = self.groups[gid] = {"rules": []}
            self._origin[gid] = source
        facts = {"type": type, "vpc": vpc, "internal_policy": internal_policy, "name": name, "description": description}
        for key, value in facts.items():
            if not is_set(value):
                continue
            value = str(value).strip()
            if key in ("type", "internal_policy"):
                value = value.lower()
            if key == "type":
                value = _GROUP_TYPES.get(value, value)
            old = group.get(key)
            if old is None:
                group[key] = value
            elif old != value and key not in ("name", "description"):
                self.notes.add(source, gid, f"{key} {value!r} conflicts with {old!r} from {self._origin[gid]}; kept {old!r}", line)
        return group

    def ensure_group(self, gid: str, vpc: str | None, source: str, subject: str, why: str, line: int | None = None) -> None:
        """A group known only by reference: add it empty (no rules, no known members) and say so."""
        if gid in self.groups:
            return
        self.add_group(gid, source, vpc=vpc)
        where = f" in VPC {vpc}" if vpc else ""
        self.notes.add(source, subject, f"{why}; added {gid} as an empty basic group{where} (its rules and members are unknown)", line)

    def add_rule(self, gid: str, raw: RawRule, source: str, subject: str, line: int | None = None,
                 field_names: dict[str, str] | None = None) -> dict | None:
        """Normalise `raw` into group `gid`; rules the cloud would refuse outright are skipped with a note.

        Unresolved (`Unknown`) fields: a peer group or prefix list becomes a placeholder id, a
        description or NIC type is dropped, anything else skips the rule; each case is noted,
        naming the field as the source spells it (`field_names`).
        """
        raw = self._settle_unknowns(raw, source, subject, line, field_names or {})
        if raw is None:
            return None
        rule = self._native_rule(raw, source, subject, line)
        if rule is None:
            return None
        if rule["_peer_kind"] == "group" and rule["peer"] in self.classic:
            self.notes.add(source, subject, f"peer {rule['peer']} is a classic-network group (out of scope); rule skipped", line)
            return None
        group = self.groups[gid]
        group["rules"].append(rule)
        if is_set(raw.nic_type) and str(raw.nic_type).strip().lower() == "internet" and gid not in self._nic_noted:
            self._nic_noted.add(gid)
            self.notes.add(source, gid, "NicType internet has no effect in a VPC group (the cloud applies the rule "
                                        "to internet and private traffic alike); imported as an ordinary rule", line)
        peer_kind = rule.pop("_peer_kind")
        if peer_kind == "group":
            self._group_refs.append((rule["peer"], gid, source, subject))
        elif peer_kind == "prefix_list":
            self._list_refs.append((rule["peer"], source, subject))
        if "port_list" in rule:
            self._port_list_refs.append((rule["port_list"], source, subject))
        return rule

    def _settle_unknowns(self, raw: RawRule, source: str, subject: str, line: int | None,
                         names: dict[str, str]) -> RawRule | None:
        values = dict(vars(raw))
        blocking = []
        for key, value in vars(raw).items():
            unknown = first_unknown(value)
            if unknown is None:
                continue
            name = names.get(key, key)
            what = name + (f" = {unknown.text}" if unknown.text and unknown.text != name else "")
            if key in ("group", "prefix_list", "port_list"):
                values[key] = placeholder_id(key, unknown.text or names.get(key, key))
                self.notes.add(source, subject, f"{what} is unresolved ({unknown.reason}); kept placeholder id {values[key]}", line)
            elif key in ("description", "nic_type", "id", "group_owner"):
                values[key] = None
                self.notes.add(source, subject, f"{what} is unresolved ({unknown.reason}); left unset", line)
            else:
                blocking.append(f"{what} ({unknown.reason})")
        if blocking:
            self.notes.add(source, subject, f"unresolved: {'; '.join(blocking)}; rule skipped", line)
            return None
        return RawRule(**values)

    def _native_rule(self, raw: RawRule, source: str, subject: str, line: int | None) -> dict | None:
        for what, value in (("direction", raw.direction), ("protocol", raw.protocol)):
            if not is_set(value):
                self.notes.add(source, subject, f"rule has no {what}; the cloud refuses it; skipped", line)
                return None
        rule: dict[str, Any] = {}
        if is_set(raw.id):
            rule["id"] = str(raw.id)
        rule["direction"] = str(raw.direction).strip().lower()
        rule["action"] = str(raw.policy).strip().lower() if is_set(raw.policy) else "accept"
        rule["priority"] = native_priority(raw.priority)
        rule["protocol"] = native_protocol(raw.protocol)
        ports = native_ports(raw.port_range)
        if ports is not None:
            rule["ports"] = ports
            if is_set(raw.port_list):
                self.notes.add(source, subject, f"both a port range ({ports}) and port list {str(raw.port_list).strip()} "
                                                "are set; the cloud ignores the port list when a range is given", line)
        elif is_set(raw.port_list):
            rule["port_list"] = str(raw.port_list).strip()
        source_ports = native_ports(raw.source_port_range)
        if source_ports is not None:
            rule["source_ports"] = source_ports
        peers = [(kind, value) for kind, value in
                 (("cidr", raw.cidr4), ("cidr", raw.cidr6), ("group", raw.group), ("prefix_list", raw.prefix_list))
                 if is_set(value)]
        if not peers:
            self.notes.add(source, subject, "rule names no peer (no CIDR, IPv6 CIDR, security group or prefix list); "
                                            "the cloud refuses it; skipped", line)
            return None
        kind, peer = peers[0]
        if len(peers) > 1:
            self.notes.add(source, subject, f"several peer fields set ({', '.join(str(v).strip() for _, v in peers)}); "
                                            f"the cloud's precedence (CIDR, then group, then prefix list) gives peer {str(peer).strip()}", line)
        rule["peer"] = str(peer).strip()
        rule["_peer_kind"] = kind
        if kind == "group" and is_set(raw.group_owner):
            self.notes.add(source, subject, f"peer group {rule['peer']} belongs to account {raw.group_owner}; "
                                            "its members are outside this configuration", line)
        locals_ = [v for v in (raw.local4, raw.local6) if is_set(v)]
        if locals_:
            rule["local"] = str(locals_[0]).strip()
            if len(locals_) > 1:
                self.notes.add(source, subject, f"both an IPv4 and an IPv6 local CIDR are set; kept {rule['local']}", line)
        if is_set(raw.description):
            rule["description"] = str(raw.description)
        return rule

    # -- prefix lists and interfaces
    def add_prefix_list(self, pid: str, entries: list[str] | None, max_entries: Any = None) -> None:
        """A prefix list; entries None means unknown so far (DescribePrefixLists gives only the size)."""
        _merge_list(self.prefix_lists, pid, entries, max_entries)

    def add_port_list(self, pid: str, entries: list[str] | None, max_entries: Any = None) -> None:
        """A port list (entries `lo/hi`); entries None means unknown so far (DescribePortRangeLists gives only sizes)."""
        _merge_list(self.port_lists, pid, entries, max_entries)

    def add_interface(self, eid: str, source: str, *, vpc: Any, groups: Sequence[str], ips: Sequence[str],
                      ipv6: Sequence[str] = (), ipv4_prefixes: Sequence[str] = (), ipv6_prefixes: Sequence[str] = (),
                      instance: Any = None, line: int | None = None) -> None:
        """An ENI; a second record of the same ENI is noted and ignored."""
        if eid in self.interfaces:
            self.notes.add(source, eid, f"interface already imported from {self._origin[eid]}; this record is ignored", line)
            return
        self._origin[eid] = source
        eni: dict[str, Any] = {}
        if is_set(instance):
            eni["instance"] = str(instance)
        if is_set(vpc):
            eni["vpc"] = str(vpc)
        eni["security_groups"] = list(groups)
        eni["ips"] = list(ips)
        for key, values in (("ipv6", ipv6), ("ipv4_prefixes", ipv4_prefixes), ("ipv6_prefixes", ipv6_prefixes)):
            if values:
                eni[key] = list(values)
        self.interfaces[eid] = eni

    # -- result
    def finish(self) -> dict:
        """The native mapping; groups and prefix lists known only by reference are added (and noted)."""
        for target, gid, source, subject in self._group_refs:
            self.ensure_group(target, self.groups[gid].get("vpc"), source, subject,
                              f"peer group {target} is not among the inputs")
        for eid, eni in self.interfaces.items():
            for gid in eni["security_groups"]:
                self.ensure_group(gid, eni.get("vpc"), self._origin[eid], eid, f"security group {gid} is not among the inputs")
        for pid, source, subject in self._list_refs:
            if pid not in self.prefix_lists:
                self.notes.add(source, subject, f"prefix list {pid} is not among the inputs; added with no entries "
                                                "(its entries are unknown)")
                self.add_prefix_list(pid, [])
        for pid, source, subject in self._port_list_refs:
            if pid not in self.port_lists:
                self.notes.add(source, subject, f"port list {pid} is not among the inputs; added with no entries "
                                                "(its entries are unknown, so the rule matches no port)")
                self.add_port_list(pid, [])
        config: dict[str, Any] = {"security_groups": {}}
        for gid, group in self.groups.items():
            ordered = {k: group[k] for k in ("name", "description", "type", "vpc", "internal_policy") if k in group}
            ordered["rules"] = group["rules"]
            config["security_groups"][gid] = ordered
        for key, lists in (("prefix_lists", self.prefix_lists), ("port_lists", self.port_lists)):
            if lists:
                config[key] = {pid: ({"entries": pl["entries"] or [], "max_entries": pl["max_entries"]}
                                     if pl["max_entries"] is not None else pl["entries"] or []) for pid, pl in lists.items()}
        if self.interfaces:
            config["interfaces"] = self.interfaces
        return config



def _merge_list(lists: dict[str, Any], pid: str, entries: list[str] | None, max_entries: Any) -> None:
    """Merge what one response says about a prefix or port list into `lists` (entries de-duplicated)."""
    current = lists.get(pid, {"entries": None, "max_entries": None})
    if entries is not None:
        current["entries"] = (current["entries"] or []) + [e for e in entries if e not in (current["entries"] or [])]
    if is_set(max_entries) and re.fullmatch(r"\d+", str(max_entries).strip()):
        current["max_entries"] = int(max_entries)
    lists[pid] = current
