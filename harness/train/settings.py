"""Where and how a stage trains: devices, precision, batch geometry, warm-up.

Kept free of torch-heavy imports at module level so that planning code (DeepSpeed configs,
launch commands) can use it without loading a model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
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
    """(devices per node used, nodes) here: the hardware's shape, capped by what this machine has.

    GPU hardware on a machine without CUDA gives (0, 1): the CPU counts as one device. CPU
    hardware (`accelerator = "cpu"`) gives its gpus_per_node as CPU ranks, which the launcher
    starts over gloo. Other nodes are used only when HARNESS_HOSTFILE names them; without it,
    training runs on this machine.
    """
    if hardware.accelerator == "cpu":
        here = max(1, hardware.gpus_per_node)
    else:
        here = min(cuda_devices(), hardware.gpus_per_node)
        if here == 0:
            return 0, 1
    nodes = max(1, hardware.nodes) if os.environ.get("HARNESS_HOSTFILE") else 1
    return here, nodes


def slurm_ranks(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The torch.distributed variables of a task that `srun` started in a step of several
    tasks, derived from SLURM_*; None outside such a step or where a launcher set RANK.

    SLURM_STEP_NUM_TASKS is set by srun only (not in the batch script, whose SLURM_NTASKS
    describes the whole job). One node: the master is loopback; several: the step's first host.
    The port comes from MASTER_PORT when set, else from the job id, the same on every task.
    """
    env = os.environ if environ is None else environ
    tasks = int(env.get("SLURM_STEP_NUM_TASKS") or 1)
    if tasks < 2 or "SLURM_PROCID" not in env or "RANK" in env:
        return None
    nodes = int(env.get("SLURM_STEP_NUM_NODES") or env.get("SLURM_NNODES") or 1)
    master = "127.0.0.1" if nodes == 1 else _first_host(env)
    port = env.get("MASTER_PORT") or str(20_000 + int(env.get("SLURM_JOB_ID") or 0) % 20_000)
    return {
        "RANK": env["SLURM_PROCID"],
        "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
        "WORLD_SIZE": str(tasks),
        "MASTER_ADDR": env.get("MASTER_ADDR") or master,
        "MASTER_PORT": port,
    }


def _first_host(env: Mapping[str, str]) -> str:
    """The first host of the step's node list (`scontrol show hostnames` expands ranges)."""
    import subprocess

    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or ""
    try:
        out = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    if not out:
        raise UserError(f"cannot find the first host of the Slurm node list {nodelist!r}")
    return out[0]


def adopt_slurm_ranks() -> bool:
    """Set RANK, WORLD_SIZE, ... from SLURM_* in a task of a multi-task srun step."""
    ranks = slurm_ranks()
    if ranks is None:
        return False
    for name, value in ranks.items():
        os.environ.setdefault(name, value)
    return True


def slurm_rank_line() -> str:
    """Where this task trains, for its log: a multi-node world is found through these."""
    env = os.environ
    return (
        f"rank {env.get('RANK')} of {env.get('WORLD_SIZE')} from Slurm on node "
        f"{env.get('SLURMD_NODENAME', '?')}, master {env.get('MASTER_ADDR')}:"
        f"{env.get('MASTER_PORT')}"
    )


def inside_launcher() -> bool:
    """True in a process started by `deepspeed` / `accelerate launch` / torchrun / srun."""
    if "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return True
    return slurm_ranks() is not None


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
