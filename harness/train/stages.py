"""The two training steps the core runs: stage 1 (projector alignment) and stage 2 (a backend).

Stage 1 trains only the projector on captions with the `plain` template and saves only the
projector. Stage 2 loads that projector, lets the backend decide what trains (full, LoRA,
QLoRA), trains on instructions with the `vicuna_v1` template, and saves through the backend.
Both resume from the last checkpoint under out_dir/checkpoints when called again after a crash.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.results import TrainRecord
from harness.specs import CellSpec
from harness.train.packing import pack_mode
from harness.train.params import count_params, params_of, set_trainable, trainable_parts
from harness.train.settings import (
    adopt_slurm_ranks,
    check_train,
    cuda_devices,
    inside_launcher,
    planned_world,
)

STAGE1_FILE = "projector.safetensors"
CPU_WORLD_TIMEOUT_S = 300  # a collective waits this long for a peer before failing
Log = Callable[[str], None]


def _seed(seed: int) -> None:
    from transformers import set_seed

    set_seed(seed)


def _flops(model: Any, meter: Any, image_tokens: int) -> float:
    from harness.train.measure import model_flops

    t = meter.totals
    return model_flops(
        params_of(model, "llm"),
        params_of(model, "tower"),
        t.tokens,
        t.images,
        image_tokens,
        llm_trains="llm" in trainable_parts(model),
    )


def _measured(bundle: Any, outcome: Any) -> tuple[int, int, float]:
    """(trainable, total, FLOPs) of the model as it trained: taken before the backend's `save`,
    which may merge or unload what trained (a merged adapter has no trainable parameters)."""
    trainable, total = count_params(bundle.model)
    return trainable, total, _flops(bundle.model, outcome.meter, bundle.image_tokens)


def _record(
    stage: str,
    method: str,
    outcome: Any,
    measured: tuple[int, int, float],
    cell: CellSpec,
    gpus: int,
    launch: list[str] | None = None,
) -> TrainRecord:
    from harness.train.measure import build_record

    trainable, total, flops = measured
    hardware = cell.hardware
    if hardware.accelerator == "cpu":  # CPU ranks share one machine: its hours are the wall's
        hardware = hardware.model_copy(update={"gpus_per_node": 1})
    return build_record(
        stage=stage,
        method=method,
        meter=outcome.meter,
        steps=outcome.steps,
        gpus=gpus,
        hardware=hardware,
        trainable=trainable,
        total=total,
        flops=flops,
        launch_command=launch,
    )


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run_stage1(cell: CellSpec, out_dir: Path, log: Log) -> TrainRecord:
    """Align the projector on captions; save only the projector to out_dir/projector.safetensors."""
    from harness.data.mix import build_mix
    from harness.model import build_llava, save_projector
    from harness.model.collate import LlavaCollator
    from harness.train.loop import StageRun, finish, run_stage

    out_dir = Path(out_dir)
    train = cell.stage1
    check_train(train)
    gpus = min(cuda_devices(), 1)
    _seed(train.seed)
    bundle = build_llava(cell.model)
    set_trainable(bundle.model, lambda name: "multi_modal_projector" in name)
    samples = build_mix(cell.mix, 1)
    log(
        f"stage 1: {cell.model.size.name} projector {cell.model.projector}, {len(samples)} captions"
    )
    packing = pack_mode(bundle.model, train, log)
    outcome = run_stage(
        StageRun(
            model=bundle.model,
            samples=samples,
            collator=LlavaCollator(bundle, "plain", train.max_length, packing=packing),
            train=train,
            out_dir=out_dir,
            log=log,
            gpus=gpus,
            group_by_modality=train.packing and packing == "off",  # padding's fallback
        )
    )
    measured = _measured(bundle, outcome)
    save_projector(bundle.model, out_dir / STAGE1_FILE)
    finish(outcome, out_dir)
    return _record("stage1", train.method, outcome, measured, cell, gpus)


def stage1_projector(stage1_dir: Path) -> Path:
    """The stage-1 projector file, checked readable before any model is built."""
    path = Path(stage1_dir) / STAGE1_FILE
    if not path.is_file():
        raise UserError(f"stage-1 output missing: {path} (run stage 1 first)")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            keys = list(fh.keys())
    except Exception as exc:  # noqa: BLE001 - any decoding failure means a corrupt file
        raise UserError(f"stage-1 output is corrupt: {path}: {exc}") from None
    if not keys:
        raise UserError(f"stage-1 output is corrupt: {path} holds no tensors")
    return path


def run_stage2(
    cell: CellSpec, backend: Any, stage1_dir: Path, out_dir: Path, log: Log
) -> TrainRecord:
    """Instruction tuning with `backend`; several devices go through the DeepSpeed launcher.

    In a task of a multi-task srun step the ranks exist already: this task trains as its rank.
    """
    out_dir = Path(out_dir)
    check_train(cell.stage2)
    stage1_projector(stage1_dir)
    adopt_slurm_ranks()
    gpus_per_node, nodes = planned_world(cell.hardware)
    if cell.hardware.nodes > nodes and gpus_per_node:
        log(
            f"{cell.hardware.name}: the cell's hardware has {cell.hardware.nodes} nodes but "
            f"HARNESS_HOSTFILE names none, so stage 2 trains on this machine's "
            f"{gpus_per_node} device(s)"
        )
    if gpus_per_node * nodes > 1 and not inside_launcher():
        from harness.train.launch import run_launched

        return run_launched(cell, backend.name, Path(stage1_dir), out_dir, log)
    return _train_stage2(cell, backend, Path(stage1_dir), out_dir, log)


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


def _train_stage2(
    cell: CellSpec, backend: Any, stage1_dir: Path, out_dir: Path, log: Log
) -> TrainRecord:
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
    _seed(train.seed)
    bundle = backend.load_model(cell.model, train, stage1_dir)
    _seed(train.seed)
    bundle = backend.prepare(bundle, train)
    samples = build_mix(cell.mix, 2)
    trainable, total = count_params(bundle.model)
    log(
        f"stage 2: {backend.name} on {cell.model.size.name}, {trainable:,} of {total:,} "
        f"parameters train ({', '.join(sorted(trainable_parts(bundle.model)))})"
    )
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
    measured = _measured(bundle, outcome)
    if _is_main():
        backend.save(bundle, out_dir)
    finish(outcome, out_dir)
    return _record("stage2", backend.name, outcome, measured, cell, gpus)
