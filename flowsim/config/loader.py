"""Load a network configuration (YAML or JSON, docs/formats.md (configuration)) into the model.

Every problem is collected, named by its object and, for files, its line, and
raised together as one `ConfigError`, so users fix a file in one pass.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, Problem
from ..model.network import (
    ACCEPT,
    ADVANCED,
    ANY_PORT,
    BASIC,
    DIRECTIONS,
    DROP,
    LEGACY_PRIORITY,
    MAX_PORT_LIST_ENTRIES,
    PORTED_PROTOCOLS,
    PROTOCOL_NAMES,
    Config,
    Group,
    Interface,
    Limits,
    Peer,
    PortList,
    PrefixList,
    Rule,
    protocol_name,
)

GROUP_TYPES = {"basic": BASIC, "normal": BASIC, "advanced": ADVANCED, "enterprise": ADVANCED}
ACTIONS = {"accept": ACCEPT, "allow": ACCEPT, "drop": DROP, "deny": DROP}
DEFAULT_VPC = "default"

_TOP_KEYS = {"limits", "security_groups", "prefix_lists", "port_lists", "interfaces"}
_GROUP_KEYS = {"type", "vpc", "internal_policy", "rules", "description", "name"}
_RULE_KEYS = {"id", "direction", "action", "priority", "protocol", "ports", "port_list", "source_ports", "peer", "local",
              "description", "legacy"}
_ENI_KEYS = {"instance", "vpc", "security_groups", "ips", "ipv6", "ipv4_prefixes", "ipv6_prefixes", "description",
             "load_balancer_backend"}
_PL_KEYS = {"entries", "max_entries", "description"}


# ---------------------------------------------------------------- reading with lines
class _LineDict(dict):
    """A mapping read from YAML that remembers the line of itself and of each key (slots: a large file has a
    mapping per rule, and an attribute dictionary beside each cost time and memory)."""

    __slots__ = ("line", "key_lines")
    line: int | None
    key_lines: dict


class _LineList(list):
    """A sequence read from YAML that remembers the line of itself and of each item."""

    __slots__ = ("line", "item_lines")
    line: int | None
    item_lines: list


class ExactLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # the C parser where PyYAML has it
    """The safe loader with YAML 1.2's core types only: a plain scalar is a decimal integer, true/false, null
    or text. YAML 1.1's other implicit types never reinterpret a value: `22:22` (base 60), `010` (octal),
    `0x1F`, `on`/`no`/`y`, `.inf` and dates stay the text they are (and a field that wants a number or a
    keyword refuses them, naming the rule); `010` is ten."""

    yaml_implicit_resolvers: dict = {}


ExactLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))
ExactLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
ExactLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
ExactLoader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: int(node.value, 10))  # never base 8 or 60
MAX_EXPANSION = 10  # aliases may repeat what a document holds this many times over, and no more
MIN_EXPANDED = 100_000  # ... below this many values in all, any repetition is fine


def expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(values the document holds once its aliases are expanded, distinct values it holds), without expanding:
    an alias is a second reference to a node, so sizes are summed over a graph, each node measured once.
    An alias inside the value it names (`a: &a [*a]`) would nest without end: RecursionError."""
    size: dict[int, int] = {}
    measuring: set[int] = set()  # nodes whose children are being measured: the path from the root
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else []
        if done:
            size[id(node)] = 1 + sum(size[id(c)] for c in children)
            measuring.discard(id(node))
        elif id(node) in measuring:
            raise RecursionError("an alias inside the value it names")
        else:
            measuring.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
    return size[id(root)], len(size)


def refuse_alias_bombs(node: yaml.Node, source: str) -> None:
    """Raise ConfigError when a composed document's aliases would multiply it past MAX_EXPANSION times."""
    expanded, distinct = expanded_size(node)
    if expanded > MIN_EXPANDED and expanded > MAX_EXPANSION * distinct:
        raise ConfigError(Problem(f"aliases expand the document to {expanded:,} values from {distinct:,} "
                                  f"(more than {MAX_EXPANSION} times what it holds): refused", source=source))


def _to_python(loader: yaml.SafeLoader, node: yaml.Node, source: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out = _LineDict()
        out.line, out.key_lines = node.start_mark.line + 1, {}
        for key_node, value_node in node.value:
            key = _to_python(loader, key_node, source)
            if isinstance(key, (dict, list)):
                raise ConfigError(Problem("a mapping key must be a plain value", source=source, line=key_node.start_mark.line + 1))
            if key in out:
                raise _duplicate_key(key, source, key_node.start_mark.line + 1)
            out[key] = _to_python(loader, value_node, source)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        out_list = _LineList(_to_python(loader, item, source) for item in node.value)
        out_list.line = node.start_mark.line + 1
        out_list.item_lines = [item.start_mark.line + 1 for item in node.value]
        return out_list
    if node.tag == _STR_TAG:  # most values: skip the general constructor
        return node.value
    return loader.construct_object(node, deep=True)


_STR_TAG = "tag:yaml.org,2002:str"


def _duplicate_key(key: Any, source: str, line: int) -> ConfigError:
    return ConfigError(Problem(f"duplicate key {shown(key)}", source=source, line=line))


def _parse_text(text: str, source: str) -> Any:
    """The document through the composed node graph: the general path, for whatever `_read_events` hands back."""
    loader = ExactLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        refuse_alias_bombs(node, source)
        return _to_python(loader, node, source)
    finally:
        loader.dispose()


class _Unusual(Exception):
    """Something `_read_events` leaves to the node graph: a tag, an anchor issue, a second document, deep nesting."""


_PLAIN = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False,
          "~": None, "null": None, "Null": None, "NULL": None, "": None}  # ExactLoader's bool and null resolvers
_INT_START = frozenset("-+0123456789")
_INT = re.compile(r"[-+]?[0-9]+").fullmatch  # ExactLoader's int resolver ($ before a final newline aside, which a
# plain scalar never ends with)
MAX_EVENT_DEPTH = 64  # deeper documents take the node graph, which reports RecursionError as it always did
_NO_KEY = object()
_BAD_KEY = object()


def _read_events(text: str, source: str) -> Any:
    """The document from libyaml's events in one pass, without composing nodes: what `_parse_text` returns, with
    the same lines, resolution, alias-bomb refusal and first problem, for a fraction of the time and memory.

    Each value is built once (an alias shares its anchor's value; the node path copies it), repeated scalars share
    one string, and problems that the node path finds while converting (a bad or duplicate key, an integer too
    long to convert) wait until the whole document has parsed and passed the alias check, as they do there.
    Raises `_Unusual` for what it leaves to the node graph."""
    events = yaml.events
    scalar_event, alias_event = events.ScalarEvent, events.AliasEvent
    mapping_start, mapping_end = events.MappingStartEvent, events.MappingEndEvent
    sequence_start, sequence_end = events.SequenceStartEvent, events.SequenceEndEvent
    document_start, stream_end = events.DocumentStartEvent, events.StreamEndEvent
    parser = yaml.cyaml.CParser(text)
    get = parser.get_event
    plain, is_int, int_start, no_key, bad_key = _PLAIN, _INT, _INT_START, _NO_KEY, _BAD_KEY
    strings: dict[str, str] = {}
    intern = strings.setdefault
    anchors: dict[str, tuple[Any, int, int]] = {}
    stack: list = []
    first_problem: Exception | None = None
    documents = distinct = 0
    root: Any = no_key
    # the open collection: its value, whether a mapping, its key or item lines, the pending key and its line,
    # its expanded size so far, its anchor
    container: Any = None
    is_map = False
    lines: Any = None
    key: Any = no_key
    key_line = 0
    size = 0
    anchor = None
    try:
        while True:
            event = get()
            kind = event.__class__
            if kind is scalar_event:
                if event.tag is not None:
                    raise _Unusual("tag")
                value = event.value
                if event.implicit[0]:
                    if value in plain:
                        value = plain[value]
                    elif value[0] in int_start and is_int(value):  # not empty: "" is null
                        try:
                            value = int(value, 10)
                        except ValueError as exc:  # thousands of digits: read_document says so
                            first_problem = first_problem or exc
                            value = 0
                    else:
                        value = intern(value, value)
                else:
                    value = intern(value, value)
                distinct += 1
                if is_map and event.anchor is None:  # most events: a mapping's key or value, placed at once
                    size += 1
                    if key is no_key:
                        if value in container:
                            first_problem = first_problem or _duplicate_key(value, source, event.start_mark.line + 1)
                            key = bad_key
                        else:
                            key, key_line = value, event.start_mark.line + 1
                    else:
                        if key is not bad_key:
                            container[key] = value
                            lines[key] = key_line
                        key = no_key
                    continue
                value_size = 1
                if event.anchor is not None or not is_map or key is no_key:
                    value_line = event.start_mark.line + 1
                    if event.anchor is not None:
                        if event.anchor in anchors:
                            raise _Unusual("anchor")
                        anchors[event.anchor] = (value, 1, value_line)
            elif kind is mapping_end or kind is sequence_end:
                value, value_size, value_line = container, size, container.line
                if anchor is not None:
                    anchors[anchor] = (value, size, value_line)
                container, is_map, lines, key, key_line, size, anchor = stack.pop()
            elif kind is mapping_start or kind is sequence_start:
                if event.tag is not None:
                    raise _Unusual("tag")
                if event.anchor is not None and event.anchor in anchors:
                    raise _Unusual("anchor")
                if len(stack) >= MAX_EVENT_DEPTH:
                    raise _Unusual("depth")
                distinct += 1
                stack.append((container, is_map, lines, key, key_line, size, anchor))
                is_map = kind is mapping_start
                container = _LineDict() if is_map else _LineList()
                container.line = event.start_mark.line + 1
                lines = {} if is_map else []
                if is_map:
                    container.key_lines = lines
                else:
                    container.item_lines = lines
                key, size, anchor = no_key, 1, event.anchor
                continue
            elif kind is alias_event:
                target = anchors.get(event.anchor)
                if target is None:  # undefined, or its own ancestor
                    raise _Unusual("alias")
                value, value_size, value_line = target
            elif kind is document_start:
                documents += 1
                if documents > 1:
                    raise _Unusual("documents")
                continue
            elif kind is stream_end:
                break
            else:  # stream start, document end
                continue
            # a value is complete: place it
            if not stack:
                root, root_size = value, value_size
                continue
            size += value_size
            if not is_map:
                container.append(value)
                lines.append(value_line)
            elif key is no_key:
                if isinstance(value, (dict, list)):
                    first_problem = first_problem or ConfigError(
                        Problem("a mapping key must be a plain value", source=source, line=value_line))
                    key = bad_key
                elif value in container:
                    first_problem = first_problem or _duplicate_key(value, source, value_line)
                    key = bad_key
                else:
                    key, key_line = value, value_line
            else:
                if key is not bad_key:
                    container[key] = value
                    lines[key] = key_line
                key = no_key
    finally:
        parser.dispose()
    if root is no_key:
        return None
    if root_size > MIN_EXPANDED and root_size > MAX_EXPANSION * distinct:
        raise ConfigError(Problem(f"aliases expand the document to {root_size:,} values from {distinct:,} "
                                  f"(more than {MAX_EXPANSION} times what it holds): refused", source=source))
    if first_problem is not None:
        raise first_problem
    return root


def _parse_document(text: str, source: str) -> Any:
    """The document `_parse_text` reads, by libyaml's events where PyYAML has libyaml. A syntax error is the one
    the node path would raise: both read the same events, and whatever the node path would refuse first (an
    undefined alias, a second document) is `_Unusual` here."""
    if not getattr(yaml, "__with_libyaml__", False):
        return _parse_text(text, source)
    try:
        return _read_events(text, source)
    except _Unusual:
        return _parse_text(text, source)


@contextlib.contextmanager
def paused_gc():
    """No cyclic garbage collection while a document's values, an import's parse trees or an analysis's BDD
    handles are built (also as a decorator, `@paused_gc()`): with millions of new objects alive the collector
    walks them all again and again. It took most of the time reading a large file took, and a one-group diff
    of 1,000 ENIs took 5.0 s CPU with collections, 1.4 s without. Reference counting still frees."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_document(path: str | os.PathLike) -> Any:
    """Read a YAML or JSON file into Python values that remember their lines (duplicate keys refused)."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(Problem(f"cannot read file: {exc.strerror or exc}", source=source)) from None
    if b"\x00" in raw[:4096]:
        raise ConfigError(Problem("not a YAML or JSON file (binary content)", source=source))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(Problem(f"not UTF-8 text (byte {exc.start})", source=source)) from None
    try:
        with paused_gc():
            return _parse_document(text, source)
    except RecursionError:
        raise ConfigError(Problem("nested too deeply to be a configuration", source=source)) from None
    except ValueError as exc:  # a number of thousands of digits (Python refuses to convert it), a bad date
        what = "a number of more than 4,300 digits" if "digits" in str(exc) else f"unreadable value: {str(exc)[:100]}"
        raise ConfigError(Problem(what, source=source)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if source.endswith(".json"):
            try:  # JSON that YAML cannot read (tabs, for instance): no line numbers then
                return json.loads(text)
            except json.JSONDecodeError as jexc:
                raise ConfigError(Problem(f"invalid JSON: {jexc.msg}", source=source, line=jexc.lineno)) from None
        what = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(Problem(f"invalid YAML: {what}", source=source, line=mark.line + 1 if mark else None)) from None


# ---------------------------------------------------------------- value parsers
class _Bad(ValueError):
    """A value that cannot be used; the message says why."""


_DECIMAL = re.compile(r"[-+]?[0-9]+")  # ASCII digits only: str.isdigit() also takes '٢٢', int() also '1_000'
MAX_SHOWN = 80  # characters of a value echoed in a message


def shown(value: Any) -> str:
    """A value as a message quotes it: repr, control characters escaped, cut after MAX_SHOWN characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def whole_number(value: Any) -> int | None:
    """An integer written as one (a YAML or JSON integer, or decimal ASCII digits); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip() if isinstance(value, str) else ""
    return int(text) if _DECIMAL.fullmatch(text) and len(text) < 20 else None


def parse_protocol(value: Any) -> int:
    """Protocol name (any case) or IANA number 0..255 -> number; `all` -> -1."""
    if isinstance(value, bool) or value is None:
        raise _Bad(f"unknown protocol {shown(value)}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip().lower()
        if text in PROTOCOL_NAMES:
            return PROTOCOL_NAMES[text]
        if text in ("-1", "any", "*"):
            return PROTOCOL_NAMES["all"]
        if whole_number(text) is None:
            raise _Bad(f"unknown protocol {shown(value)}")
        number = int(text)
    if number == -1:
        return PROTOCOL_NAMES["all"]
    if not 0 <= number <= 255:
        raise _Bad(f"protocol number {number} is outside 0..255")
    return number


def parse_port_range(value: Any) -> tuple[int, int] | None:
    """`443`, `8000-8080`, `8000/8080` -> (lo, hi); omitted or `-1/-1` -> None (any port)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Bad(f"malformed port range {shown(value)}")
    text = str(value).strip()
    if text in ("-1", "-1/-1", "", "all", "any"):
        return None
    sep = "/" if "/" in text else ("-" if "-" in text[1:] else None)
    parts = text.split(sep, 1) if sep else [text, text]
    lo, hi = (whole_number(p) for p in parts)
    if lo is None or hi is None:
        raise _Bad(f"malformed port range {shown(value)} (expected 443, 8000-8080 or 8000/8080)")
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
        raise _Bad(f"port range {shown(text)} is outside 1..65535")
    if lo > hi:
        raise _Bad(f"port range {shown(text)} has its start after its end")
    return lo, hi


@functools.lru_cache(maxsize=1 << 16)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """ip_network(text, strict=False), remembered: a large configuration names the same CIDRs many times, and
    parsing one is most of the time a rule takes (the networks are immutable, so sharing them is safe)."""
    return ipaddress.ip_network(text, strict=False)


def parse_network(value: Any, version: int | None = None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """CIDR or bare address (/32 or /128); host bits are cleared."""
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"bad CIDR {shown(value)}")
    try:
        net = _network(value.strip())
    except ValueError:
        raise _Bad(f"bad CIDR {shown(value)}") from None
    if version is not None and net.version != version:
        raise _Bad(f"{shown(value)} is not an IPv{version} {'prefix' if '/' in value else 'address'}")
    return net


def parse_address(value: Any, version: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """One address of the given IP version."""
    try:
        addr = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise _Bad(f"bad IPv{version} address {shown(value)}") from None
    if addr.version != version:
        raise _Bad(f"{shown(value)} is not an IPv{version} address")
    return addr


# ---------------------------------------------------------------- the loader
class _Collector:
    """Collects problems with their object names and lines."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[Problem] = []

    def add(self, subject: str, message: str, line: int | None) -> None:
        self.problems.append(Problem(message, subject=subject, source=self.source, line=line))


def line_of(container: Any, key: Any) -> int | None:
    if isinstance(container, _LineDict):
        return container.key_lines.get(key, container.line)
    if isinstance(container, _LineList) and isinstance(key, int) and key < len(container.item_lines):
        return container.item_lines[key]
    return getattr(container, "line", None)


def _check_keys(obj: Mapping, allowed: set[str], subject: str, out: _Collector) -> None:
    for key in obj:
        if key not in allowed:
            out.add(subject, f"unknown key {shown(key)} (expected one of: {', '.join(sorted(allowed))})", line_of(obj, key))


def _as_mapping(value: Any, subject: str, what: str, out: _Collector, line: int | None) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        out.add(subject, f"{what} must be a mapping, not {_kind(value)}", line)
        return {}
    return value


def _kind(value: Any) -> str:
    """A value's type in the user's words."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if value is None:
        return "empty"
    return f"text {str(value)!r}" if isinstance(value, str) else type(value).__name__


def _as_list(value: Any, subject: str, what: str, out: _Collector, line: int | None, scalar_ok: bool = True) -> list:
    """A list value; a single scalar stands for a one-item list where `scalar_ok`."""
    if value is None:
        return []
    if isinstance(value, (str, int)) and not isinstance(value, bool) and scalar_ok:
        single = _LineList([value])
        single.line, single.item_lines = line, [line]
        return single
    if not isinstance(value, list):
        out.add(subject, f"{what} must be a list, not {_kind(value)}", line)
        return []
    return value


def _choice(value: Any, table: dict[str, str], default: str | None, what: str) -> str:
    if value is None:
        if default is None:
            raise _Bad(f"missing {what}")
        return default
    key = str(value).strip().lower()
    if key not in table:
        raise _Bad(f"unknown {what} {shown(value)} (expected {' | '.join(sorted(set(table)))})")
    return table[key]


_MEMO_FIELDS = ("direction", "action", "priority", "protocol", "ports", "port_list", "source_ports", "local", "peer")
_MISS = object()
_MEMO_CLASSES = frozenset({str, int, type(None)})


def _new_rule_memo(known: dict[str, set[str]]) -> list[tuple[str, dict, Any]]:
    """For each rule field (but `legacy`), its parser and the values it parsed by the text or integer written,
    for one configuration (a peer's or port list's meaning depends on the configuration's ids): a large
    configuration writes the same few values in every rule, and parsing them again is most of what loading
    it takes."""
    parsers = {
        "direction": lambda v: _choice(v, DIRECTIONS, None, "direction"),
        "action": lambda v: _choice(v, ACTIONS, ACCEPT, "action"),
        "priority": lambda v: _parse_priority(v, False),
        "protocol": lambda v: parse_protocol(v) if v is not None else _missing("protocol"),
        "ports": parse_port_range,
        "port_list": lambda v: _parse_port_list_ref(v, known),
        "source_ports": parse_port_range,
        "local": lambda v: None if v is None else parse_network(v),
        "peer": lambda v: _parse_peer(v, known),
    }
    return [(key, {}, parsers[key]) for key in _MEMO_FIELDS]


def _memo_rule(raw: Mapping, group: str, position: int, rule_id: str, line: int | None,
               memo: list[tuple[str, dict, Any]]) -> Rule | None:
    """The rule, read field by field as `_parse_rule` does, each value parsed once per configuration, for a rule
    without `legacy` whose fields are all fine; None sends any other through `_parse_rule`'s general path,
    which says what is wrong."""
    get = raw.get
    parsed = []
    for key, seen, parse in memo:
        value = get(key)
        if value.__class__ in _MEMO_CLASSES:  # not bool: it hashes as an int
            result = seen.get(value, _MISS)
            if result is _MISS:
                try:
                    result = seen[value] = parse(value)
                except _Bad:
                    return None
        else:
            try:
                result = parse(value)
            except _Bad:
                return None
        parsed.append(result)
    direction, action, priority, protocol, ports, port_list, source_ports, local, peer = parsed
    if protocol not in PORTED_PROTOCOLS and (ports is not None or source_ports is not None or port_list is not None):
        return None
    if port_list is not None and get("ports") is not None:
        return None
    description = get("description")
    return Rule.of(
        group=group, position=position, id=rule_id, direction=direction, action=action, priority=priority,
        protocol=protocol, ports=ports or ANY_PORT, source_ports=source_ports or ANY_PORT, peer=peer, local=local,
        description="" if description is None else str(description), line=line, port_list=port_list or "",
        legacy=False,
    )


def _parse_rule(raw: Any, group: str, position: int, line: int | None, known: dict[str, set[str]], out: _Collector,
                memo: list | None = None) -> Rule | None:
    if raw.__class__ is not _LineDict and not isinstance(raw, Mapping):  # the first test spares an ABC check
        out.add(f"{group} rule #{position}", f"a rule must be a mapping, not {_kind(raw)}", line)
        return None
    rule_id = raw.get("id")
    rule_id = f"#{position}" if rule_id is None or str(rule_id).strip() == "" else str(rule_id)
    if memo is not None and "legacy" not in raw and raw.keys() <= _RULE_KEYS:
        rule = _memo_rule(raw, group, position, rule_id, line, memo)
        if rule is not None:
            return rule
    subject = f"{group} rule #{position}"
    if rule_id != f"#{position}":
        subject = f"{group} rule {rule_id}"
    _check_keys(raw, _RULE_KEYS, subject, out)
    before = len(out.problems)

    def field_value(key: str, parse):
        try:
            return parse(raw.get(key))
        except _Bad as exc:
            out.add(subject, str(exc), line_of(raw, key))
            return None

    direction = field_value("direction", lambda v: _choice(v, DIRECTIONS, None, "direction"))
    action = field_value("action", lambda v: _choice(v, ACTIONS, ACCEPT, "action"))
    legacy = field_value("legacy", lambda v: _parse_flag(v, "legacy"))
    priority = field_value("priority", lambda v: _parse_priority(v, bool(legacy)))
    protocol = field_value("protocol", lambda v: parse_protocol(v) if v is not None else _missing("protocol"))
    ports = field_value("ports", parse_port_range)
    port_list = field_value("port_list", lambda v: _parse_port_list_ref(v, known))
    source_ports = field_value("source_ports", parse_port_range)
    local = field_value("local", lambda v: None if v is None else parse_network(v))
    peer = field_value("peer", lambda v: _parse_peer(v, known))
    if protocol is not None and protocol not in PORTED_PROTOCOLS:
        for key, value in (("ports", ports), ("source_ports", source_ports), ("port_list", port_list)):
            if value is not None:
                what = "a port list is" if key == "port_list" else f"{key.replace('_', ' ')} are"
                out.add(subject, f"{what} not allowed for protocol {protocol_name(protocol)}", line_of(raw, key))
    if port_list is not None and raw.get("ports") is not None:
        out.add(subject, "a rule names ports or a port list, not both", line_of(raw, "port_list"))
    if len(out.problems) > before:
        return None
    description = raw.get("description")
    return Rule(
        group=group, position=position, id=rule_id, direction=direction, action=action, priority=priority,
        protocol=protocol, ports=ports or ANY_PORT, source_ports=source_ports or ANY_PORT, peer=peer, local=local,
        description="" if description is None else str(description), line=line, port_list=port_list or "",
        legacy=bool(legacy),
    )


def _missing(what: str):
    raise _Bad(f"missing {what}")


def _parse_priority(value: Any, legacy: bool = False) -> int:
    """1..100; the legacy 110 of cloud-created rules only where the rule is marked `legacy: true`."""
    if value is None:
        return 1
    number = whole_number(value)
    if number is None:
        raise _Bad(f"priority must be an integer 1..100, not {shown(value)}")
    if number == LEGACY_PRIORITY and legacy:
        return number
    if not 1 <= number <= 100:
        hint = (f" (the legacy priority {LEGACY_PRIORITY} is accepted only on rules imported from the cloud, "
                "marked legacy: true)" if number == LEGACY_PRIORITY else "")
        raise _Bad(f"priority {number} is outside 1..100{hint}")
    return number


def _parse_flag(value: Any, what: str) -> bool | None:
    """true or false; None when absent."""
    if value is None or isinstance(value, bool):
        return value
    raise _Bad(f"{what} must be true or false, not {_kind(value)}")


def _parse_port_list_ref(value: Any, known: dict[str, set[str]]) -> str | None:
    if value is None:
        return None
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is None:
        raise _Bad(f"port_list must be a port list id, not {_kind(value)}")
    if text not in known["port_lists"]:
        raise _Bad(f"names unknown port list {shown(text)}")
    return text


ID_PREFIXES = {"security group": "sg-", "prefix list": "pl-", "port list": "prl-", "interface": ""}
_ID_TEXT = re.compile(r"[^\s/\x00-\x1f\x7f]+")  # no white space, slash or control character


def id_problem(kind: str, value: Any) -> str | None:
    """What is wrong with an id of this kind, or None. Groups, prefix lists and port lists carry the cloud's
    prefixes (`sg-`, `pl-`, `prl-`), which is what tells a rule's peer from a CIDR; no id is empty or holds
    white space, a slash or a control character."""
    prefix = ID_PREFIXES[kind]
    if not isinstance(value, str) or not value:
        return f"a {kind} id must be non-empty text, not {shown(value)}"
    if not _ID_TEXT.fullmatch(value):
        return f"a {kind} id may not hold white space, '/' or control characters"
    if not value.startswith(prefix) or value == prefix:
        return f"a {kind} id starts with {prefix!r} (as the cloud's do), so that a peer is never taken for another"
    return None


def _parse_peer(value: Any, known: dict[str, set[str]]) -> Peer:
    if value is None:
        raise _Bad("missing peer (a CIDR, a security group id or a prefix list id)")
    if isinstance(value, list):
        raise _Bad("a rule takes exactly one peer")
    text = str(value).strip()
    if text in known["groups"]:
        return Peer("group", ref=text)
    if text in known["prefix_lists"]:
        return Peer("prefix_list", ref=text)
    try:
        return Peer("cidr", cidr=parse_network(text))
    except _Bad:
        pass
    if text.startswith("sg-"):
        raise _Bad(f"peer names unknown security group {shown(text)}")
    if text.startswith("pl-"):
        raise _Bad(f"peer names unknown prefix list {shown(text)}")
    if text[:1].isdigit() or ":" in text:
        raise _Bad(f"bad CIDR {shown(text)}")
    raise _Bad(f"peer {shown(text)} is neither a CIDR nor a known security group or prefix list")


def _parse_group(gid: str, raw: Any, order: int, line: int | None, known: dict[str, set[str]], out: _Collector,
                 memo: list | None = None) -> Group | None:
    subject = gid
    if not isinstance(raw, Mapping):
        out.add(subject, f"a security group must be a mapping, not {_kind(raw)}", line)
        return None
    _check_keys(raw, _GROUP_KEYS, subject, out)
    try:
        gtype = _choice(raw.get("type"), GROUP_TYPES, BASIC, "group type")
    except _Bad as exc:
        out.add(subject, str(exc), line_of(raw, "type"))
        gtype = BASIC
    policy_raw = raw.get("internal_policy")
    try:
        policy = _choice(policy_raw, ACTIONS, ACCEPT if gtype == BASIC else DROP, "internal policy")
    except _Bad as exc:
        out.add(subject, str(exc), line_of(raw, "internal_policy"))
        policy = DROP
    if gtype == ADVANCED and policy == ACCEPT:
        out.add(subject, "an advanced group is always internally isolated: internal_policy must be drop", line_of(raw, "internal_policy"))
    rules_raw = _as_list(raw.get("rules"), subject, "rules", out, line_of(raw, "rules"), scalar_ok=False)
    rules = []
    seen: dict[str, int] = {}
    item_lines = getattr(rules_raw, "item_lines", None) or [getattr(rules_raw, "line", None)] * len(rules_raw)
    for i, rule_raw in enumerate(rules_raw):
        rule = _parse_rule(rule_raw, gid, i + 1, item_lines[i], known, out, memo)
        if rule is None:
            continue
        if rule.id in seen:
            out.add(f"{gid} rule {rule.id}", f"duplicate rule id (also rule #{seen[rule.id]})", rule.line)
            continue
        seen[rule.id] = rule.position
        rules.append(rule)
    vpc = raw.get("vpc")
    return Group(id=gid, type=gtype, vpc=DEFAULT_VPC if vpc in (None, "") else str(vpc), internal_policy=policy,
                 rules=tuple(rules), order=order, line=line)


def _list_entries(pid: str, raw: Any, line: int | None, out: _Collector, what: str, parse) -> tuple[list, Any]:
    """A prefix or port list given as its entries or as {entries, max_entries, description}: the entries
    `parse` accepts (each bad one reported) and max_entries as given (None when absent)."""
    max_entries = None
    container = raw
    if isinstance(raw, Mapping):
        _check_keys(raw, _PL_KEYS, pid, out)
        container = raw.get("entries")
        max_entries = raw.get("max_entries")
    entries_raw = _as_list(container, pid, f"{what} entries", out, line)
    entries = []
    for i, value in enumerate(entries_raw):
        try:
            entries.append(parse(value))
        except _Bad as exc:
            out.add(f"{pid} entry #{i + 1}", str(exc), line_of(entries_raw, i))
    return entries, max_entries


def _parse_prefix_list(pid: str, raw: Any, line: int | None, out: _Collector) -> PrefixList | None:
    entries, max_entries = _list_entries(pid, raw, line, out, "prefix list", parse_network)
    if max_entries is None:
        max_entries = len(entries)
    elif isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
        out.add(pid, f"max_entries must be a positive integer, not {shown(max_entries)}", line_of(raw, "max_entries"))
        max_entries = len(entries)
    return PrefixList(id=pid, entries=tuple(entries), max_entries=max_entries, line=line)


def _parse_port_list(pid: str, raw: Any, line: int | None, out: _Collector) -> PortList:
    """A port list: a list of port ranges, or {entries, max_entries (1..2000), description}."""
    entries, max_entries = _list_entries(pid, raw, line, out, "port list", _port_list_entry)
    if max_entries is None:
        max_entries = max(1, len(entries))
    elif (isinstance(max_entries, bool) or not isinstance(max_entries, int)
          or not 1 <= max_entries <= MAX_PORT_LIST_ENTRIES):
        out.add(pid, f"max_entries must be an integer 1..{MAX_PORT_LIST_ENTRIES}, not {shown(max_entries)}",
                line_of(raw, "max_entries"))
        max_entries = max(1, len(entries))
    return PortList(id=pid, entries=tuple(entries), max_entries=max_entries, line=line)


def _port_list_entry(value: Any) -> tuple[int, int]:
    entry = parse_port_range(value)
    if entry is None:
        raise _Bad(f"a port list entry is a port range within 1..65535, not {shown(value)}")
    return entry


def _parse_interface(eid: str, raw: Any, line: int | None, out: _Collector) -> Interface | None:
    subject = eid
    if not isinstance(raw, Mapping):
        out.add(subject, f"an interface must be a mapping, not {_kind(raw)}", line)
        return None
    _check_keys(raw, _ENI_KEYS, subject, out)
    groups_raw = _as_list(raw.get("security_groups"), subject, "security_groups", out, line_of(raw, "security_groups"))
    groups = []
    for g in groups_raw:
        if str(g) in groups:
            out.add(subject, f"security group {g!r} is listed twice", line_of(raw, "security_groups"))
        else:
            groups.append(str(g))

    def values(key: str, parse) -> tuple:
        items = _as_list(raw.get(key), subject, key, out, line_of(raw, key))
        parsed = []
        for i, item in enumerate(items):
            try:
                parsed.append(parse(item))
            except _Bad as exc:
                out.add(subject, f"{key}: {exc}", line_of(items, i) or line_of(raw, key))
        return tuple(parsed)

    vpc = raw.get("vpc")
    instance = raw.get("instance")
    try:
        backend = bool(_parse_flag(raw.get("load_balancer_backend"), "load_balancer_backend"))
    except _Bad as exc:
        out.add(subject, str(exc), line_of(raw, "load_balancer_backend"))
        backend = False
    return Interface(
        id=eid, vpc=DEFAULT_VPC if vpc in (None, "") else str(vpc), security_groups=tuple(groups),
        ips=values("ips", lambda v: parse_address(v, 4)), ipv6=values("ipv6", lambda v: parse_address(v, 6)),
        ipv4_prefixes=values("ipv4_prefixes", lambda v: parse_network(v, 4)),
        ipv6_prefixes=values("ipv6_prefixes", lambda v: parse_network(v, 6)),
        instance="" if instance is None else str(instance), line=line, load_balancer_backend=backend,
    )


def _parse_limits(raw: Any, out: _Collector) -> Limits:
    mapping = _as_mapping(raw, "limits", "limits", out, getattr(raw, "line", None))
    names = {f.name for f in fields(Limits)}
    values = {}
    for key, value in mapping.items():
        if key not in names:
            out.add("limits", f"unknown quota {shown(key)} (expected one of: {', '.join(sorted(names))})", line_of(mapping, key))
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            out.add("limits", f"{key} must be a non-negative integer, not {shown(value)}", line_of(mapping, key))
        else:
            values[key] = value
    return Limits(**values)


def parse_config(document: Any, source: str = "") -> tuple[Config, list[Problem]]:
    """Turn a loaded document into a `Config`, with every problem found on the way."""
    out = _Collector(source)
    if document is None:
        out.add("", "the configuration is empty", None)
        return Config({}, {}, {}, source=source), out.problems
    if not isinstance(document, Mapping):
        out.add("", f"the configuration must be a mapping with security_groups and interfaces, not {_kind(document)}", getattr(document, "line", 1))
        return Config({}, {}, {}, source=source), out.problems
    _check_keys(document, _TOP_KEYS, "configuration", out)
    for key in document:
        if not isinstance(key, str):
            out.add("configuration", f"key {shown(key)} must be text", line_of(document, key))
    limits = _parse_limits(document.get("limits"), out)
    groups_raw = _as_mapping(document.get("security_groups"), "security_groups", "security_groups", out, line_of(document, "security_groups"))
    pls_raw = _as_mapping(document.get("prefix_lists"), "prefix_lists", "prefix_lists", out, line_of(document, "prefix_lists"))
    enis_raw = _as_mapping(document.get("interfaces"), "interfaces", "interfaces", out, line_of(document, "interfaces"))
    ports_raw = _as_mapping(document.get("port_lists"), "port_lists", "port_lists", out, line_of(document, "port_lists"))
    for kind, raws in (("security group", groups_raw), ("prefix list", pls_raw), ("port list", ports_raw),
                       ("interface", enis_raw)):
        for key in raws:
            problem = id_problem(kind, key)
            if problem:
                out.add(shown(key)[1:-1] if isinstance(key, str) else shown(key), problem, line_of(raws, key))
    known = {"groups": {str(k) for k in groups_raw}, "prefix_lists": {str(k) for k in pls_raw},
             "port_lists": {str(k) for k in ports_raw}}
    prefix_lists = {}
    for pid, raw in pls_raw.items():
        pl = _parse_prefix_list(str(pid), raw, line_of(pls_raw, pid), out)
        if pl is not None:
            prefix_lists[pl.id] = pl
    port_lists = {str(pid): _parse_port_list(str(pid), raw, line_of(ports_raw, pid), out)
                  for pid, raw in ports_raw.items()}
    groups = {}
    memo = _new_rule_memo(known)
    for order, (gid, raw) in enumerate(groups_raw.items()):
        group = _parse_group(str(gid), raw, order, line_of(groups_raw, gid), known, out, memo)
        if group is not None:
            groups[group.id] = group
    interfaces = {}
    for eid, raw in enis_raw.items():
        eni = _parse_interface(str(eid), raw, line_of(enis_raw, eid), out)
        if eni is not None:
            interfaces[eni.id] = eni
    return Config(groups, prefix_lists, interfaces, limits, source=source, port_lists=port_lists), out.problems


def load_config(path_or_mapping: str | os.PathLike | Mapping) -> Config:
    """Load and validate a configuration; raise `ConfigError` listing every problem."""
    from .validate import validate_config

    with paused_gc():  # the model's objects hold no cycles either
        if isinstance(path_or_mapping, Mapping):
            document, source = path_or_mapping, ""
        else:
            source = str(path_or_mapping)
            document = read_document(path_or_mapping)
        config, problems = parse_config(document, source)
        problems += validate_config(config)
    if problems:
        raise ConfigError(problems)
    return config
