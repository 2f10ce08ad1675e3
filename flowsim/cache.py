"""A cache of compiled configurations, so repeated commands on a large configuration start at once.

The key is the configuration file's bytes plus a fingerprint of flowsim's own
code, so an edited file or an upgraded flowsim never sees a stale entry. The
cache lives in $FLOWSIM_CACHE_DIR (default ~/.cache/flowsim); FLOWSIM_NO_CACHE=1
turns it off. A damaged or unreadable entry is rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

from . import __version__

_PACKAGE = Path(__file__).resolve().parent


def _code_fingerprint() -> str:
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(_PACKAGE)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def cache_dir() -> Path | None:
    """Where entries live, or None when caching is turned off."""
    if os.environ.get("FLOWSIM_NO_CACHE"):
        return None
    return Path(os.environ.get("FLOWSIM_CACHE_DIR") or Path.home() / ".cache" / "flowsim")


def _read(entry: Path):
    with open(entry, "rb") as fh:
        return pickle.load(fh)


def _write(folder: Path, entry: Path, value) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as tmp:
            pickle.dump(value, tmp, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp.name, entry)
    except OSError:
        pass  # a cache that cannot be written only costs time


_UNREADABLE = (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError)


def load_engine(path: str | os.PathLike):
    """The compiled engine of a configuration file, from the cache when its entry is current.

    An entry is two files: the kernel tables, read at once, and the configuration objects,
    read only when something asks for them (explanations; evaluating needs only the tables)."""
    from .config import load_config
    from .engine import Engine
    from .compiler import compile_tables

    folder = cache_dir()
    try:
        key = hashlib.sha256(Path(path).read_bytes() + _code_fingerprint().encode()).hexdigest()
    except OSError:
        folder = None  # load_config names the problem
    if folder is None:
        config = load_config(path)
        return Engine(config, compile_tables(config))
    tables_entry, config_entry = folder / f"{key}.tables.pickle", folder / f"{key}.config.pickle"

    def cached_config():
        try:
            return _read(config_entry)
        except _UNREADABLE:
            return load_config(path)

    try:
        return Engine(cached_config, _read(tables_entry))
    except _UNREADABLE:
        pass  # not cached yet (or unreadable): build it below
    config = load_config(path)
    tables = compile_tables(config)
    _write(folder, config_entry, config)
    _write(folder, tables_entry, tables)
    return Engine(config, tables)
