"""DeepSpeed configs generated per cell, and validated with DeepSpeed's own config class.

ZeRO-3 for full and LoRA, ZeRO-2 for QLoRA (the study's choice: ZeRO-3 with 4-bit weights
breaks). The batch sizes are explicit numbers that multiply to the global batch, never "auto".
There is deliberately no `optimizer` or `scheduler` block: upstream's zero3_offload.json has
them and they silently replace the trainer's AdamW and warm-up/decay schedule.
"""

from __future__ import annotations

import contextlib
from typing import Any

from harness.errors import UserError
from harness.specs import HardwareSpec, TrainSpec
from harness.train.settings import batch_plan, resolve_precision

FORBIDDEN_BLOCKS = ("optimizer", "scheduler")
MAX_GRAD_NORM = 1.0  # the HF Trainer's default, which the DeepSpeed config must repeat


def zero_block(stage: int) -> dict[str, Any]:
    """Upstream's zero2.json / zero3.json settings with their "auto" values made explicit."""
    block: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": 500_000_000,
    }
    if stage >= 2:
        block["sub_group_size"] = 1_000_000_000
    if stage == 3:
        block.update(
            stage3_prefetch_bucket_size=50_000_000,
            stage3_param_persistence_threshold=100_000,
            stage3_max_live_parameters=1_000_000_000,
            stage3_max_reuse_distance=1_000_000_000,
            stage3_gather_16bit_weights_on_model_save=True,
        )
    return block


def deepspeed_config(
    train: TrainSpec, hardware: HardwareSpec, gpus: int, *, zero_stage: int
) -> dict[str, Any]:
    """The config for `gpus` data-parallel devices (0 = one CPU process; CPU ranks train in
    fp32 like one CPU process does)."""
    stage = train.zero_stage if train.zero_stage is not None else zero_stage
    plan = batch_plan(train, max(1, gpus))
    precision = resolve_precision(train, gpus if hardware.accelerator == "gpu" else 0)
    return {
        "train_batch_size": plan.global_batch,
        "train_micro_batch_size_per_gpu": plan.micro,
        "gradient_accumulation_steps": plan.accumulation,
        "gradient_clipping": MAX_GRAD_NORM,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16"},
        "zero_optimization": zero_block(stage),
        # The trainer's torch AdamW runs under ZeRO; DeepSpeed calls that "untested".
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 1_000_000,
        "wall_clock_breakdown": False,
    }


class _World:
    """Stands in for deepspeed.comm while validating: rank 0 of a world of `size`."""

    def __init__(self, size: int):
        self.size = size

    def get_rank(self) -> int:
        return 0

    def get_world_size(self, group: Any = None) -> int:
        return self.size


def validate_deepspeed_config(config: dict[str, Any], world: int) -> None:
    """Raise UserError unless DeepSpeed accepts `config` for `world` devices as it stands."""
    bad = [key for key in FORBIDDEN_BLOCKS if key in config]
    if bad:
        raise UserError(
            f"DeepSpeed config has {' and '.join(bad)} block(s): they would override the "
            "trainer's optimizer and schedule; remove them"
        )
    import deepspeed.runtime.config as ds_config

    patch = contextlib.nullcontext()
    if world > 1:
        from unittest import mock

        patch = mock.patch.object(ds_config, "dist", _World(world))
    try:
        with patch:
            ds_config.DeepSpeedConfig(dict(config))
    except Exception as exc:  # noqa: BLE001 - DeepSpeed raises assorted types for bad configs
        raise UserError(f"invalid DeepSpeed config for {world} device(s): {exc}") from None
