"""The two training steps the core runs: stage 1 (projector alignment) and stage 2 (a backend).

Stage 1 trains only the projector on captions with the `plain` template and saves only the
projector. Stage 2 loads that projector, lets the backend decide what trains (full, LoRA,
QLoRA), trains on instructions with the `vicuna_v1` template, and saves through the backend.
Both resume from the last checkpoint under out_dir/checkpoints when called again after a crash.
Stage 2 trains in this process (`harness.train.stage2`) or, on several devices, in the ranks that
`harness.train.launch` starts, each of which runs that same module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.results import TrainRecord
from harness.specs import CellSpec
from harness.train.launch import run_launched
from harness.train.measure import measured, stage_record
from harness.train.packing import pack_mode
from harness.train.params import set_trainable
from harness.train.settings import (
    adopt_slurm_ranks,
    check_train,
    cuda_devices,
    inside_launcher,
    planned_world,
    slurm_rank_line,
)
from harness.train.stage2 import train_stage2
from harness.train.tuning import apply_attention

STAGE1_FILE = "projector.safetensors"
Log = Callable[[str], None]


def run_stage1(cell: CellSpec, out_dir: Path, log: Log) -> TrainRecord:
    """Align the projector on captions; save only the projector to out_dir/projector.safetensors."""
    from transformers import set_seed

    from harness.data.mix import build_mix
    from harness.model import build_llava, save_projector
    from harness.model.collate import LlavaCollator
    from harness.train.loop import StageRun, finish, run_stage

    out_dir = Path(out_dir)
    train = cell.stage1
    check_train(train)
    gpus = min(cuda_devices(), 1)
    set_seed(train.seed)
    bundle = build_llava(cell.model)
    set_trainable(bundle.model, lambda name: "multi_modal_projector" in name)
    samples = build_mix(cell.mix, 1)
    log(
        f"stage 1: {cell.model.size.name} projector {cell.model.projector}, {len(samples)} captions"
    )
    apply_attention(bundle.model, train, gpus, log)
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
    figures = measured(bundle, outcome)
    save_projector(bundle.model, out_dir / STAGE1_FILE)
    finish(outcome, out_dir)
    return stage_record("stage1", train.method, outcome, figures, cell, gpus)


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
    ranks_from_slurm = adopt_slurm_ranks()
    if ranks_from_slurm:
        log(slurm_rank_line())
    gpus_per_node, nodes = planned_world(cell.hardware)
    if cell.hardware.nodes > nodes and gpus_per_node and not ranks_from_slurm:
        log(
            f"{cell.hardware.name}: the cell's hardware has {cell.hardware.nodes} nodes but "
            f"HARNESS_HOSTFILE names none, so stage 2 trains on this machine's "
            f"{gpus_per_node} device(s)"
        )
    if gpus_per_node * nodes > 1 and not inside_launcher():
        return run_launched(cell, backend.name, Path(stage1_dir), out_dir, log)
    return train_stage2(cell, backend, Path(stage1_dir), out_dir, log)
