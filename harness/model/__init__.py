"""LLaVA model assembly, conversation templates and collation.

Names are imported lazily so that `import harness.model.templates` (and the CLI) stay light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "LlavaBundle": "harness.model.assemble",
    "build_llava": "harness.model.assemble",
    "save_projector": "harness.model.projector",
    "load_projector": "harness.model.projector",
    "save_bundle": "harness.model.persist",
    "load_bundle": "harness.model.persist",
    "TokenizationMismatch": "harness.model.templates",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness.model' has no attribute {name!r}")
