"""flowsim: is this traffic allowed by our Alibaba Cloud security groups, and why?

The public API (docs/commands.md (Python API)): `load_config(path_or_mapping)` and
`compile(config)`. Both import their modules on first use so the command line
starts fast.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load_config", "compile", "ConfigError", "InputError", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .config.loader import load_config
    from .engine.engine import Engine
    from .errors import ConfigError, InputError
    from .model.network import Config


_MOVED = {"replay": "flowsim.batch.replay", "query": "flowsim.batch.query", "tracediff": "flowsim.batch.tracediff"}


def compile(config: "Config") -> "Engine":  # noqa: A001 - the public name is fixed by docs/commands.md (Python API)
    """Compile a validated configuration into an engine (imports numba on first use)."""
    from .engine.engine import compile_config

    return compile_config(config)


def __getattr__(name: str) -> Any:
    if name == "load_config":
        from .config.loader import load_config

        return load_config
    if name in ("ConfigError", "InputError"):
        from . import errors

        return getattr(errors, name)
    if name in _MOVED:  # flowsim.replay.replay and the like, from before the rooms
        import importlib

        return importlib.import_module(_MOVED[name])
    raise AttributeError(f"module 'flowsim' has no attribute {name!r}")
