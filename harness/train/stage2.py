"""Stage 2 trained in this process: the only process, or one rank of a launched world.

`harness.train.stages.run_stage2` calls `train_stage2` when one process trains, and every rank
that `harness.train.launch` starts calls it inside the launched world; neither needs the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.results import TrainRecord
from harness.specs import CellSpec
from harness.train.measure import measured, stage_record
from harness.train.packing import pack_mode
from harness.train.params import count_params, trainable_parts
from harness.train.settings import cuda_devices, inside_launcher
from harness.train.tuning import apply_attention

CPU_WORLD_TIMEOUT_S = 300  # a collective waits this long for a peer before failing


def _deepspeed_for(cell: CellSpec, backend: Any, gpus: int) -> dict | None:
    """DeepSpeed under a launcher, or in one process when HARNESS_DEEPSPEED=1 asks for it."""
    from harness.train.deepspeed_config import validate_deepspeed_config

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if not (inside_launcher() or os.environ.get("HARNESS_DEEPSPEED") == "1"):
        return None
    devices = world if (gpus or inside_launcher()) else 0  # CPU ranks count as devices
    config = backend.deepspeed_config(cell.stage2, cell.hardware, devices)
    validate_deepspeed_config(config, world)
    return config


def plain_gloo() -> None:
    """DeepSpeed on CPU without its shared-memory all-reduce kernel, which its CPU accelerator
    would JIT-compile at init (85 s on a 2-core machine, once per machine): gloo does without."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def join_cpu_world() -> None:
    """Join the launched CPU ranks over plain gloo, as DeepSpeed's world.

    accelerate finds no distributed backend for DeepSpeed on a machine without a device and
    would make each rank a world of one (the batch sizes then disagree with the config); a
    PartialState set up first with gloo holds the real world, and the Trainer uses it
    (`use_configured_state`).
    """
    from datetime import timedelta

    from accelerate import PartialState

    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    PartialState(backend="gloo", timeout=timedelta(seconds=CPU_WORLD_TIMEOUT_S))


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train_stage2(
    cell: CellSpec, backend: Any, stage1_dir: Path, out_dir: Path, log: Callable[[str], None]
) -> TrainRecord:
    """Instruction tuning with `backend` in this process (DeepSpeed where a launcher started
    it); rank 0 saves through the backend."""
    from transformers import set_seed

    from harness.data.mix import build_mix
    from harness.model.collate import LlavaCollator
    from harness.train.loop import StageRun, consolidate, finish, run_stage

    train = cell.stage2
    gpus = int(os.environ.get("WORLD_SIZE", "1")) if cuda_devices() else 0
    deepspeed = _deepspeed_for(cell, backend, gpus)
    if deepspeed is not None and not gpus:
        plain_gloo()
        if inside_launcher():
            join_cpu_world()
    set_seed(train.seed)
    bundle = backend.load_model(cell.model, train, stage1_dir)
    set_seed(train.seed)
    bundle = backend.prepare(bundle, train)
    samples = build_mix(cell.mix, 2)
    trainable, total = count_params(bundle.model)
    log(
        f"stage 2: {backend.name} on {cell.model.size.name}, {trainable:,} of {total:,} "
        f"parameters train ({', '.join(sorted(trainable_parts(bundle.model)))})"
    )
    apply_attention(bundle.model, train, gpus, log)
    outcome = run_stage(
        StageRun(
            model=bundle.model,
            samples=samples,
            collator=LlavaCollator(
                bundle, "vicuna_v1", train.max_length, packing=pack_mode(bundle.model, train, log)
            ),
            train=train,
            out_dir=out_dir,
            log=log,
            gpus=gpus,
            deepspeed=deepspeed,
            group_by_modality=True,
        )
    )
    consolidate(outcome)
    figures = measured(bundle, outcome)
    if _is_main():
        backend.save(bundle, out_dir)
    finish(outcome, out_dir)
    return stage_record("stage2", backend.name, outcome, figures, cell, gpus)
