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


def load_engine(path: str | os.PathLike):
    """The compiled engine of a configuration file, from the cache when its entry is current."""
    from .config import load_config
    from .engine import Engine
    from .compiler import compile_tables

    folder = cache_dir()
    entry = None
    if folder is not None:
        try:
            key = hashlib.sha256(Path(path).read_bytes() + _code_fingerprint().encode()).hexdigest()
            entry = folder / f"{key}.pickle"
            with open(entry, "rb") as fh:
                config, tables = pickle.load(fh)
            return Engine(config, tables)
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
            pass  # not cached yet (or unreadable): build it below
    config = load_config(path)
    tables = compile_tables(config)
    if entry is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as tmp:
                pickle.dump((config, tables), tmp, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp.name, entry)
        except OSError:
            pass  # a cache that cannot be written only costs time
    return Engine(config, tables)
