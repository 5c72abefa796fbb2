"""What makes a stage fast on its device: the attention kernel, data loader workers, and
gradient checkpointing only where memory needs it.

Each choice is made once per stage from the TrainSpec and the device (`auto` by default), logged,
and recorded in the stage's TrainRecord, so a throughput figure always says how it was reached.
None of them changes what trains: the same samples, in the same order, with the same loss.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import UserError
from harness.specs import TrainSpec

# Below this share of the device's free memory the estimate leaves checkpointing off: the
# estimate omits the allocator's fragmentation and the framework's own buffers.
MEMORY_HEADROOM = 0.85
MAX_LOADER_WORKERS = 4  # collation of one micro batch is cheap next to its forward/backward
LOADER_PREFETCH = 4  # micro batches each worker keeps ready


@dataclass(frozen=True)
class Tuning:
    """The stage's choices, as the Trainer gets them and the record reports them."""

    attention: str
    loader_workers: int
    gradient_checkpointing: bool
    compiled: bool


def flash_attention_available() -> bool:
    """flash-attn's varlen kernels (transformers' `flash_attention_2`): CUDA and the package."""
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None


def choose_attention(
    train: TrainSpec, gpus: int, current: str, varlen_works: Callable[[], bool] = lambda: False
) -> str:
    """`auto`: on a GPU, flash attention 2 where the flash_attn package is there, else (for
    packed batches) torch's own varlen flash kernel where `varlen_works` (its check on the
    device, harness.train.varlen), else the model's own (SDPA, which picks its flash kernel
    where the inputs allow); an explicit choice is kept as given (`varlen`: torch's kernel)."""
    from harness.train import varlen

    if train.attention == "varlen":
        return varlen.NAME
    if train.attention != "auto":
        return train.attention
    if gpus > 0 and flash_attention_available():
        return "flash_attention_2"
    if gpus > 0 and train.packing and varlen_works():
        return varlen.NAME
    return current


def _compute_device(train: TrainSpec, gpus: int) -> tuple[str, Any]:
    """Where and in which dtype the stage's attention runs (the Trainer's device and autocast)."""
    import torch

    from harness.train.settings import resolve_precision

    device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if gpus > 0 else "cpu"
    precision = resolve_precision(train, gpus)
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    return device, dtypes[precision]


def apply_attention(model: Any, train: TrainSpec, gpus: int, log: Callable[[str], None]) -> str:
    """Set the chosen attention implementation on the model (torch's varlen kernel on its LLM
    only: the tower's rows are not packed); returns it."""
    from harness.train import varlen
    from harness.train.packing import attention_implementation

    current = attention_implementation(model)
    device, dtype = _compute_device(train, gpus)
    chosen = choose_attention(train, gpus, current, lambda: varlen.works_on(device, dtype))
    if chosen == current:
        return current
    if chosen == varlen.NAME and train.attention == "varlen" and not varlen.works_on(device, dtype):
        raise UserError(
            f"attention 'varlen': torch's varlen flash kernel does not run on {device} in "
            f"{str(dtype).removeprefix('torch.')} (it needs a CUDA GPU and a torch that has it)"
        )
    try:
        if chosen == varlen.NAME:
            varlen.register()
            text = "text_config" if hasattr(model.config, "text_config") else ""
            model.set_attn_implementation({text: chosen} if text else chosen)
        else:
            model.set_attn_implementation(chosen)
    except (ValueError, ImportError) as exc:
        if train.attention != "auto":  # asked for by name: the stage cannot honour it
            raise UserError(f"attention {chosen!r}: {exc}") from None
        log(f"attention: keeping {current}, the model refuses {chosen} ({exc})")
        return current
    log(f"attention: {chosen} (was {current})")
    return chosen


def loader_workers(train: TrainSpec, gpus: int) -> int:
    """`auto` (None): no workers on CPU, where they would take cores from the model's own
    matrix products; on a GPU up to MAX_LOADER_WORKERS per process, sharing the machine's
    cores with the other ranks on the node, so collation overlaps the GPU's work."""
    if train.dataloader_workers is not None:
        return train.dataloader_workers
    if gpus <= 0:
        return 0
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(MAX_LOADER_WORKERS, (os.cpu_count() or 1) // max(1, ranks_here) - 1))


def activation_bytes(config: Any, tokens: int, checkpointed: bool, bytes_per_value: int) -> int:
    """Activations one micro batch of `tokens` keeps for its backward, LLM only (the frozen
    tower keeps none): per layer and token the attention block's inputs, q/k/v and output
    (about 9 x hidden values with a fused kernel: no scores kept), the SwiGLU MLP's input and
    four intermediate tensors (hidden + 4 x intermediate) and two norms (2 x hidden); the
    logits once, in fp32 for the loss and again for its gradient. Checkpointed: each layer's
    input only, plus one layer recomputed at a time."""
    text = getattr(config, "text_config", None) or config
    hidden, layers = int(text.hidden_size), int(text.num_hidden_layers)
    inter = int(getattr(text, "intermediate_size", 4 * hidden))
    per_layer = (12 * hidden + 4 * inter) * bytes_per_value
    kept = hidden * bytes_per_value * layers + per_layer if checkpointed else per_layer * layers
    logits = int(text.vocab_size) * (bytes_per_value + 2 * 4)
    return tokens * (kept + logits)


def training_state_bytes(model: Any, zero_stage: int, world: int) -> int:
    """Gradients and AdamW's two moments of what trains (in the parameters' dtype), divided
    over the ranks as ZeRO-2/3 do; the weights are already on the device."""
    shards = max(1, world) if zero_stage >= 2 else 1
    total = sum(p.numel() * p.element_size() * 3 for p in model.parameters() if p.requires_grad)
    return total // shards


def needs_checkpointing(
    model: Any, train: TrainSpec, micro_batch: int, world: int, free_bytes: int
) -> bool:
    """True where the stage's gradients, optimizer states and activations would not fit in
    MEMORY_HEADROOM of the device's free memory without recomputing activations."""
    dtype_bytes = 2 if train.precision in ("auto", "bf16", "fp16") else 4
    activations = activation_bytes(model.config, micro_batch * train.max_length, False, dtype_bytes)
    states = training_state_bytes(model, train.zero_stage or 0, world)
    return states + activations > MEMORY_HEADROOM * free_bytes


def checkpointing_for(
    model: Any, train: TrainSpec, micro_batch: int, world: int, gpus: int
) -> tuple[bool, str]:
    """(on, why): always where configured; with auto_checkpointing only on a GPU whose free
    memory the estimate exceeds."""
    if train.gradient_checkpointing or not train.auto_checkpointing:
        return train.gradient_checkpointing, "as configured"
    if gpus <= 0:
        return False, "CPU: memory is not the limit"
    import torch

    free, _ = torch.cuda.mem_get_info(int(os.environ.get("LOCAL_RANK", "0")))  # this rank's
    if needs_checkpointing(model, train, micro_batch, world, free):
        return True, f"the estimate exceeds {MEMORY_HEADROOM:.0%} of {free / 2**30:.1f} GiB free"
    return False, f"fits in {free / 2**30:.1f} GiB free without it"
