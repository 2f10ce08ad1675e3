"""Import real cloud configurations into flowsim's native configuration (docs/formats.md (configuration)).

`import_config("alibaba-api" | "terraform" | "ros", inputs, params)` reads files
or directories (searched recursively, hidden directories such as `.terraform`
skipped) and returns the native mapping plus notes on everything skipped or
assumed. Malformed input raises `flowsim.errors.InputError` naming the file.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError, Problem
from .common import ImportResult

__all__ = ["FORMATS", "ImportResult", "import_config", "parse_params"]

#: Format name -> file suffixes picked from directories.
FORMATS: dict[str, tuple[str, ...]] = {
    "alibaba-api": (".json",),
    "terraform": (".tf", ".tf.json", ".json", ".tfvars", ".tfvars.json"),
    "ros": (".yml", ".yaml", ".json"),
}


def import_config(fmt: str, inputs: list[str | os.PathLike], params: dict[str, str] | None = None) -> ImportResult:
    """Read `inputs` in format `fmt`; `params` override Terraform variables or ROS parameters."""
    if fmt not in FORMATS:
        raise InputError(Problem(f"unknown import format {fmt!r} (expected one of: {', '.join(FORMATS)})"))
    files = collect_files(fmt, inputs)
    if fmt == "alibaba-api":
        from .alibaba_api import import_files
    elif fmt == "terraform":
        from .terraform import import_files
    else:
        from .ros import import_files
    from ..config.loader import paused_gc

    with paused_gc():  # parse trees of millions of nodes: collecting would walk them again and again
        return import_files(files, dict(params or {}))


def parse_params(items: list[str]) -> dict[str, str]:
    """`NAME=VALUE` overrides (Terraform variables, ROS parameters) as a mapping; a malformed one is an InputError."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(Problem(f"expected NAME=VALUE, not {item!r}", subject="--param"))
        params[key] = value
    return params


def collect_files(fmt: str, inputs: list[str | os.PathLike]) -> list[Path]:
    """Files named directly (whatever their suffix) and, under directories, those with the format's suffixes."""
    if not inputs:
        raise InputError(Problem(f"no input files given for {fmt}"))
    suffixes = FORMATS[fmt]
    found: dict[Path, None] = {}
    for item in inputs:
        path = Path(item)
        if path.is_file():
            found[path] = None
        elif path.is_dir():
            matches = [p for p in sorted(path.rglob("*"))
                       if p.is_file() and p.name.endswith(suffixes)
                       and not any(part.startswith(".") for part in p.relative_to(path).parts)]
            if not matches:
                raise InputError(Problem(f"no {fmt} files here (looked for {', '.join('*' + s for s in suffixes)})",
                                         source=str(path)))
            found.update(dict.fromkeys(matches))
        else:
            raise InputError(Problem("no such file or directory", source=str(path)))
    return list(found)
