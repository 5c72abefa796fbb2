"""LoRA: adapters on the LLM's linear layers, the projector trained fully, the rest frozen.

The projector is a PEFT `modules_to_save` module, so the adapter folder holds the adapters and
the non-LoRA trainables together (and the Trainer's checkpoints carry both for a resume).
Alpha defaults to 2 x rank, the study's finding. QLoRA (qlora.py) is this backend plus a
quantization spec. Everything PEFT-specific comes from the public harness.train.peft_helpers,
which a plugin method (DoRA, ...) uses the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.backends._shared import Stage2Backend

from harness.hookspecs import hookimpl

if TYPE_CHECKING:
    from harness.specs import ModelSpec, TrainSpec


def lora_config(model: Any, train: TrainSpec) -> Any:
    """The built-in LoRA's peft config (harness.train.peft_helpers.lora_config, no options)."""
    from harness.train.peft_helpers import lora_config as build

    return build(model, train)


class LoRA(Stage2Backend):
    name = "lora"
    version = "1"
    zero_stage = 3

    def prepare(self, bundle: Any, train: TrainSpec) -> Any:
        from harness.train.peft_helpers import apply_lora

        return apply_lora(bundle, train)

    def save(self, bundle: Any, out_dir: Path) -> None:
        """Adapters + projector (adapter/), the model spec, and how the base was loaded."""
        from harness.train.peft_helpers import save_adapter

        save_adapter(bundle, out_dir, self.name, getattr(bundle, "quantization", None))

    def load(self, model: ModelSpec, out_dir: Path) -> Any:
        """Plain LoRA comes back merged (fast evaluation); QLoRA keeps its 4-bit base, rebuilt
        fresh (on CPU a 4-bit model that ran a no-grad forward cannot train again)."""
        from harness.train.peft_helpers import adapter_quantization, load_adapter

        return load_adapter(model, out_dir, merge=adapter_quantization(out_dir) is None)

    def load_model(self, model: ModelSpec, train: TrainSpec, stage1_dir: Path | None) -> Any:
        bundle = super().load_model(model, train, stage1_dir)
        bundle.quantization = self.quantization(train)
        return bundle


@hookimpl
def register_backends(register):
    register(LoRA())
