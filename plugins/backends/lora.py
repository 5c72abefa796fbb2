"""LoRA: adapters on the LLM's linear layers, the projector trained fully, the rest frozen.

The projector is a PEFT `modules_to_save` module, so the adapter folder holds the adapters and
the non-LoRA trainables together (and the Trainer's checkpoints carry both for a resume).
Alpha defaults to 2 x rank, the study's finding. QLoRA (qlora.py) is this backend plus a
quantization spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.backends._shared import Stage2Backend

from harness.errors import UserError
from harness.hookspecs import hookimpl

if TYPE_CHECKING:
    from harness.specs import ModelSpec, TrainSpec


def lora_config(model: Any, train: TrainSpec) -> Any:
    from peft import LoraConfig

    from harness.train.params import llm_linear_names

    if train.lora_rank is None or train.lora_rank < 1:
        raise UserError(f"{train.method}: lora_rank must be an integer >= 1, got {train.lora_rank}")
    alpha = train.lora_alpha if train.lora_alpha is not None else 2 * train.lora_rank
    if alpha <= 0:
        raise UserError(f"{train.method}: lora_alpha must be > 0, got {alpha}")
    leaves = sorted({name.rsplit(".", 1)[-1] for name in llm_linear_names(model)})
    if not leaves:
        raise UserError(f"{train.method}: the model's LLM has no linear layers to adapt")
    return LoraConfig(
        r=train.lora_rank,
        lora_alpha=alpha,
        lora_dropout=train.lora_dropout,
        bias="none",
        target_modules=rf".*language_model\..*\.({'|'.join(leaves)})$",
        modules_to_save=["multi_modal_projector"],
    )


class LoRA(Stage2Backend):
    name = "lora"
    version = "1"
    zero_stage = 3

    def prepare(self, bundle: Any, train: TrainSpec) -> Any:
        from peft import get_peft_model

        from harness.train.params import set_trainable

        config = lora_config(bundle.model, train)
        set_trainable(bundle.model, lambda name: False)
        bundle.model = get_peft_model(bundle.model, config)
        return bundle

    def save(self, bundle: Any, out_dir: Path) -> None:
        """Adapters + projector (adapter/), the model spec, and how the base was loaded."""
        from harness.train.adapters import save_adapter

        save_adapter(bundle, out_dir, self.name, getattr(bundle, "quantization", None))

    def load(self, model: ModelSpec, out_dir: Path) -> Any:
        """Plain LoRA comes back merged (fast evaluation); QLoRA keeps its 4-bit base, rebuilt
        fresh (on CPU a 4-bit model that ran a no-grad forward cannot train again)."""
        from harness.train.adapters import adapter_quantization, load_adapter

        return load_adapter(model, out_dir, merge=adapter_quantization(out_dir) is None)

    def load_model(self, model: ModelSpec, train: TrainSpec, stage1_dir: Path | None) -> Any:
        bundle = super().load_model(model, train, stage1_dir)
        bundle.quantization = self.quantization(train)
        return bundle


@hookimpl
def register_backends(register):
    register(LoRA())
