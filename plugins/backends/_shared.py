"""What the stage-2 backends share: loading with the stage-1 projector, DeepSpeed configs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.specs import HardwareSpec, ModelSpec, QuantSpec, SizeSpec, TrainSpec


class Stage2Backend:
    """Base of full and LoRA (QLoRA included): each chooses what trains and how it is saved."""

    name = "stage2"
    version = "1"
    zero_stage = 3  # the study's ZeRO stage for this method

    def defaults(self, size: SizeSpec) -> dict[str, Any]:
        """The registry's [methods.*] tables hold the study's defaults; none depend on size."""
        return {}

    def quantization(self, train: TrainSpec) -> QuantSpec | None:
        return None

    def load_model(self, model: ModelSpec, train: TrainSpec, stage1_dir: Path | None) -> Any:
        from harness.train.peft_helpers import load_base

        return load_base(model, stage1_dir, self.quantization(train))

    def deepspeed_config(self, train: TrainSpec, hardware: HardwareSpec, gpus: int) -> dict:
        from harness.train.deepspeed_config import deepspeed_config

        return deepspeed_config(train, hardware, gpus, zero_stage=self.zero_stage)
