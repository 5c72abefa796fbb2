"""LoRA: adapters on the LLM's linear layers, the projector trained fully, the rest frozen.

The projector is a PEFT `modules_to_save` module, so the adapter folder holds the adapters and
the non-LoRA trainables together (and the Trainer's checkpoints carry both for a resume).
Alpha defaults to 2 x rank, the study's finding. Given a quantization spec, the same backend is
QLoRA (qlora.py): the adapters train over the LLM quantized, with the recipe in kbit.py.
Everything PEFT-specific comes from the public harness.train.peft_helpers, which a plugin
method (DoRA, ...) uses the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.backends._shared import Stage2Backend
from harness_plugins.backends.kbit import (
    check_bitsandbytes,
    floating_dtype,
    llava_qlora_dtypes,
    refuse_zero3,
)

from harness.hookspecs import hookimpl

if TYPE_CHECKING:
    from harness.specs import HardwareSpec, ModelSpec, QuantSpec, TrainSpec


def lora_config(model: Any, train: TrainSpec) -> Any:
    """The built-in LoRA's peft config (harness.train.peft_helpers.lora_config, no options)."""
    from harness.train.peft_helpers import lora_config as build

    return build(model, train)


class LoRA(Stage2Backend):
    """LoRA over the LLM as loaded, or over the LLM quantized when `quantized` is given: the
    spec used unless the cell's `quantization` table gives its own. The spec may come as its
    fields (a dict, `{}` for QuantSpec's defaults), checked when first used, so that
    registering the backend does not import the specs (pydantic) at every start-up."""

    def __init__(
        self,
        *,
        name: str = "lora",
        version: str = "1",
        quantized: QuantSpec | dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self._quantized = quantized
        self.zero_stage = 3 if quantized is None else 2  # ZeRO-3 breaks with 4-bit weights

    @property
    def quantized(self) -> QuantSpec | None:
        if isinstance(self._quantized, dict):
            from harness.specs import QuantSpec

            self._quantized = QuantSpec.model_validate(self._quantized)
        return self._quantized

    def quantization(self, train: TrainSpec) -> QuantSpec | None:
        """How the LLM loads for this cell: None (plain LoRA ignores a `quantization` table)."""
        if self.quantized is None:
            return None
        return train.quantization or self.quantized

    def load_model(self, model: ModelSpec, train: TrainSpec, stage1_dir: Path | None) -> Any:
        quantization = self.quantization(train)
        if quantization is not None:
            refuse_zero3(self.name, train)
            check_bitsandbytes()
        bundle = super().load_model(model, train, stage1_dir)
        bundle.quantization = quantization
        return bundle

    def prepare(self, bundle: Any, train: TrainSpec) -> Any:
        from peft import prepare_model_for_kbit_training

        from harness.train.peft_helpers import apply_lora

        quantization = self.quantization(train)
        if quantization is None:
            return apply_lora(bundle, train)
        dtype = floating_dtype(bundle.model)
        # Checkpointing, where a stage has it, is the Trainer's (non-reentrant, so inputs need
        # no gradient of their own): harness.train.tuning decides it once the model is placed.
        bundle.model = prepare_model_for_kbit_training(
            bundle.model, use_gradient_checkpointing=False
        )
        bundle = apply_lora(bundle, train)
        llava_qlora_dtypes(bundle.model, dtype, norms_fp32=quantization.norms_fp32)
        return bundle

    def deepspeed_config(self, train: TrainSpec, hardware: HardwareSpec, gpus: int) -> dict:
        if self.quantization(train) is not None:
            refuse_zero3(self.name, train)
        return super().deepspeed_config(train, hardware, gpus)

    def save(self, bundle: Any, out_dir: Path) -> None:
        """Adapters + projector (adapter/), the model spec, and how the base was loaded."""
        from harness.train.peft_helpers import save_adapter

        save_adapter(bundle, out_dir, self.name, getattr(bundle, "quantization", None))

    def load(self, model: ModelSpec, out_dir: Path) -> Any:
        """Plain LoRA comes back merged (fast evaluation); QLoRA keeps its 4-bit base, rebuilt
        fresh (on CPU a 4-bit model that ran a no-grad forward cannot train again)."""
        from harness.train.peft_helpers import adapter_quantization, load_adapter

        return load_adapter(model, out_dir, merge=adapter_quantization(out_dir) is None)


@hookimpl
def register_backends(register):
    register(LoRA())
