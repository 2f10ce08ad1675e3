"""HCL (Terraform) read with python-hcl2's parser and evaluated offline.

`parse_file` turns a `.tf` file into `Block`s whose attribute values are Lark
expression trees; `evaluate` computes an expression in a `Scope`. Whatever
cannot be known without the cloud (data sources, computed attributes,
variables without value, unmodelled functions) evaluates to `Unknown`, carrying
the reason and the expression text, and spreads through operators, so callers
can say exactly which attribute is unresolved and why.
"""
from __future__ import annotations

import ipaddress
import json
import math
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import hcl2
from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedInput

from .common import Unknown, first_unknown, input_error


@dataclass
class JsonExpr:
    """An expression from Terraform's JSON syntax: a JSON value whose strings may hold `${...}` templates."""

    value: Any


Expr = Tree | JsonExpr


@dataclass
class Block:
    """One HCL block: `resource "type" "name" { ... }` has type `resource` and labels [type, name]."""

    type: str
    labels: list[str]
    attrs: dict[str, Expr]
    blocks: list["Block"]
    source: str
    line: int | None = None
    attr_lines: dict[str, int | None] = field(default_factory=dict)


# ---------------------------------------------------------------- parsing
def parse_text(text: str, source: str) -> Tree:
    """Parse HCL text; syntax errors raise InputError naming the file and line."""
    try:
        return hcl2.parses_to_tree(text)
    except UnexpectedInput as exc:
        snippet = text.splitlines()[exc.line - 1].strip() if 0 < exc.line <= len(text.splitlines()) else ""
        raise input_error(f"invalid HCL near {snippet[:60]!r}", source, line=exc.line) from None
    except LarkError as exc:
        raise input_error(f"invalid HCL: {str(exc).splitlines()[0]}", source) from None


def parse_file(text: str, source: str) -> tuple[list[Block], dict[str, Expr]]:
    """Top-level blocks and attributes (the latter are what `.tfvars` files hold)."""
    tree = parse_text(text, source)
    body = next(c for c in tree.children if isinstance(c, Tree) and c.data == "body")
    return _body(body, source)


def _kids(tree: Tree) -> list[Tree]:
    return [c for c in tree.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def _line(tree: Tree) -> int | None:
    return getattr(tree.meta, "line", None)


def _name(tree: Tree) -> str:
    """The text of an identifier, keyword, literal or plain string label."""
    if tree.data == "string":
        return "".join(_string_chars(str(p.children[0])) for p in _kids(tree) if isinstance(p.children[0], Token))
    return str(tree.children[0])


def _body(body: Tree, source: str) -> tuple[list[Block], dict[str, Expr]]:
    blocks, attrs = [], {}
    for node in _kids(body):
        if node.data == "attribute":
            name_tree, value = _kids(node)[0], _kids(node)[-1]
            attrs[_name(name_tree)] = value
        elif node.data == "block":
            parts = _kids(node)
            inner = parts[-1]
            labels = [_name(p) for p in parts[1:-1]]
            child_blocks, child_attrs = _body(inner, source)
            lines = {_name(_kids(a)[0]): _line(a) for a in _kids(inner) if a.data == "attribute"}
            blocks.append(Block(_name(parts[0]), labels, child_attrs, child_blocks, source, _line(node), lines))
    return blocks, attrs


def json_blocks(document: Mapping, source: str) -> tuple[list[Block], dict[str, Expr]]:
    """Blocks of a `.tf.json` file: `{"resource": {"type": {"name": {...}}}}` and the like."""
    labels_per_type = {"resource": 2, "data": 2, "variable": 1, "module": 1, "output": 1, "provider": 1,
                       "locals": 0, "terraform": 0}
    blocks: list[Block] = []
    for btype, content in document.items():
        depth = labels_per_type.get(btype, 0)
        for labels, body in _json_levels(content, depth):
            if not isinstance(body, Mapping):
                raise input_error(f"{btype} {'.'.join(labels)} must be a JSON object", source)
            blocks.append(Block(btype, labels, {k: JsonExpr(v) for k, v in body.items()}, [], source))
    return blocks, {}


def _json_levels(content: Any, depth: int) -> list[tuple[list[str], Any]]:
    items = content if isinstance(content, list) else [content]
    if depth == 0:
        return [([], item) for item in items]
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            return [([], item)]
        for key, inner in item.items():
            out += [([key] + rest, body) for rest, body in _json_levels(inner, depth - 1)]
    return out


# ---------------------------------------------------------------- scopes and values
class Scope:
    """Names visible to an expression: local bindings (count, each, for-expression variables) over a root lookup."""

    def __init__(self, root: Callable[[str], Any], bindings: dict[str, Any] | None = None) -> None:
        self._root = root
        self._bindings = bindings or {}

    def get(self, name: str) -> Any:
        return self._bindings[name] if name in self._bindings else self._root(name)

    def child(self, **bindings: Any) -> "Scope":
        return Scope(self._root, {**self._bindings, **bindings})


class LazyMap(Mapping):
    """A mapping whose values are computed on first access (variables, locals, resources)."""

    def __init__(self, keys: list[str], compute: Callable[[str], Any], missing: Callable[[str], Any]) -> None:
        self._keys, self._compute, self._missing = list(keys), compute, missing
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            return self._missing(key)
        if key not in self._cache:
            self._cache[key] = self._compute(key)
        return self._cache[key]

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def node_text(expr: Expr) -> str:
    """The source text of an expression (tokens joined), for messages and placeholder ids."""
    if isinstance(expr, JsonExpr):
        return expr.value if isinstance(expr.value, str) else json.dumps(expr.value)
    return "".join(str(t) for t in expr.scan_values(lambda v: isinstance(v, Token)))


# ---------------------------------------------------------------- evaluation
def evaluate(expr: Expr, scope: Scope) -> Any:
    """The value of `expr`, with `Unknown` for anything not knowable offline. Never raises."""
    try:
        if isinstance(expr, JsonExpr):
            return _json_value(expr.value, scope)
        return _eval(expr, scope)
    except RecursionError:
        return Unknown("expression nested too deeply", node_text(expr))
    except (TypeError, ValueError, KeyError, IndexError) as exc:  # a type error in the user's expression
        return Unknown(f"cannot be evaluated ({exc})", node_text(expr))


def _json_value(value: Any, scope: Scope) -> Any:
    if isinstance(value, str):
        if "${" not in value and "%{" not in value:
            return value
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        try:
            tree = hcl2.parses_to_tree(f'x = "{escaped}"')
        except LarkError:
            return Unknown("template the HCL parser cannot read", value)
        return _eval(_kids(_kids(_kids(tree)[0])[0])[-1], scope)
    if isinstance(value, list):
        return [_json_value(v, scope) for v in value]
    if isinstance(value, Mapping):
        return {k: _json_value(v, scope) for k, v in value.items()}
    return value


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "%": lambda a, b: math.fmod(a, b),
}


def _eval(node: Tree, scope: Scope) -> Any:
    kind = node.data
    if kind == "expr_term":
        return _eval(_kids(node)[0], scope)
    if kind == "conditional":
        cond, yes, no = _kids(node)
        test = _eval(cond, scope)
        if isinstance(test, Unknown):
            a, b = _eval(yes, scope), _eval(no, scope)
            return a if a == b and first_unknown(a) is None else test
        return _eval(yes if _truthy(test) else no, scope)
    if kind == "binary_op":
        return _binary(node, scope)
    if kind == "unary_op":
        op, operand = str(node.children[0]), _eval(_kids(node)[0], scope)
        if isinstance(operand, Unknown):
            return operand
        return (not _truthy(operand)) if op == "!" else -_number(operand)
    if kind == "int_lit":
        return int(str(node.children[0]))
    if kind == "float_lit":
        return float(str(node.children[0]))
    if kind == "literal_value":
        return {"true": True, "false": False, "null": None}[str(node.children[0])]
    if kind == "string":
        return _template(node, scope)
    if kind in ("heredoc_template", "heredoc_template_trim"):
        return _heredoc(str(node.children[0]), kind == "heredoc_template_trim", node)
    if kind == "tuple":
        return [_eval(k, scope) for k in _kids(node)]
    if kind == "object":
        return _object(node, scope)
    if kind == "identifier":
        return scope.get(str(node.children[0]))
    if kind == "function_call":
        return _call(node, scope)
    if kind in ("get_attr_expr_term", "index_expr_term", "attr_splat_expr_term", "full_splat_expr_term"):
        result = _traverse(node, scope)
        return Unknown(result.reason, node_text(node)) if isinstance(result, Unknown) else result
    if kind in ("for_tuple_expr", "for_object_expr"):
        return _for(node, scope)
    return Unknown(f"HCL construct {kind} is not evaluated", node_text(node))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def _binary(node: Tree, scope: Scope) -> Any:
    left_node, term = _kids(node)[:2]
    operator, right_node = _kids(term)[0], _kids(term)[-1]
    op = str(operator.children[0])
    left = _eval(left_node, scope)
    if op in ("&&", "||") and not isinstance(left, Unknown):
        if op == "&&" and not _truthy(left):
            return False
        if op == "||" and _truthy(left):
            return True
        right = _eval(right_node, scope)
        return right if isinstance(right, Unknown) else _truthy(right)
    right = _eval(right_node, scope)
    unknown = first_unknown(left, right)
    if unknown is not None:
        return unknown
    try:
        if op in ("==", "!="):
            return _BINARY[op](left, right)
        if op in ("+", "-", "*", "/", "%", "<", ">", "<=", ">="):
            return _BINARY[op](_number(left), _number(right))
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        return Unknown(f"cannot apply {op}: {exc}", node_text(node))
    return Unknown(f"operator {op} is not evaluated", node_text(node))


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _string_chars(text: str) -> str:
    def replace(match: re.Match) -> str:
        body = match.group(1)
        if body[0] in "uU":
            return chr(int(body[1:], 16))
        return _ESCAPES.get(body, "\\" + body)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", replace, text)


def _template(node: Tree, scope: Scope) -> Any:
    parts = []
    for part in _kids(node):
        inner = part.children[0]
        if isinstance(inner, Token):
            text = str(inner)
            parts.append(text[1:] if inner.type == "ESCAPED_INTERPOLATION" else _string_chars(text))
        elif inner.data == "interpolation":
            parts.append(_eval(_kids(inner)[0], scope))
        else:
            return Unknown("template directives (%{...}) are not evaluated", node_text(node))
    if len(parts) == 1 and not isinstance(parts[0], str):
        return parts[0]  # "${x}" is x itself, whatever its type
    unknown = first_unknown(*parts)
    if unknown is not None:
        return unknown
    return "".join(_to_text(p) for p in parts)


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict, Mapping)):
        raise TypeError("a collection cannot be used as text")
    return str(value)


def _heredoc(token: str, trim: bool, node: Tree) -> Any:
    lines = token.split("\n")
    body = "\n".join(lines[1:-2]) + "\n" if len(lines) > 2 else ""
    if "${" in body or "%{" in body:
        return Unknown("heredoc templates are not evaluated", node_text(node))
    return textwrap.dedent(body) if trim else body


def _object(node: Tree, scope: Scope) -> Any:
    out = {}
    for elem in _kids(node):
        key_node, value_node = _kids(elem)[0], _kids(elem)[-1]
        key_expr = _kids(key_node)[0]
        bare = _kids(key_expr)[0] if key_expr.data == "expr_term" else key_expr
        if bare.data in ("identifier", "keyword"):  # `{name = ...}`: a bare word is the key itself
            key: Any = _name(bare)
        else:
            key = _eval(key_expr, scope)
        if isinstance(key, Unknown):
            return key
        out[_to_text(key)] = _eval(value_node, scope)
    return out


def _traverse(node: Tree, scope: Scope) -> Any:
    base_node, step = _kids(node)
    value = _eval(base_node, scope)
    if node.data in ("attr_splat_expr_term", "full_splat_expr_term"):
        if isinstance(value, Unknown):
            return value
        items = [] if value is None else (list(value) if isinstance(value, list) else [value])
        out = []
        for item in items:
            for sub in _kids(step):
                item = _step(item, sub, scope)
            out.append(item)
        return out
    return _step(value, step, scope)


def _step(value: Any, step: Tree, scope: Scope) -> Any:
    """One `.name` or `[index]` applied to `value`."""
    if isinstance(value, Unknown):
        return value
    if step.data == "get_attr":
        key: Any = _name(_kids(step)[0])
    elif step.data == "short_index":
        key = int(str(step.children[-1]))
    else:
        key = _eval(_kids(step)[0], scope)
        if isinstance(key, Unknown):
            return key
    try:
        if isinstance(value, list):
            return value[int(_number(key))]
        if isinstance(value, Mapping):
            if isinstance(value, dict) and key not in value:
                return Unknown(f"no attribute or key {key!r}")
            return value[key]  # lazy mappings answer missing keys themselves
    except (IndexError, KeyError, TypeError, ValueError):
        pass
    return Unknown(f"cannot take {key!r} of {type(value).__name__}")


def _for(node: Tree, scope: Scope) -> Any:
    parts = _kids(node)
    intro, body = parts[0], parts[1:]
    cond = body.pop() if body and body[-1].data == "for_cond" else None
    names = [_name(k) for k in _kids(intro) if k.data == "identifier"]
    collection = _eval([k for k in _kids(intro) if k.data != "identifier"][0], scope)
    if isinstance(collection, Unknown):
        return collection
    if isinstance(collection, Mapping):
        pairs = list(collection.items())
    elif isinstance(collection, list):
        pairs = list(enumerate(collection))
    else:
        return Unknown(f"cannot iterate over {type(collection).__name__}", node_text(node))
    is_object = node.data == "for_object_expr"
    grouping = is_object and any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in node.children)
    out: Any = {} if is_object else []
    for key, value in pairs:
        inner = scope.child(**({names[0]: key, names[1]: value} if len(names) == 2 else {names[0]: value}))
        if cond is not None:
            test = _eval(_kids(cond)[0], inner)
            if isinstance(test, Unknown):
                return test
            if not _truthy(test):
                continue
        if not is_object:
            out.append(_eval(body[0], inner))
            continue
        out_key = _eval(body[0], inner)
        if isinstance(out_key, Unknown):
            return out_key
        out_value = _eval(body[1], inner)
        if grouping:
            out.setdefault(_to_text(out_key), []).append(out_value)
        else:
            out[_to_text(out_key)] = out_value
    return out


# ---------------------------------------------------------------- functions
def _call(node: Tree, scope: Scope) -> Any:
    names = [k for k in _kids(node) if k.data == "identifier"]
    name = _name(names[0])
    if len(names) > 1:
        return Unknown(f"provider function {node_text(node).split('(')[0]}() is not evaluated", node_text(node))
    arg_tree = next((k for k in _kids(node) if k.data == "arguments"), None)
    args = [_eval(a, scope) for a in _kids(arg_tree)] if arg_tree is not None else []
    if arg_tree is not None and any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in arg_tree.children):
        if isinstance(args[-1], list):
            args = args[:-1] + args[-1]
    if name in ("try", "can"):
        good = [a for a in args if first_unknown(a) is None]
        return (good[0] if good else args[-1] if args else None) if name == "try" else bool(good)
    function = _FUNCTIONS.get(name)
    if function is None:
        return Unknown(f"function {name}() is not evaluated offline", node_text(node))
    unknown = first_unknown(*args)
    if unknown is not None:
        return unknown
    try:
        return function(*args)
    except Exception as exc:  # noqa: BLE001 - any failure of a user's function call means "cannot know"
        return Unknown(f"{name}() failed: {exc}", node_text(node))


def _format(spec: str, *args: Any) -> str:
    python_spec = re.sub(r"%(-?\d*)v", r"%\1s", spec).replace("%q", '"%s"')
    return python_spec % tuple(_to_text(a) if isinstance(a, bool) else a for a in args)


def _lookup(mapping: Mapping, key: str, *default: Any) -> Any:
    if key in mapping:
        return mapping[key]
    if default:
        return default[0]
    raise KeyError(key)


def _flatten(values: list) -> list:
    out = []
    for value in values:
        out += _flatten(value) if isinstance(value, list) else [value]
    return out


def _cidrhost(prefix: str, number: int) -> str:
    return str(ipaddress.ip_network(prefix, strict=False)[int(number)])


def _cidrsubnet(prefix: str, newbits: int, number: int) -> str:
    net = ipaddress.ip_network(prefix, strict=False)
    return str(list(net.subnets(prefixlen_diff=int(newbits)))[int(number)])


def _distinct(values: list) -> list:
    out = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "length": len, "lower": str.lower, "upper": str.upper, "trimspace": str.strip, "format": _format,
    "join": lambda sep, *lists: sep.join(_to_text(v) for v in _flatten(list(lists))),
    "split": lambda sep, text: text.split(sep), "replace": lambda s, old, new: s.replace(old, new),
    "substr": lambda s, offset, length: s[offset:] if length == -1 else s[offset:offset + length],
    "element": lambda values, index: values[int(index) % len(values)], "lookup": _lookup,
    "concat": lambda *lists: [v for lst in lists for v in lst], "flatten": _flatten,
    "compact": lambda values: [v for v in values if v not in (None, "")], "distinct": _distinct,
    "contains": lambda values, value: value in values, "keys": lambda m: sorted(m), "values": lambda m: [m[k] for k in sorted(m)],
    "merge": lambda *maps: {k: v for m in maps for k, v in m.items()}, "zipmap": lambda ks, vs: dict(zip(ks, vs)),
    "slice": lambda values, start, end: values[int(start):int(end)], "range": lambda *a: list(range(*(int(x) for x in a))),
    "coalesce": lambda *values: next(v for v in values if v not in (None, "")),
    "coalescelist": lambda *lists: next(v for v in lists if v),
    "tolist": list, "toset": _distinct, "tomap": dict, "tostring": _to_text, "tonumber": _number,
    "tobool": _truthy, "max": lambda *a: max(_number(x) for x in _flatten(list(a))),
    "min": lambda *a: min(_number(x) for x in _flatten(list(a))), "abs": abs,
    "jsondecode": json.loads, "jsonencode": lambda v: json.dumps(v, separators=(",", ":")),
    "cidrhost": _cidrhost, "cidrsubnet": _cidrsubnet,
}
