"""`terraform show -json` output (state or plan) -> `TfInstance`s.

State gives every resource's values, real cloud ids included, for the root
module and child modules alike. A plan's `planned_values` lack what is known
only after apply (ids, references to new resources); those are resolved from
the plan's `configuration` section, whose expressions list their references.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .common import Unknown, input_error, readable_id
from .terraform_resources import ID_KINDS, TfInstance

_LIST_ARGS = {"security_groups", "security_group_ids"}


def is_show_output(document: Mapping) -> bool:
    """Whether a JSON object is `terraform show -json` output."""
    return "format_version" in document and ("values" in document or "planned_values" in document)


def show_instances(document: Mapping, source: str) -> list[TfInstance]:
    """Every managed resource instance of the state or plan, child modules included."""
    values = document.get("values") or document.get("planned_values") or {}
    expressions: dict[str, dict] = {}
    instances: list[_ShowInstance] = []
    try:
        _config_expressions((document.get("configuration") or {}).get("root_module") or {}, "", expressions)
        _walk(values.get("root_module") or {}, source, instances)
    except (AttributeError, TypeError, KeyError) as exc:
        raise input_error(f"`terraform show -json` output of an unexpected shape ({exc})", source) from None
    ids: dict[str, list[str]] = {}
    for inst in instances:
        if isinstance(inst.id, str):
            ids.setdefault(inst.config_address, []).append(inst.id)
    for inst in instances:
        inst.expressions = expressions.get(inst.config_address, {})
        inst.ids = ids
    return list(instances)


def _walk(module: Mapping, source: str, out: list["_ShowInstance"]) -> None:
    for resource in module.get("resources") or []:
        if not isinstance(resource, Mapping):
            raise TypeError(f"a resource entry is a {type(resource).__name__}, not an object")
        if resource.get("mode", "managed") == "managed" and resource.get("type"):
            out.append(_ShowInstance(resource, source))
    for child in module.get("child_modules") or []:
        _walk(child, source, out)


def _config_expressions(module: Mapping, prefix: str, out: dict[str, dict]) -> None:
    for resource in module.get("resources") or []:
        out[prefix + str(resource.get("address"))] = resource.get("expressions") or {}
    for name, call in (module.get("module_calls") or {}).items():
        _config_expressions(call.get("module") or {}, f"{prefix}module.{name}.", out)


def _strip_indexes(address: str) -> str:
    return re.sub(r"\[[^\]]*\]", "", address)


class _ShowInstance(TfInstance):
    """A resource instance from state or plan values."""

    def __init__(self, resource: Mapping, source: str) -> None:
        self.rtype = str(resource["type"])
        self.address = str(resource.get("address") or f"{self.rtype}.{resource.get('name')}")
        self.source = source
        values = resource.get("values")
        self.values: Mapping = values if isinstance(values, Mapping) else {}
        self.config_address = _strip_indexes(self.address)
        self.module_prefix = self.address[: self.address.find(self.rtype + ".")]
        self.expressions: dict = {}
        self.ids: dict[str, list[str]] = {}

    @property
    def id(self) -> str | Unknown:
        real = self.values.get("id")
        if isinstance(real, str) and real:
            return real
        kind = ID_KINDS.get(self.rtype)
        if kind is None:
            return Unknown(f"{self.address}.id is assigned by the cloud", f"{self.address}.id")
        name_key = self.module_prefix + self.address[len(self.module_prefix) + len(self.rtype) + 1:].replace('"', "")
        return readable_id(kind, name_key)

    def attr(self, name: str) -> Any:
        value = self.values.get(name)
        if value not in (None, "", []):
            return value
        references = (self.expressions.get(name) or {}).get("references") or []
        if not references:
            return None
        targets = []
        for ref in references:
            parts = ref.split(".")
            if len(parts) < 2 or parts[0] in ("var", "local", "module", "data", "count", "each"):
                continue
            address = self.module_prefix + parts[0] + "." + _strip_indexes(parts[1])
            for target in self.ids.get(address, []):
                if target not in targets:
                    targets.append(target)
        if not targets:
            return Unknown(f"known only after apply (references {', '.join(references)})", f"{self.address}.{name}")
        return targets if name in _LIST_ARGS else targets[0]
