"""What training adapters over a k-bit (bitsandbytes-quantized) LLM needs, QLoRA's recipe.

The vision tower, projector and lm_head stay unquantized (harness.model skips them), and ZeRO-3
is refused (it breaks with 4-bit weights). Parameter dtypes follow LLaVA's QLoRA recipe: peft's
preparation upcasts every unquantized parameter to fp32, then the tower, projector, adapters,
embeddings and lm_head go back to the load dtype and only the norms stay fp32
(`quantization.norms_fp32 = false`: those too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.errors import UserError

if TYPE_CHECKING:
    from harness.specs import TrainSpec


def check_bitsandbytes() -> None:
    """Fail before loading anything when bitsandbytes cannot quantize on this machine."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        import bitsandbytes.functional as bnb_functional
    except Exception as exc:  # noqa: BLE001 - any import failure means no support
        raise UserError(
            f"QLoRA needs bitsandbytes with 4-bit support on this machine ({device}): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    try:
        bnb_functional.quantize_4bit(torch.ones(64, 64, device=device), quant_type="nf4")
    except Exception as exc:  # noqa: BLE001
        raise UserError(
            f"QLoRA needs 4-bit quantization, which bitsandbytes cannot do on {device} here: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def refuse_zero3(method: str, train: TrainSpec) -> None:
    """A quantized base trains under ZeRO-2 at most: ZeRO-3 cannot partition 4-bit weights."""
    if train.zero_stage == 3:
        raise UserError(f"{method}: ZeRO-3 does not work with 4-bit weights; use zero_stage 2")


def floating_dtype(model: Any) -> Any:
    """The dtype the model was loaded in (its 4-bit weights are integer storage)."""
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


def llava_qlora_dtypes(model: Any, dtype: Any, *, norms_fp32: bool = True) -> None:
    """LLaVA's QLoRA dtypes after peft's fp32 upcast: tower, projector, LoRA layers, embeddings
    and lm_head in `dtype`, norms in fp32. Left all in fp32, a bf16 run differs from the
    recipe it reproduces and holds more memory (1.4 GB more on a 1.65B LLaVA, H100)."""
    import torch
    from peft.tuners.lora import LoraLayer

    if dtype == torch.float32:
        return
    for name, module in model.named_modules():  # parents come before their children
        leaf = name.rsplit(".", 1)[-1]
        if "norm" in leaf:
            module.to(torch.float32 if norms_fp32 else dtype)
        elif leaf in ("vision_tower", "multi_modal_projector", "lm_head", "embed_tokens"):
            module.to(dtype)
        elif isinstance(module, LoraLayer):
            module.to(dtype)
