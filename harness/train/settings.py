"""Where and how a stage trains: devices, precision, batch geometry, warm-up.

Kept free of torch-heavy imports at module level so that planning code (DeepSpeed configs,
launch commands) can use it without loading a model.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Literal

from harness.errors import UserError
from harness.specs import HardwareSpec, TrainSpec

Precision = Literal["bf16", "fp16", "fp32"]


def cuda_devices() -> int:
    """CUDA devices visible to this process (0 on a CPU machine)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_precision(train: TrainSpec, gpus: int) -> Precision:
    """`auto` is bf16 on GPUs that have it (all the study's), fp32 on CPU."""
    if train.precision != "auto":
        return train.precision
    if gpus <= 0:
        return "fp32"
    if cuda_devices() == 0:  # planning for a GPU cluster from a machine without one
        return "bf16"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


@dataclass(frozen=True)
class BatchPlan:
    """How a global batch splits: world x micro x accumulation == global."""

    world: int
    micro: int
    accumulation: int

    @property
    def global_batch(self) -> int:
        return self.world * self.micro * self.accumulation


def batch_plan(train: TrainSpec, world: int) -> BatchPlan:
    """The largest micro batch <= train.micro_batch that divides the per-device share."""
    world = max(1, world)
    if train.global_batch % world:
        raise UserError(
            f"global batch {train.global_batch} does not split over {world} devices; "
            f"choose a multiple of {world}"
        )
    per_device = train.global_batch // world
    micro = max(d for d in range(1, min(train.micro_batch, per_device) + 1) if per_device % d == 0)
    return BatchPlan(world=world, micro=micro, accumulation=per_device // micro)


def planned_steps(train: TrainSpec, n_samples: int, plan: BatchPlan) -> int:
    """Optimizer steps: epochs over the data, capped by max_steps (tiny runs)."""
    per_epoch = max(1, n_samples // plan.global_batch)
    steps = max(1, math.ceil(per_epoch * train.epochs))
    return min(steps, train.max_steps) if train.max_steps else steps


def warmup_steps(train: TrainSpec, steps: int) -> int:
    """Linear warm-up over warmup_ratio of the steps, rounded up (as the HF Trainer does)."""
    return math.ceil(steps * train.warmup_ratio)


def planned_world(hardware: HardwareSpec) -> tuple[int, int]:
    """(gpus per node used, nodes) for this machine: the hardware's shape, capped by what is here.

    (0, 1) on a machine without CUDA: the CPU counts as one device. Other nodes are used only
    when HARNESS_HOSTFILE names them; without it, training runs on this machine's GPUs.
    """
    here = cuda_devices()
    if here == 0:
        return 0, 1
    nodes = max(1, hardware.nodes) if os.environ.get("HARNESS_HOSTFILE") else 1
    return min(here, hardware.gpus_per_node), nodes


def inside_launcher() -> bool:
    """True in a process started by `deepspeed` / `accelerate launch` / torchrun."""
    return "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def check_train(train: TrainSpec) -> None:
    """Refuse hyperparameters no stage can train with (specs built without validation too)."""
    problems = []
    if not train.lr > 0:
        problems.append(f"lr must be > 0, got {train.lr}")
    if train.global_batch < 1 or train.micro_batch < 1:
        problems.append(f"batch sizes must be >= 1, got {train.global_batch}/{train.micro_batch}")
    if not train.epochs > 0:
        problems.append(f"epochs must be > 0, got {train.epochs}")
    if train.max_steps is not None and train.max_steps < 1:
        problems.append(f"max_steps must be >= 1, got {train.max_steps}")
    if not 0 <= train.warmup_ratio < 1:
        problems.append(f"warmup_ratio must be in [0, 1), got {train.warmup_ratio}")
    if problems:
        raise UserError(f"{train.method}: " + "; ".join(problems))
