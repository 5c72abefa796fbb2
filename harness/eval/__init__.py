"""Evaluation: the generation engine, log-likelihood scoring, and model loading.

Names load lazily so that importing the package (and the CLI) does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run_requests": "harness.eval.engine",
    "generate": "harness.eval.engine",
    "ImageFeatures": "harness.eval.engine",
    "score_logliks": "harness.eval.loglik",
    "load_model": "harness.eval.loading",
    "load_base_llm": "harness.eval.loading",
    "EvalBundle": "harness.eval.loading",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness.eval' has no attribute {name!r}")
