"""Public helpers for PEFT-based training methods: the pieces the built-in LoRA and QLoRA use.

A LoRA-style backend is a handful of calls on top of these: `load_base` (the LLaVA with stage 1's
projector, quantized if the method quantizes), `apply_lora` (the LLM's linear layers adapted,
the projector trained in full as a PEFT modules_to_save module, everything else frozen; peft
options such as `use_dora=True` pass through), `save_adapter` (adapter/, the model spec and the
harness_adapter.json manifest that `harness merge` and `harness eval --model` read) and
`load_adapter`. The reference is docs/writing-a-backend.md, "PEFT methods".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.train.adapters import (
    ADAPTER_DIR,
    MANIFEST_FILE,
    adapter_quantization,
    load_adapter,
    merge_adapter,
    read_manifest,
    save_adapter,
    write_manifest,
)

if TYPE_CHECKING:
    from harness.specs import ModelSpec, QuantSpec, TrainSpec

__all__ = [
    "ADAPTER_DIR",
    "MANIFEST_FILE",
    "MODULES_TO_SAVE",
    "adapter_quantization",
    "apply_lora",
    "load_adapter",
    "load_base",
    "lora_config",
    "lora_rank_alpha",
    "lora_target_leaves",
    "lora_target_modules",
    "merge_adapter",
    "read_manifest",
    "save_adapter",
    "write_manifest",
]

# Trained in full beside the adapters, and saved with them: the stage-1 projector.
MODULES_TO_SAVE = ("multi_modal_projector",)


def lora_target_leaves(model: Any) -> list[str]:
    """Leaf names of the LLM's linear layers (q_proj, ..., down_proj for LLaMA-style LLMs, any
    size), found on the model itself: lm_head, the tower and the projector are left out."""
    from harness.train.params import llm_linear_names

    return sorted({name.rsplit(".", 1)[-1] for name in llm_linear_names(model)})


def lora_target_modules(model: Any) -> str:
    """The `target_modules` regex peft matches: every linear layer inside the LLM."""
    leaves = lora_target_leaves(model)
    if not leaves:
        raise UserError("the model's LLM has no linear layers to adapt")
    return rf".*language_model\..*\.({'|'.join(leaves)})$"


def lora_rank_alpha(train: TrainSpec) -> tuple[int, float]:
    """The cell's rank and alpha, checked; alpha defaults to 2 x rank (the study's finding)."""
    if train.lora_rank is None or train.lora_rank < 1:
        raise UserError(f"{train.method}: lora_rank must be an integer >= 1, got {train.lora_rank}")
    alpha = train.lora_alpha if train.lora_alpha is not None else 2 * train.lora_rank
    if alpha <= 0:
        raise UserError(f"{train.method}: lora_alpha must be > 0, got {alpha}")
    return train.lora_rank, alpha


def lora_config(model: Any, train: TrainSpec, **options: Any) -> Any:
    """A peft LoraConfig from the cell's TrainSpec; `options` go to LoraConfig as they are
    (`use_dora=True`, `init_lora_weights="pissa"`, ...) and may override any field."""
    from peft import LoraConfig

    rank, alpha = lora_rank_alpha(train)
    fields: dict[str, Any] = {
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": train.lora_dropout,
        "bias": "none",
        "target_modules": None,
        "modules_to_save": list(MODULES_TO_SAVE),
    }
    fields.update(options)
    if fields["target_modules"] is None:
        try:
            fields["target_modules"] = lora_target_modules(model)
        except UserError as exc:
            raise UserError(f"{train.method}: {exc}") from None
    return LoraConfig(**fields)


def apply_lora(bundle: Any, train: TrainSpec, **options: Any) -> Any:
    """Freeze the model, then wrap it with peft: only the adapters and the projector train."""
    from peft import get_peft_model

    from harness.train.params import set_trainable

    config = lora_config(bundle.model, train, **options)
    set_trainable(bundle.model, lambda name: False)
    bundle.model = get_peft_model(bundle.model, config)
    return bundle


def load_base(
    model: ModelSpec, stage1_dir: Path | None, quantization: QuantSpec | None = None
) -> Any:
    """The LlavaBundle to train: built for the cell's size, stage 1's projector loaded (checked
    first), the LLM quantized when `quantization` is given (QLoRA-style methods)."""
    from harness.model import build_llava
    from harness.train.stages import stage1_projector

    projector = stage1_projector(stage1_dir) if stage1_dir is not None else None
    return build_llava(model, quantization=quantization, projector_path=projector)
