"""The package's rooms and their import rule: data flows one way, load -> validate -> compile ->
evaluate -> report, and nothing imports another module's private name.

Every import of a flowsim module is read from the source (module-level and inside functions), so a
lazy import cannot hide a reach back up the chain.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "flowsim"

# room -> the rooms it may import (besides itself and flowsim.errors)
ALLOWED: dict[str, set[str]] = {
    "kernels": set(),
    "model": {"kernels.codes"},
    "config": {"model", "kernels.codes"},
    "importers": {"model", "config"},
    "io": {"model", "kernels"},
    "engine": {"model", "config", "kernels", "io"},
    "batch": {"model", "config", "kernels", "engine", "io"},
    "analysis": {"model", "config", "kernels", "engine"},
    "tools": {"model", "config", "kernels", "engine", "io"},
    "report": {"model", "kernels", "engine", "io", "batch", "analysis", "tools"},
    "testing": {"model", "config", "kernels", "engine", "io", "batch", "analysis", "tools"},
}
TOP = {"cli", "__init__", "__main__"}  # the command line and the lazy public API reach every room


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def dotted(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names) of every import of a flowsim module in the file."""
    package = dotted(path) if path.name == "__init__.py" else dotted(path).rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "flowsim" or module.startswith("flowsim."):
                names = [a.name for a in node.names]
                # `from flowsim.room import module` names a module: the room is what matters
                subs = [f"{module}.{n}" for n in names if (PACKAGE.parent / Path(*f"{module}.{n}".split("."))).with_suffix(".py").exists()
                        or (PACKAGE.parent / Path(*f"{module}.{n}".split("."))).is_dir()]
                out += [(node.lineno, s, []) for s in subs]
                rest = [n for n in names if f"{module}.{n}" not in subs]
                if rest:
                    out.append((node.lineno, module, rest))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("flowsim")]
    return out


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_lives_in_a_room():
    rooms = {room(dotted(p)) for p in modules()}
    assert rooms - TOP - {"errors"} <= set(ALLOWED), rooms - TOP - {"errors"} - set(ALLOWED)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_follow_the_room_rule(path):
    here = room(dotted(path))
    if here in TOP:
        return
    allowed = ALLOWED.get(here, set()) | {here} | ({"errors"} if here != "kernels" else set())
    for line, module, names in imports(path):
        if module == "flowsim" and names == ["__version__"]:
            continue  # the version string, which every room may quote
        target = room(module)
        fine = target in allowed or ".".join(module.split(".")[1:3]) in allowed
        assert fine, f"{path.name}:{line}: the {here} room may not import {module}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_module_imports_a_private_name(path):
    for line, module, names in imports(path):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{path.name}:{line}: imports private {private} from {module}"
