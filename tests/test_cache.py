"""The compiled-configuration cache: used when current, rebuilt when the file changes or the entry is damaged."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from flowsim.engine.cache import cache_dir, load_engine

EXAMPLE = Path(__file__).resolve().parents[1] / "traces" / "example.yaml"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FLOWSIM_NO_CACHE", raising=False)
    return tmp_path / "cache"


def verdict(engine) -> str:
    return engine.explain(src="10.0.1.10", dst="10.0.2.10", protocol="tcp", dst_port=8080).verdict.ingress_rule


def test_second_load_comes_from_the_cache(cache, tmp_path):
    config = tmp_path / "net.yaml"
    shutil.copy(EXAMPLE, config)
    first = load_engine(config)
    assert len(list(cache.glob("*.tables.npz"))) == 1 and not list(cache.glob("*.pickle"))
    second = load_engine(config)
    assert "config" not in vars(second)  # evaluating needs only the tables
    assert second.evaluate({"src_ip": ["10.0.1.10"], "dst_ip": ["10.0.2.10"], "protocol": ["tcp"], "dst_port": [8080]}
                           ).column("ingress_rule").to_pylist() == ["sg-app/from-web"]
    assert verdict(second) == verdict(first) == "sg-app/from-web"


def test_an_edited_file_is_compiled_again(cache, tmp_path):
    config = tmp_path / "net.yaml"
    shutil.copy(EXAMPLE, config)
    load_engine(config)
    config.write_text(EXAMPLE.read_text().replace("ports: 8000-8080, peer: sg-web", "ports: 9000-9090, peer: sg-web"))
    assert verdict(load_engine(config)) == "default:inbound-deny"
    assert len(list(cache.glob("*.tables.npz"))) == 2


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other entry", "wrong layout"])
def test_a_damaged_or_foreign_entry_is_rebuilt(cache, tmp_path, damage):
    load_engine(EXAMPLE)
    (entry,) = cache.glob("*.tables.npz")
    if damage == "garbage":
        entry.write_bytes(b"not an archive")
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:200])
    elif damage == "other entry":  # a valid entry of another configuration under this one's name
        other = tmp_path / "other.yaml"
        other.write_text(EXAMPLE.read_text().replace("ports: 8000-8080, peer: sg-web", "ports: 9000-9090, peer: sg-web"))
        load_engine(other)
        (foreign,) = [p for p in cache.glob("*.tables.npz") if p != entry]
        entry.write_bytes(foreign.read_bytes())
    else:
        with np.load(entry) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["rows"] = arrays["rows"][:1]
        with open(entry, "wb") as fh:
            np.savez(fh, **arrays)
    assert verdict(load_engine(EXAMPLE)) == "sg-app/from-web"


def test_a_planted_pickle_never_runs(cache, tmp_path):
    """Whatever sits in the directory under an entry's name is read as arrays or not at all."""
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("code ran",))

    load_engine(EXAMPLE)
    (entry,) = cache.glob("*.tables.npz")
    entry.write_bytes(pickle.dumps(Payload()))
    for name in (entry.name, entry.name.replace(".tables.npz", ".tables.pickle"),
                 entry.name.replace(".tables.npz", ".config.pickle")):
        (cache / name).write_bytes(pickle.dumps(Payload()))
    assert verdict(load_engine(EXAMPLE)) == "sg-app/from-web"
    assert not marker.exists()
    assert not list(cache.glob("*.pickle"))  # entries of the pickled format are removed


def test_the_cache_keeps_the_most_recently_used_entries(cache, tmp_path, monkeypatch):
    import flowsim.engine.cache

    monkeypatch.setattr(flowsim.engine.cache, "MAX_ENTRIES", 2)
    paths = []
    for port in (9001, 9002, 9003):
        path = tmp_path / f"net{port}.yaml"
        path.write_text(EXAMPLE.read_text().replace("ports: 8000-8080, peer: sg-web", f"ports: {port}, peer: sg-web"))
        paths.append(path)
    load_engine(paths[0])
    first = set(cache.glob("*.tables.npz"))
    load_engine(paths[1])
    second = set(cache.glob("*.tables.npz")) - first
    time.sleep(0.01)
    load_engine(paths[0])  # used again: now the newest
    load_engine(paths[2])
    kept = set(cache.glob("*.tables.npz"))
    assert len(kept) == 2 and first <= kept and not second & kept  # the least recently used went


def test_a_missing_configuration_is_named(cache, tmp_path):
    from flowsim.errors import ConfigError, InputError

    with pytest.raises((InputError, ConfigError), match="missing.yaml"):
        load_engine(tmp_path / "missing.yaml")


def test_cache_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("FLOWSIM_NO_CACHE", "1")
    assert cache_dir() is None


def test_aligned_records_come_back_as_they_were():
    """Aligned record arrays (padding between fields) are read back with their own dtype, so the entry is used."""
    from flowsim.engine.cache import _flatten, _unflatten
    from flowsim.kernels.sessions import SESSION

    padded = np.dtype([("a", np.uint16), ("b", np.int32), ("c", np.uint64), ("d", np.bool_)], align=True)
    for dtype in (padded, SESSION, np.dtype(np.int32)):
        arrays: dict = {}
        value = np.zeros(3, dtype)
        back = _unflatten(_flatten(value, "x", arrays), arrays)
        assert back.dtype == dtype and back is value


def test_the_kernel_reads_tables_that_start_on_a_cache_line(cache, tmp_path):
    """Compiled or read back from the cache (numpy places arrays 16 bytes into a line as often as not), the
    records the scan and the address lookup probe start on a line: a record across two lines costs a miss more."""
    config = tmp_path / "net.yaml"
    shutil.copy(EXAMPLE, config)
    for engine in (load_engine(config), load_engine(config)):
        tables, owners = engine.tables.kernel_tables, engine.tables.kernel_owners
        for array in (tables.scan_blocks, tables.scan_hits, tables.rows, owners.slots, owners.v4_pages):
            assert array.ctypes.data % 64 == 0
        assert np.array_equal(tables.scan_blocks, engine.tables.scan[0]) and np.array_equal(owners.slots, engine.tables.owners[1])
