"""A cache of compiled configurations, so repeated commands on a large configuration start at once.

The key is the configuration file's bytes plus a fingerprint of flowsim's own code, so an edited file
or an upgraded flowsim never sees a stale entry. The cache lives in $FLOWSIM_CACHE_DIR (default
~/.cache/flowsim); FLOWSIM_NO_CACHE=1 turns it off.

An entry holds only plain arrays and JSON (a numpy .npz read with pickling refused), so a file planted
in the directory can at worst be a wrong entry, never code that runs; an entry that does not describe
itself as the one asked for, or whose arrays do not have the layout it records, is rebuilt. The
configuration's objects are not cached: explanations load the file again when they need them. The
directory keeps the MAX_ENTRIES most recently used entries within MAX_BYTES.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__

_PACKAGE = Path(__file__).resolve().parent
FORMAT = 2  # of an entry; 1 was pickled
SUFFIX = ".tables.npz"
MAX_ENTRIES = 16
MAX_BYTES = 1 << 30


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


class _Unusable(Exception):
    """An entry that is not the one asked for, or not whole: rebuild it."""


def _flatten(value: Any, name: str, arrays: dict[str, np.ndarray]) -> Any:
    """The JSON layout of a value made of arrays, tuples and plain scalars; arrays go to `arrays`."""
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"{name}: object arrays are not cached")
        arrays[name] = value
        return {"array": name, "dtype": _dtype_layout(value.dtype), "shape": list(value.shape)}
    if isinstance(value, (tuple, list)):
        return {"tuple": [_flatten(v, f"{name}.{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"{name}: {type(value).__name__} is not cached")


def _dtype_layout(dtype: np.dtype) -> Any:
    """A dtype as JSON that gives it back exactly: records by their fields' names, formats and offsets and
    their size (`descr` turns an aligned record's padding into fields of its own, a different dtype)."""
    if not dtype.names:
        return dtype.str
    fields = [dtype.fields[name] for name in dtype.names]
    if any(f[0].names or f[0].subdtype for f in fields):
        raise TypeError("nested records are not cached")
    return {"names": list(dtype.names), "formats": [f[0].str for f in fields], "offsets": [f[1] for f in fields],
            "itemsize": dtype.itemsize, "aligned": dtype.isalignedstruct}


def _dtype_of(layout: Any) -> np.dtype:
    if isinstance(layout, dict):
        spec = {k: layout[k] for k in ("names", "formats", "offsets", "itemsize")}
        return np.dtype(spec, align=bool(layout.get("aligned")))
    if isinstance(layout, list):
        return np.dtype([tuple(f) for f in layout])
    return np.dtype(layout)


def _unflatten(layout: Any, arrays: Any) -> Any:
    if not isinstance(layout, dict) or len(layout) not in (1, 3):
        raise _Unusable("layout")
    if "array" in layout:
        array = arrays[layout["array"]]
        want = _dtype_of(layout["dtype"])
        if array.dtype != want or list(array.shape) != layout["shape"]:
            raise _Unusable(f"{layout['array']}: {array.dtype}{array.shape} where the entry says {want}{layout['shape']}")
        return array
    if "tuple" in layout:
        return tuple(_unflatten(item, arrays) for item in layout["tuple"])
    if "value" in layout:
        return layout["value"]
    raise _Unusable("layout")


def _write(folder: Path, entry: Path, key: str, tables: Any) -> None:
    arrays: dict[str, np.ndarray] = {}
    try:
        layout = {f.name: _flatten(getattr(tables, f.name), f.name, arrays) for f in dataclasses.fields(tables)}
    except TypeError:
        return  # something that only pickling could keep: not cached
    meta = json.dumps({"format": FORMAT, "key": key, "layout": layout}).encode()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as tmp:
            np.savez(tmp, __meta__=np.frombuffer(meta, np.uint8), **arrays)
        os.replace(tmp.name, entry)
        _prune(folder, keep=entry)
    except OSError:
        pass  # a cache that cannot be written only costs time


def _read(entry: Path, key: str, kind: type) -> Any:
    try:
        with np.load(entry, allow_pickle=False) as npz:
            meta = json.loads(bytes(npz["__meta__"]).decode())
            if meta.get("format") != FORMAT or meta.get("key") != key:
                raise _Unusable("not this entry")
            names = {f.name for f in dataclasses.fields(kind)}
            if set(meta["layout"]) != names:
                raise _Unusable("fields")
            values = {name: _unflatten(meta["layout"][name], npz) for name in names}
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
        raise _Unusable(str(exc)) from None
    os.utime(entry)  # most recently used: kept longest
    return kind(**values)


def _prune(folder: Path, keep: Path) -> None:
    """Keep the most recently used entries within MAX_ENTRIES and MAX_BYTES; drop stale temporary files."""
    entries = []
    for path in folder.iterdir():
        try:
            st = path.stat()
        except OSError:
            continue
        if path.name.endswith(".tmp") and path != keep:
            if st.st_mtime < os.path.getmtime(keep) - 3600:  # an abandoned write of an hour ago
                path.unlink(missing_ok=True)
        elif path.name.endswith(SUFFIX) or path.name.endswith(".pickle"):
            entries.append((path != keep, -st.st_mtime, st.st_size, path))
    total = 0
    for count, (_, _, size, path) in enumerate(sorted(entries)):
        total += size
        if path.name.endswith(".pickle") or (path != keep and (count >= MAX_ENTRIES or total > MAX_BYTES)):
            path.unlink(missing_ok=True)


def load_engine(path: str | os.PathLike):
    """The compiled engine of a configuration file, from the cache when its entry is current (the
    configuration itself is loaded again only when something asks for it, such as an explanation)."""
    from ..config.loader import load_config
    from .compiler import CompiledTables, compile_tables
    from .engine import Engine

    folder = cache_dir()
    try:
        key = hashlib.sha256(Path(path).read_bytes() + _code_fingerprint().encode()).hexdigest()
    except OSError:
        folder = None  # load_config names the problem
    if folder is None:
        config = load_config(path)
        return Engine(config, compile_tables(config))
    entry = folder / f"{key}{SUFFIX}"
    if entry.exists():
        try:
            return Engine(lambda: load_config(path), _read(entry, key, CompiledTables))
        except _Unusable:
            pass  # rebuilt below
    config = load_config(path)
    tables = compile_tables(config)
    _write(folder, entry, key, tables)
    return Engine(config, tables)
