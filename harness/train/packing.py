"""Whether a stage trains on packed (padding-free) batches, and in which layout.

transformers builds the attention of a packed row from its position ids when the batch has no
attention mask: flash attention runs its varlen kernel over the sequences of a one-row batch
(so the whole micro batch goes in one row), and eager, SDPA and flex attention get a
block-diagonal causal mask (`transformers.masking_utils`: packed sequences detected from the
position ids), whose cost grows with the row's square (so rows stay as wide as the longest
sample). An implementation outside these (a hub kernel, remote code) may ignore the position
ids and let samples attend to each other: there the stage trains padded, on LLaVA's
length-grouped batches instead, and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.model.collate import PackMode
    from harness.specs import TrainSpec

VARLEN = ("flash_attention_2", "flash_attention_3", "harness_varlen")  # the last: train/varlen.py
DENSE_MASK = ("eager", "sdpa", "flex_attention")


def attention_implementation(model: Any) -> str:
    """The LLM's attention implementation (LLaVA's text config; a peft wrapper passes through)."""
    config = model.config
    text = getattr(config, "text_config", None) or config
    return str(getattr(text, "_attn_implementation", None) or "eager")


def pack_mode(model: Any, train: TrainSpec, log: Callable[[str], None] | None = None) -> PackMode:
    """`flat`, `rows` or `off` for this model and stage (see the module docstring)."""
    if not train.packing:
        return "off"
    implementation = attention_implementation(model)
    if implementation in VARLEN:
        return "flat"
    if implementation in DENSE_MASK:
        return "rows"
    if log is not None:
        log(
            f"packing: attention {implementation!r} may not honour packed position ids; "
            "training on padded, length-grouped batches"
        )
    return "off"
