"""Terraform -> native configuration: HCL `.tf`, JSON `.tf.json`, `.tfvars`, and `terraform show -json` output.

Configuration files of one directory form one module, as in Terraform: their
resources reference each other, variables take their value from `params`, then
`.tfvars` files, then their `default`. Resources with `count`/`for_each` are
expanded where those are known. Modules are not expanded (their source is not
among the inputs); `terraform show -json` output covers them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError
from .common import (
    ConfigBuilder,
    ImportResult,
    Notes,
    Unknown,
    input_error,
    read_json,
    read_text,
    readable_id,
    refuse_other_cloud,
)
from .hcl import Block, Expr, JsonExpr, LazyMap, Scope, evaluate, json_blocks, node_text, parse_file
from .terraform_resources import ATTACHMENTS, GROUP, ID_KINDS, RULE, TfInstance, emit_resources
from .terraform_show import is_show_output, show_instances

_TOP_BLOCKS = {"resource", "data", "variable", "locals", "module", "output", "provider", "terraform",
               "moved", "import", "check", "removed"}
_ROOT_UNKNOWN = {
    "data": "a data source, read from the cloud at plan time",
    "module": "a module output (modules are not expanded)",
    "path": "a filesystem path of the Terraform run",
    "terraform": "a Terraform run setting",
    "self": "available only in provisioners",
    "count": "count.index used outside a resource with count",
    "each": "each used outside a resource with for_each",
}


def import_files(paths: list[Path], params: Mapping[str, str]) -> ImportResult:
    """Import Terraform files (see the module docstring); each directory is one module."""
    notes = Notes()
    builder = ConfigBuilder(notes)
    modules: dict[Path, _Module] = {}
    shows: list[tuple[str, Mapping]] = []
    for path in paths:
        source, name = str(path), path.name
        module = modules.setdefault(path.parent, _Module(str(path.parent), params))
        if name.endswith(".tfvars.json"):
            module.add_tfvars({k: JsonExpr(v) for k, v in _json_object(path).items()})
        elif name.endswith(".tfvars"):
            module.add_tfvars(parse_file(read_text(path), source)[1])
        elif name.endswith(".tf.json"):
            module.add_file(*json_blocks(_json_object(path), source), source)
        elif name.endswith(".json"):
            document = _json_object(path)
            if is_show_output(document):
                shows.append((source, document))
            elif set(document) and set(document) <= _TOP_BLOCKS:
                module.add_file(*json_blocks(document, source), source)
            else:
                raise input_error("neither a Terraform JSON configuration nor `terraform show -json` output "
                                  f"(top-level keys: {', '.join(list(document)[:8]) or 'none'})", source)
        else:
            module.add_file(*parse_file(read_text(path), source), source)
    group_origin: dict[str, str] = {}
    for module in modules.values():
        if module.empty():
            continue
        instances = module.instances(notes)
        _check_collisions(instances, module.directory, group_origin)
        emit_resources(instances, builder, notes)
        module.report(notes)
    for source, document in shows:
        instances = show_instances(document, source)
        refuse_other_cloud([i.rtype for i in instances], source, "alicloud_security_group...")
        _check_collisions(instances, source, group_origin)
        emit_resources(instances, builder, notes)
    return ImportResult(builder.finish(), notes.items())


def _json_object(path: Path) -> Mapping:
    document = read_json(path)
    if not isinstance(document, Mapping):
        raise input_error(f"not Terraform JSON: a JSON {type(document).__name__}, not an object", str(path))
    return document


def _check_collisions(instances: list[TfInstance], origin: str, seen: dict[str, str]) -> None:
    for inst in instances:
        if inst.rtype == GROUP and isinstance(inst.id, str):
            if seen.setdefault(inst.id, origin) != origin:
                raise input_error(f"group id {inst.id} is also defined by {seen[inst.id]}; "
                                  "import these Terraform modules separately", inst.source, inst.address, inst.line)


class _Module:
    """One Terraform module (a directory): its declarations and the scope its expressions see."""

    def __init__(self, directory: str, params: Mapping[str, str]) -> None:
        self.directory = directory
        self.params = params
        self.resources: dict[tuple[str, str], Block] = {}
        self.variables: dict[str, Block] = {}
        self.locals: dict[str, Expr] = {}
        self.tfvars: dict[str, Expr] = {}
        self.modules: list[Block] = []
        self.scope = Scope(self._root)
        self._types: dict[str, LazyMap] = {}
        self._active: set[tuple[str, str]] = set()
        self._where: list[tuple[str, int | None, str]] = []
        self.undefined: dict[str, tuple[str, int | None, str, str]] = {}
        self._undeclared_params: set[str] = set()
        self._namespaces: dict[str, LazyMap] = {}
        self._refresh_namespaces()

    # -- reading
    def add_file(self, blocks: list[Block], attrs: dict[str, Expr], source: str) -> None:
        if attrs:
            raise input_error(f"argument {next(iter(attrs))!r} outside any block (is this a .tfvars file?)", source)
        for block in blocks:
            if block.type not in _TOP_BLOCKS:
                raise input_error(f"unsupported top-level block type {block.type!r}: not a Terraform file", source,
                                  line=block.line)
            if block.type == "resource":
                if len(block.labels) != 2:
                    raise input_error("a resource block needs a type and a name", source, line=block.line)
                key = (block.labels[0], block.labels[1])
                if key in self.resources:
                    other = self.resources[key]
                    raise input_error(f"duplicate resource {'.'.join(key)} (also at {other.source}:{other.line})",
                                      source, line=block.line)
                self.resources[key] = block
            elif block.type == "variable" and block.labels:
                self.variables[block.labels[0]] = block
            elif block.type == "locals":
                self.locals.update(block.attrs)
            elif block.type == "module":
                self.modules.append(block)
        self._refresh_namespaces()

    def add_tfvars(self, attrs: dict[str, Expr]) -> None:
        self.tfvars.update(attrs)
        self._refresh_namespaces()

    def _refresh_namespaces(self) -> None:
        self._namespaces["var"] = LazyMap(list(self.variables), self._variable, self._variable)
        self._namespaces["local"] = LazyMap(
            list(self.locals), self._local, lambda n: Unknown(f"local.{n} is not defined in the inputs", f"local.{n}"))

    def empty(self) -> bool:
        return not (self.resources or self.modules or self.variables or self.locals)

    # -- scope
    def _root(self, name: str) -> Any:
        if name in self._namespaces:
            return self._namespaces[name]
        if name in _ROOT_UNKNOWN:
            return Unknown(_ROOT_UNKNOWN[name], name)
        if name not in self._types:
            names = [n for (t, n) in self.resources if t == name]
            if not names and name not in ID_KINDS:
                return Unknown(f"{name} is neither a variable nor a resource type of the inputs", name)
            self._types[name] = LazyMap(names, lambda n, t=name: self._resource(t, n), lambda n, t=name: self._undefined(t, n))
        return self._types[name]

    def _variable(self, name: str) -> Any:
        block = self.variables.get(name)
        type_expr = block.attrs.get("type") if block else None
        if name in self.params:
            if block is None:
                self._undeclared_params.add(name)
            return _param_value(self.params[name], node_text(type_expr) if type_expr is not None else "")
        if block is None:
            return Unknown(f"variable {name} is not declared in the inputs", f"var.{name}")
        if name in self.tfvars:
            return evaluate(self.tfvars[name], self.scope)
        if "default" in block.attrs:
            return evaluate(block.attrs["default"], self.scope)
        return Unknown(f"variable {name} has no default; set it with the parameter {name}=VALUE", f"var.{name}")

    def _local(self, name: str) -> Any:
        return self.guarded(("local", name), lambda: evaluate(self.locals[name], self.scope))

    def guarded(self, key: tuple[str, str], compute: Callable[[], Any]) -> Any:
        """Evaluate with a guard against reference cycles."""
        if key in self._active:
            return Unknown(f"circular reference through {'.'.join(key)}")
        self._active.add(key)
        try:
            return compute()
        finally:
            self._active.discard(key)

    def _resource(self, rtype: str, name: str) -> Any:
        block = self.resources[(rtype, name)]
        if "count" in block.attrs:
            count = evaluate(block.attrs["count"], self.scope)
            if isinstance(count, Unknown):
                return Unknown(count.reason, f"count = {node_text(block.attrs['count'])}")
            try:
                return [_HclInstance(self, block, index, None) for index in range(int(count))]
            except (TypeError, ValueError):
                return Unknown(f"not a number: {count!r}", "count")
        if "for_each" in block.attrs:
            items = evaluate(block.attrs["for_each"], self.scope)
            if isinstance(items, Unknown):
                return Unknown(items.reason, f"for_each = {node_text(block.attrs['for_each'])}")
            if isinstance(items, Mapping):
                pairs = list(items.items())
            elif isinstance(items, list):
                pairs = [(item, item) for item in items]
            else:
                return Unknown(f"neither a map nor a set: {type(items).__name__}", "for_each")
            return {str(k): _HclInstance(self, block, str(k), v) for k, v in pairs}
        return _HclInstance(self, block, None, None)

    def _undefined(self, rtype: str, name: str) -> Any:
        address = f"{rtype}.{name}"
        if rtype not in ID_KINDS:
            return Unknown(f"{address} is not defined in the inputs", address)
        stub_id = readable_id(ID_KINDS[rtype], name)
        if address not in self.undefined:
            source, line, subject = self._where[-1] if self._where else (self.directory, None, "")
            self.undefined[address] = (source, line, subject, stub_id)
        return LazyMap(["id"], lambda _: stub_id, lambda key: Unknown(f"{address} is not defined in the inputs",
                                                                    f"{address}.{key}"))

    # -- results
    def instances(self, notes: Notes) -> list[TfInstance]:
        """Every resource instance, with count/for_each expanded; unexpandable resources are noted."""
        out: list[TfInstance] = []
        for (rtype, name), block in self.resources.items():
            value = self._root(rtype)[name]
            if isinstance(value, Unknown):
                if rtype in ID_KINDS or rtype == RULE:
                    notes.add(block.source, f"{rtype}.{name}", f"{value.text} is unresolved ({value.reason}); "
                                                                 "resource skipped", block.line)
                continue
            out += list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
        return out

    def report(self, notes: Notes) -> None:
        """Notes on what this module could not import: undefined references, modules, parameters, other types."""
        for address, (source, line, subject, stub_id) in self.undefined.items():
            if address.startswith(GROUP + "."):
                continue  # the configuration builder notes the empty group it adds
            notes.add(source, subject, f"{address} is referenced but not defined in the inputs; its id is taken as {stub_id}", line)
        for block in self.modules:
            src = block.attrs.get("source")
            src_text = evaluate(src, self.scope) if src is not None else "?"
            notes.add(block.source, f"module.{block.labels[0] if block.labels else '?'}",
                      f"module (source {src_text}) is not expanded: its resources are not imported "
                      "(import `terraform show -json` output to include them)", block.line)
        for name in sorted(set(self.params) - set(self.variables)):
            if name in self._undeclared_params:
                notes.add(self.directory, f"var.{name}", "variable is not declared in the inputs; took its value from the parameter")
            else:
                notes.add(self.directory, "parameters", f"parameter {name} matches no variable of the module")
        other = sorted({t for t, _ in self.resources} - set(ID_KINDS) - {RULE, *ATTACHMENTS})
        files = sorted({block.source for block in self.resources.values()})
        refuse_other_cloud([t for t, _ in self.resources], files[0] if len(files) == 1 else str(self.directory),
                           "alicloud_security_group...")
        if other:
            notes.add(self.directory, "resources", f"resource types not about security groups ignored: {', '.join(other)}")


class _HclInstance(TfInstance, Mapping):
    """One instance of an HCL resource; also the object expressions see when they reference it."""

    def __init__(self, module: _Module, block: Block, key: int | str | None, each_value: Any) -> None:
        self.module, self.block = module, block
        self.rtype, name = block.labels
        suffix = "" if key is None else f"[{key}]"
        self.name_key = name + suffix
        self.address = f"{self.rtype}.{name}{suffix}"
        self.source, self.line = block.source, block.line
        bindings: dict[str, Any] = {}
        if isinstance(key, int):
            bindings["count"] = {"index": key}
        elif key is not None:
            bindings["each"] = {"key": key, "value": each_value}
        self.scope = module.scope.child(**bindings)
        self._cache: dict[str, Any] = {}

    @property
    def id(self) -> str | Unknown:
        kind = ID_KINDS.get(self.rtype)
        return readable_id(kind, self.name_key) if kind else Unknown(f"{self.address}.id is assigned by the cloud", f"{self.address}.id")

    def attr(self, name: str) -> Any:
        if name not in self._cache:
            self.module._where.append((self.source, self.block.attr_lines.get(name, self.line), self.address))
            try:
                self._cache[name] = self.module.guarded((self.address, name), lambda: self._compute(name))
            finally:
                self.module._where.pop()
        return self._cache[name]

    def _compute(self, name: str) -> Any:
        if name in self.block.attrs:
            return evaluate(self.block.attrs[name], self.scope)
        blocks = [b for b in self.block.blocks if b.type == name or (b.type == "dynamic" and b.labels[:1] == [name])]
        if not blocks:
            return None
        out: list[Any] = []
        for block in blocks:
            if block.type != "dynamic":
                out.append({k: evaluate(e, self.scope) for k, e in block.attrs.items()})
                continue
            items = evaluate(block.attrs["for_each"], self.scope) if "for_each" in block.attrs else Unknown("no for_each")
            if isinstance(items, Unknown):
                return Unknown(f"dynamic {name} block: for_each is unresolved ({items.reason})", items.text)
            iterator = node_text(block.attrs["iterator"]) if "iterator" in block.attrs else name
            content = next((c for c in block.blocks if c.type == "content"), None)
            pairs = items.items() if isinstance(items, Mapping) else enumerate(items) if isinstance(items, list) else ()
            for key, value in pairs:
                scope = self.scope.child(**{iterator: {"key": key, "value": value}})
                out.append({k: evaluate(e, scope) for k, e in content.attrs.items()} if content else {})
        return out

    def fields(self) -> set[str]:
        return set(self.block.attrs) | {b.labels[0] if b.type == "dynamic" and b.labels else b.type for b in self.block.blocks}

    # Mapping: what `alicloud_x.name.attr` sees
    def __getitem__(self, name: str) -> Any:
        if name == "id":
            return self.id
        value = self.attr(name)
        return Unknown(f"{self.address}.{name} is computed by the cloud", f"{self.address}.{name}") if value is None else value

    def __iter__(self):
        return iter(["id", *self.block.attrs])

    def __len__(self) -> int:
        return 1 + len(self.block.attrs)


def _param_value(text: str, type_text: str) -> Any:
    """A parameter's text as the variable's declared type reads it: strings as given, numbers, bools
    and collections as HCL literals (`[80, 443]`, `{a = 1}`); text that does not parse stays text."""
    if type_text.split("(")[0].strip() in ("", "string"):
        return text
    try:
        expr = parse_file(f"x = {text}", "parameter")[1]["x"]
    except InputError:
        return text
    value = evaluate(expr, Scope(lambda n: Unknown(f"{n} cannot be used in a parameter value")))
    return text if isinstance(value, Unknown) else value
