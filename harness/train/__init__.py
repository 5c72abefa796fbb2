"""Training: stage 1 (projector alignment) and stage 2 (a backend: full, LoRA, QLoRA).

`run_stage1` and `run_stage2` are what the core calls; names load lazily so that importing
`harness.train` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "run_stage1": "harness.train.stages",
    "run_stage2": "harness.train.stages",
    "STAGE1_FILE": "harness.train.stages",
    "deepspeed_config": "harness.train.deepspeed_config",
    "validate_deepspeed_config": "harness.train.deepspeed_config",
    "launch_command": "harness.train.launch",
}

__all__ = sorted(_EXPORTS)


def _cpu_deepspeed_quietly() -> None:
    """Tell DeepSpeed it is on the CPU when it is, instead of letting it warn on every import."""
    import os

    if "DS_ACCELERATOR" not in os.environ:
        import torch

        if not torch.cuda.is_available():
            os.environ["DS_ACCELERATOR"] = "cpu"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        _cpu_deepspeed_quietly()
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness.train' has no attribute {name!r}")
