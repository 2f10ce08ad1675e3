"""The compiled-configuration cache: used when current, rebuilt when the file changes or the entry is damaged."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flowsim.cache import cache_dir, load_engine

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
    assert len(list(cache.glob("*.tables.pickle"))) == len(list(cache.glob("*.config.pickle"))) == 1
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
    assert len(list(cache.glob("*.tables.pickle"))) == 2


@pytest.mark.parametrize("part", ["tables", "config"])
def test_a_damaged_entry_is_rebuilt(cache, part):
    load_engine(EXAMPLE)
    (entry,) = cache.glob(f"*.{part}.pickle")
    entry.write_bytes(b"not a pickle")
    assert verdict(load_engine(EXAMPLE)) == "sg-app/from-web"


def test_a_missing_configuration_is_named(cache, tmp_path):
    from flowsim.errors import InputError, ConfigError

    with pytest.raises((InputError, ConfigError), match="missing.yaml"):
        load_engine(tmp_path / "missing.yaml")


def test_cache_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("FLOWSIM_NO_CACHE", "1")
    assert cache_dir() is None
