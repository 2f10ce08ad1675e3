"""Alibaba Cloud ROS templates (YAML or JSON) -> native configuration.

Imports ALIYUN::ECS::SecurityGroup (with its SecurityGroupIngress/Egress lists),
the standalone ALIYUN::ECS::SecurityGroupIngress/Egress resources and
ALIYUN::ECS::SecurityGroupClone. `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`,
`Fn::Select`, `Fn::Split`, `Fn::If`, `Fn::FindInMap` and the condition functions
are evaluated from parameter defaults and `params`; resources whose `Condition`
is false are skipped. Ids are readable: `sg-` + the group's logical id.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..config.loader import refuse_alias_bombs
from .common import (
    MAX_DEPTH,
    PERMISSION_FIELDS,
    ConfigBuilder,
    ImportResult,
    Notes,
    Unknown,
    check_depth,
    first_unknown,
    input_error,
    is_set,
    permission_field_names,
    permission_rule,
    placeholder_id,
    read_json,
    read_text,
    readable_id,
    refuse_other_cloud,
)

SG, INGRESS, EGRESS, CLONE = ("ALIYUN::ECS::SecurityGroup", "ALIYUN::ECS::SecurityGroupIngress",
                              "ALIYUN::ECS::SecurityGroupEgress", "ALIYUN::ECS::SecurityGroupClone")
_INSTANCES = ("ALIYUN::ECS::Instance", "ALIYUN::ECS::InstanceGroup", "ALIYUN::ECS::NetworkInterface")
#: Resource type -> (attribute GetAtt names for its id, kind of id).
_ID_ATTRS = {SG: ("SecurityGroupId", "group"), CLONE: ("SecurityGroupId", "group"),
             "ALIYUN::ECS::VPC": ("VpcId", "vpc"), "ALIYUN::ECS::VSwitch": ("VSwitchId", "vswitch")}
_GROUP_PROPS = {"VpcId", "SecurityGroupType", "SecurityGroupName", "Description", "SecurityGroupIngress",
                "SecurityGroupEgress", "Tags", "ResourceGroupId", "DeletionForce", "InnerAccessPolicy"}
_CLONE_PROPS = {"SourceSecurityGroupId", "VpcId", "SecurityGroupName", "Description", "DestinationRegionId",
                "NetworkType", "ResourceGroupId", "SecurityGroupType"}
_PSEUDO = {"ALIYUN::StackId", "ALIYUN::StackName", "ALIYUN::Region", "ALIYUN::AccountId", "ALIYUN::TenantId"}
_NO_VALUE = object()  # ALIYUN::NoValue: the property is removed


# ---------------------------------------------------------------- reading
class _Lined(dict):
    """A mapping from YAML that remembers its line, for notes and errors."""

    line: int | None = None


class RosLoader(yaml.SafeLoader):
    """Safe YAML loading, plus ROS short-form tags (`!Ref X`, `!GetAtt A.B`, `!Join [...]`) read as
    their long forms, and mappings that remember their line."""


def _short_form(loader: RosLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


def _lined_map(loader: RosLoader, node: yaml.MappingNode):
    data = _Lined()
    data.line = node.start_mark.line + 1
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in data:  # PyYAML would keep the last silently; a template with two `SecurityGroup`s is wrong
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        data[key] = loader.construct_object(value_node, deep=True)


RosLoader.add_multi_constructor("!", _short_form)
RosLoader.add_constructor("tag:yaml.org,2002:map", _lined_map)


def read_template(path: Path) -> Mapping:
    """A ROS template from YAML or JSON; malformed text or a non-template raises InputError naming the file."""
    source = str(path)
    if path.name.endswith(".json"):
        document = read_json(path)
    else:
        text = read_text(path)
        loader = None
        try:
            loader = RosLoader(text)  # its reader refuses control characters at once
            node = loader.get_single_node()
            if node is not None:
                refuse_alias_bombs(node, source)
            document = check_depth(loader.construct_document(node) if node is not None else None, source)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise input_error(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", source,
                              line=mark.line + 1 if mark else None) from None
        except RecursionError:
            raise input_error(f"invalid YAML: nested more than {MAX_DEPTH} levels deep", source) from None
        finally:
            if loader is not None:
                loader.dispose()
    if not isinstance(document, Mapping) or not ("ROSTemplateFormatVersion" in document or "Resources" in document):
        raise input_error("not a ROS template (no ROSTemplateFormatVersion or Resources)", source)
    if not isinstance(document.get("Resources"), Mapping):
        raise input_error("Resources must be a mapping of logical ids to resources", source)
    for section in ("Parameters", "Conditions", "Mappings"):
        if document.get(section) is not None and not isinstance(document[section], Mapping):
            raise input_error(f"{section} must be a mapping", source, line=getattr(document, "line", None))
    return document


def import_files(paths: list[Path], params: Mapping[str, str]) -> ImportResult:
    """Import each template; `params` override parameter defaults (in every template)."""
    notes = Notes()
    builder = ConfigBuilder(notes)
    declared: set[str] = set()
    for path in paths:
        template = _Template(read_template(path), str(path), params, notes)
        template.emit(builder)
        declared |= set(template.parameters)
    for name in sorted(set(params) - declared):
        notes.add("", "parameters", f"parameter {name} matches no template parameter; ignored")
    return ImportResult(builder.finish(), notes.items())


# ---------------------------------------------------------------- evaluation
def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _expr_text(expr: Any) -> str:
    """A short, stable text for an unresolvable expression (used in placeholder ids)."""
    compact = json.dumps(expr, separators=(",", ":"), sort_keys=True, default=str)
    if len(compact) <= 48:
        return compact
    return compact[:40] + "~" + hashlib.sha1(compact.encode()).hexdigest()[:6]


class _Template:
    """One template: its parameters, conditions and resources, and how its expressions evaluate."""

    def __init__(self, document: Mapping, source: str, params: Mapping[str, str], notes: Notes) -> None:
        self.source, self.params, self.notes = source, params, notes
        self.parameters = document.get("Parameters") or {}
        self.conditions = document.get("Conditions") or {}
        self.mappings = document.get("Mappings") or {}
        self.resources: Mapping = document["Resources"]
        self._conditions: dict[str, Any] = {}

    # -- values
    def parameter(self, name: str) -> Any:
        spec = self.parameters.get(name) if isinstance(self.parameters.get(name), Mapping) else {}
        if name in self.params:
            return self._typed(self.params[name], spec.get("Type"))
        if spec.get("Default") is not None:
            return self._typed(spec["Default"], spec.get("Type"))
        return Unknown(f"parameter {name} has no default; set it with the parameter {name}=VALUE", name)

    @staticmethod
    def _typed(value: Any, ptype: Any) -> Any:
        if not isinstance(value, str):
            return value
        if ptype == "Number" and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
            return float(value) if "." in value else int(value)
        if ptype == "Boolean" and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if ptype == "CommaDelimitedList":
            return [v.strip() for v in value.split(",")]
        if ptype == "Json":
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    def ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            return Unknown(f"Ref takes a name, not {type(name).__name__}", _expr_text(name))
        if name == "ALIYUN::NoValue":
            return _NO_VALUE
        if name in _PSEUDO:
            return Unknown(f"pseudo parameter {name} is known only at deployment", str(name))
        if name in self.parameters:
            return self.parameter(name)
        if name in self.resources:
            return self._resource_id(name, None)
        return Unknown(f"{name} is neither a parameter nor a resource of the template", str(name))

    def _resource_id(self, logical: str, attribute: str | None) -> Any:
        resource = self.resources[logical]
        rtype = resource.get("Type") if isinstance(resource, Mapping) else None
        id_attr, kind = _ID_ATTRS.get(rtype, (None, None)) if isinstance(rtype, str) else (None, None)
        text = f"{logical}.{attribute}" if attribute else logical
        if kind is None or attribute not in (None, id_attr):
            return Unknown(f"{text} ({rtype}) is known only at deployment", text)
        if self.excluded(resource) is True:
            return Unknown(f"{logical} is not created (its condition is false)", text)
        return readable_id(kind, logical)

    def resolve(self, value: Any) -> Any:
        """`value` with every function evaluated; `Unknown` where it cannot be known offline."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            key, arg = next(iter(value.items()))
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if isinstance(key, str) and key.startswith("Fn::"):
                return self._function(key, arg, value)
        out = _Lined()
        out.line = getattr(value, "line", None)
        for key, item in value.items():
            resolved = self.resolve(item)
            if resolved is not _NO_VALUE:
                out[key] = resolved
        return out

    def _function(self, name: str, arg: Any, expr: Mapping) -> Any:
        if name == "Fn::If":
            if not (isinstance(arg, list) and len(arg) == 3):
                return Unknown("Fn::If takes [condition, value if true, value if false]", _expr_text(expr))
            cond = self.condition(arg[0])
            if isinstance(cond, Unknown):
                yes, no = self.resolve(arg[1]), self.resolve(arg[2])
                return yes if yes == no and first_unknown(yes) is None else cond
            return self.resolve(arg[1] if cond else arg[2])
        if name == "Fn::GetAtt":
            if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and arg[0] in self.resources:
                return self._resource_id(arg[0], str(arg[1]))
            return Unknown(f"Fn::GetAtt {arg} names no resource of the template", _expr_text(expr))
        args = self.resolve(arg)
        unknown = first_unknown(args)
        if unknown is not None:
            return unknown
        try:
            return self._pure(name, args, expr)
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            return Unknown(f"{name} cannot be evaluated ({exc})", _expr_text(expr))

    def _pure(self, name: str, args: Any, expr: Mapping) -> Any:
        if name == "Fn::Join":
            return _text(args[0]).join(_text(v) for v in args[1])
        if name == "Fn::Select":
            index, items = args
            return items[str(index)] if isinstance(items, Mapping) else items[int(index)]
        if name == "Fn::Split":
            return _text(args[1]).split(_text(args[0]))
        if name == "Fn::Sub":
            template, variables = (args, {}) if isinstance(args, str) else (args[0], args[1])
            return self._sub(template, variables, expr)
        if name == "Fn::FindInMap":
            return self.mappings[args[0]][args[1]][args[2]]
        if name == "Fn::Replace":
            text = _text(args[1])
            for old, new in args[0].items():
                text = text.replace(old, _text(new))
            return text
        if name == "Fn::Str":
            return _text(args)
        if name == "Fn::Base64Encode":
            return base64.b64encode(_text(args).encode()).decode()
        if name == "Fn::Length":
            return len(args)
        if name in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not"):
            return self._logic(name, args)
        return Unknown(f"{name} is not evaluated offline", _expr_text(expr))

    def _sub(self, template: str, variables: Mapping, expr: Mapping) -> Any:
        parts: list[Any] = []
        position = 0
        for match in re.finditer(r"\$\{([^}]*)\}", template):
            parts.append(template[position:match.start()])
            key = match.group(1).strip()
            if key.startswith("!"):
                parts.append("${" + key[1:] + "}")
            elif key in variables:
                parts.append(variables[key])
            elif "." in key and key.split(".", 1)[0] in self.resources:
                parts.append(self._resource_id(*key.split(".", 1)))
            else:
                parts.append(self.ref(key))
            position = match.end()
        parts.append(template[position:])
        unknown = first_unknown(*parts)
        return Unknown(unknown.reason, _expr_text(expr)) if unknown else "".join(_text(p) for p in parts)

    @staticmethod
    def _logic(name: str, args: Any) -> Any:
        if name == "Fn::Equals":
            left, right = _text(args[0]), _text(args[1])
            if isinstance(args[0], bool) or isinstance(args[1], bool):  # a Boolean parameter against true/"true"
                left, right = left.lower(), right.lower()
            return left == right
        values = args if isinstance(args, list) else [args]
        truth = [v if isinstance(v, bool) else _text(v).lower() == "true" for v in values]
        if name == "Fn::Not":
            return not truth[0]
        return all(truth) if name == "Fn::And" else any(truth)

    def condition(self, name: Any) -> Any:
        """A named condition's truth (bool), or `Unknown`."""
        if isinstance(name, bool):
            return name
        if not isinstance(name, str) or name not in self.conditions:
            return Unknown(f"condition {name} is not defined in the template", str(name))
        if name not in self._conditions:
            self._conditions[name] = Unknown(f"condition {name} refers to itself", str(name))
            value = self.resolve(self.conditions[name])
            self._conditions[name] = value if isinstance(value, (bool, Unknown)) else _text(value).lower() == "true"
        return self._conditions[name]

    def excluded(self, resource: Mapping) -> Any:
        """True when the resource's Condition is false; `Unknown` when it cannot be evaluated."""
        if "Condition" not in resource:
            return False
        value = self.condition(resource["Condition"])
        return value if isinstance(value, Unknown) else not value

    # -- emission
    def emit(self, builder: ConfigBuilder) -> None:
        """Groups first (so clones and standalone rules find them), then clones, then standalone rules."""
        refuse_other_cloud([str(r.get("Type")) for r in self.resources.values() if isinstance(r, Mapping)],
                           self.source, "ALIYUN::ECS::SecurityGroup...")
        instances = 0
        for order in (SG, CLONE, INGRESS, EGRESS):
            for logical, resource in self.resources.items():
                if not isinstance(resource, Mapping):
                    raise input_error("a resource must be a mapping with Type and Properties", self.source, logical)
                if resource.get("Type") in _INSTANCES and order == SG:
                    instances += 1
                if resource.get("Type") != order or not self._included(logical, resource):
                    continue
                props = self.resolve(resource.get("Properties") or {})
                line = getattr(resource, "line", None)
                if isinstance(props, Unknown) or not isinstance(props, Mapping):
                    self.notes.add(self.source, logical, "Properties cannot be evaluated; resource skipped", line)
                elif order == SG:
                    self._group(logical, props, builder, line)
                elif order == CLONE:
                    self._clone(logical, props, builder, line)
                else:
                    self._standalone(logical, props, "ingress" if order == INGRESS else "egress", builder, line)
        if instances:
            self.notes.add(self.source, "instances", f"{instances} instance or ENI resource(s) not imported as interfaces: "
                                                      "their private addresses are assigned at deployment")

    def _included(self, logical: str, resource: Mapping) -> bool:
        excluded = self.excluded(resource)
        line = getattr(resource, "line", None)
        if isinstance(excluded, Unknown):
            self.notes.add(self.source, logical, f"condition {resource['Condition']} is unresolved ({excluded.reason}); "
                                                 "resource imported as if it were true", line)
            return True
        if excluded:
            self.notes.add(self.source, logical, f"condition {resource['Condition']} is false (from parameter defaults "
                                                 "and parameters given); resource skipped", line)
        return not excluded

    def _unknown_props(self, logical: str, props: Mapping, known: set[str] | frozenset, line: int | None) -> None:
        extra = sorted(set(props) - set(known))
        if extra:
            self.notes.add(self.source, logical, f"unknown propert{'y' if len(extra) == 1 else 'ies'} {', '.join(extra)} ignored", line)

    def _vpc(self, logical: str, props: Mapping, line: int | None) -> Any:
        """The group's VPC id, a placeholder (noted) if unresolved, or None for classic network (noted)."""
        vpc = props.get("VpcId")
        if isinstance(vpc, Unknown):
            placeholder = placeholder_id("vpc", vpc.text or f"{logical}.VpcId")
            self.notes.add(self.source, logical, f"VpcId is unresolved ({vpc.reason}); kept placeholder VPC id {placeholder}", line)
            return placeholder
        if not is_set(vpc):
            self.notes.add(self.source, logical, "group has no VpcId (classic network); out of scope, skipped with its rules", line)
            return None
        return vpc

    def _new_group_id(self, logical: str, builder: ConfigBuilder, line: int | None) -> str:
        gid = readable_id("group", logical)
        if gid in builder.groups:
            raise input_error(f"group id {gid} is already defined by another input template; import the templates "
                              "separately", self.source, logical, line)
        return gid

    def _open_group(self, logical: str, props: Mapping, allowed: frozenset | set, builder: ConfigBuilder,
                    line: int | None) -> tuple[str, str | None]:
        """The new group's id and VPC (None for a classic-network group, which is recorded and skipped)."""
        self._unknown_props(logical, props, allowed, line)
        gid = self._new_group_id(logical, builder, line)
        vpc = self._vpc(logical, props, line)
        if vpc is None:
            builder.classic.add(gid)
        return gid, vpc

    def _group(self, logical: str, props: Mapping, builder: ConfigBuilder, line: int | None) -> None:
        gid, vpc = self._open_group(logical, props, _GROUP_PROPS, builder, line)
        if vpc is None:
            return
        gtype = props.get("SecurityGroupType")
        if isinstance(gtype, Unknown):
            self.notes.add(self.source, logical, f"SecurityGroupType is unresolved ({gtype.reason}); assumed normal (basic)", line)
            gtype = None
        name = props.get("SecurityGroupName")
        builder.add_group(gid, self.source, type=gtype, vpc=vpc, name=name if isinstance(name, str) else None,
                          description=props.get("Description") if isinstance(props.get("Description"), str) else None,
                          internal_policy=props.get("InnerAccessPolicy") if isinstance(props.get("InnerAccessPolicy"), str) else None,
                          line=line)
        for key, direction in (("SecurityGroupIngress", "ingress"), ("SecurityGroupEgress", "egress")):
            items = props.get(key) or []
            if isinstance(items, Unknown) or not isinstance(items, list):
                self.notes.add(self.source, f"{logical}.{key}", "cannot be evaluated (not a list); its rules are skipped", line)
                continue
            for index, item in enumerate(items):
                subject = f"{logical}.{key}[{index}]"
                self._rule(gid, item, direction, f"{direction}[{index}]", subject, builder, getattr(item, "line", line))

    def _rule(self, gid: str, item: Any, direction: str, rule_id: str, subject: str, builder: ConfigBuilder,
              line: int | None) -> None:
        if not isinstance(item, Mapping):
            raise input_error(f"a rule must be a mapping of properties, not {type(item).__name__}", self.source, subject, line)
        self._unknown_props(subject, item, PERMISSION_FIELDS | {"SecurityGroupId"}, line)
        builder.add_rule(gid, permission_rule(item, direction, rule_id), self.source, subject, line,
                         permission_field_names(direction))

    def _standalone(self, logical: str, props: Mapping, direction: str, builder: ConfigBuilder, line: int | None) -> None:
        target = props.get("SecurityGroupId")
        if isinstance(target, Unknown):
            gid = placeholder_id("group", target.text or f"{logical}.SecurityGroupId")
            builder.ensure_group(gid, None, self.source, logical, f"SecurityGroupId is unresolved ({target.reason})", line)
        elif not is_set(target):
            self.notes.add(self.source, logical, "no SecurityGroupId; rule skipped", line)
            return
        elif target in builder.classic:
            self.notes.add(self.source, logical, f"rule of classic-network group {target}; skipped", line)
            return
        else:
            gid = str(target)
            builder.ensure_group(gid, None, self.source, logical, f"SecurityGroupId {gid} is a group outside the template", line)
        self._rule(gid, props, direction, logical, logical, builder, line)

    def _clone(self, logical: str, props: Mapping, builder: ConfigBuilder, line: int | None) -> None:
        gid, vpc = self._open_group(logical, props, _CLONE_PROPS, builder, line)
        if vpc is None:
            return
        origin = props.get("SourceSecurityGroupId")
        known = isinstance(origin, str) and origin in builder.groups
        name = props.get("SecurityGroupName")
        builder.add_group(gid, self.source, vpc=vpc, name=name if isinstance(name, str) else None,
                          type=builder.groups[origin].get("type") if known else None, line=line)
        if known:
            builder.groups[gid]["rules"] = copy.deepcopy(builder.groups[origin]["rules"])
            self.notes.add(self.source, logical, f"clone of {origin}: its {len(builder.groups[gid]['rules'])} rule(s) copied", line)
        else:
            reason = origin.reason if isinstance(origin, Unknown) else f"{origin} is not defined in the template"
            self.notes.add(self.source, logical, f"clone source unresolved ({reason}); cloned group imported without rules", line)
