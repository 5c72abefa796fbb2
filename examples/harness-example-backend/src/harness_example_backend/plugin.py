"""DoRA (weight-decomposed low-rank adaptation, Liu et al. 2024) as a harness training method.

DoRA is LoRA with every adapted weight split into a magnitude and a direction; peft implements
it behind one flag, `use_dora=True`. Everything else comes from harness.train.peft_helpers, as
for the built-in LoRA: the same adapted layers (every linear layer of the LLM), the projector
trained in full beside the adapters, and the adapter folder with its harness_adapter.json that
`harness merge` and `harness eval --model` read. `inherits = "lora"` makes every experiment train
it with LoRA's settings (learning rate, rank, alpha, steps), so that `--matrix methods=lora,dora`
compares like with like.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.hookspecs import hookimpl
from harness.specs import HardwareSpec, ModelSpec, SizeSpec, TrainSpec
from harness.train import peft_helpers as peft


class DoRA:
    name = "dora"
    version = "1"  # bump when what it trains or saves changes: stored models are retrained
    inherits = "lora"  # LoRA's lr, rank, alpha and steps, from the registry and the experiment

    def defaults(self, size: SizeSpec) -> dict[str, Any]:
        return {}  # everything comes from LoRA's settings

    def load_model(self, model: ModelSpec, train: TrainSpec, stage1_dir: Path | None) -> Any:
        return peft.load_base(model, stage1_dir)

    def prepare(self, bundle: Any, train: TrainSpec) -> Any:
        return peft.apply_lora(bundle, train, use_dora=True)

    def deepspeed_config(self, train: TrainSpec, hardware: HardwareSpec, gpus: int) -> dict:
        from harness.train import deepspeed_config

        return deepspeed_config(train, hardware, gpus, zero_stage=3)

    def save(self, bundle: Any, out_dir: Path) -> None:
        peft.save_adapter(bundle, out_dir, self.name)

    def load(self, model: ModelSpec, out_dir: Path) -> Any:
        return peft.load_adapter(model, out_dir, merge=True)  # merged: plain, fast generation


@hookimpl
def register_backends(register) -> None:
    register(DoRA())
