"""Which parameters of a LLaVA model belong to which part, and how many there are.

Parts are found by name, as transformers' LlavaForConditionalGeneration names them (also
inside a PEFT wrapper): `vision_tower`, `multi_modal_projector`, and the LLM (`language_model`
plus `lm_head`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

TOWER, PROJECTOR = "vision_tower", "multi_modal_projector"
LLM_PARTS = ("language_model", "lm_head")


def part_of(name: str) -> str:
    """ "tower", "projector", "llm" or "other" for a parameter name."""
    if TOWER in name:
        return "tower"
    if PROJECTOR in name:
        return "projector"
    if any(part in name for part in LLM_PARTS):
        return "llm"
    return "other"


def numel(param: Any) -> int:
    """Elements a parameter stands for: bitsandbytes packs two 4-bit values per byte."""
    if type(param).__name__ == "Params4bit":
        return param.numel() * 2 * param.element_size()
    return param.numel()


def is_copy(name: str) -> bool:
    """PEFT keeps the frozen original of a modules_to_save module beside the trained copy."""
    return ".original_module." in name


def count_params(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters, each counted once."""
    trainable = total = 0
    for name, param in model.named_parameters():
        if is_copy(name):
            continue
        n = numel(param)
        total += n
        trainable += n if param.requires_grad else 0
    return trainable, total


def params_of(model: Any, part: str) -> int:
    return sum(
        numel(p) for n, p in model.named_parameters() if part_of(n) == part and not is_copy(n)
    )


def set_trainable(model: Any, keep: Callable[[str], bool]) -> None:
    """requires_grad exactly where `keep(name)` holds (floating-point parameters only)."""
    for name, param in model.named_parameters():
        param.requires_grad = bool(keep(name)) and param.is_floating_point()


def trainable_parts(model: Any) -> set[str]:
    return {part_of(n) for n, p in model.named_parameters() if p.requires_grad}


def llm_linear_names(model: Any) -> list[str]:
    """Module names of the LLM's linear layers (plain or bitsandbytes), lm_head excluded."""
    import torch

    names = []
    for name, module in model.named_modules():
        if "language_model" not in name:
            continue
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in (
            "Linear4bit",
            "Linear8bitLt",
        ):
            names.append(name)
    return names


def snapshot(model: Any, names: Iterable[str] | None = None) -> dict[str, Any]:
    """Detached copies of the named (default: all) parameters, for before/after comparisons."""
    wanted = set(names) if names is not None else None
    return {
        n: p.detach().float().clone()
        for n, p in model.named_parameters()
        if wanted is None or n in wanted
    }
