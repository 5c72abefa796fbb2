"""Packed rows through PyTorch's own variable-length flash attention, for GPUs without the
`flash_attn` package.

A packed row (`harness.train.packing`, layout `flat`) holds several samples whose position ids
restart at 0. Under SDPA such a row needs a dense block-diagonal mask, which rules out SDPA's
flash kernel; `torch.nn.attention.varlen.varlen_attn` runs the flash kernel over the samples of
the row without any mask, as flash-attn's varlen kernels do. The implementation is registered
with transformers under NAME for the LLM only (the tower's rows are not packed), and chosen only
after a check on the device itself: its outputs and gradients against SDPA on each sequence
alone. Where the check fails (a CPU, an older torch, another signature), SDPA stays.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

NAME = "harness_varlen"
CHECK_TOLERANCE = 2e-2  # bf16 outputs and gradients of two kernels over 48 tokens


def sequence_starts(position_ids: Any) -> tuple[Any, int]:
    """(cumulative sequence starts as int32, longest sequence) of a one-row packed batch whose
    position ids restart at 0 for each sample."""
    import torch

    positions = position_ids.reshape(-1)
    starts = torch.nonzero(positions == 0).reshape(-1)
    if starts.numel() == 0 or int(starts[0]) != 0:
        starts = torch.cat([starts.new_zeros(1), starts])
    bounds = torch.cat([starts, starts.new_tensor([positions.numel()])])
    longest = int((bounds[1:] - bounds[:-1]).max())
    return bounds.to(torch.int32), longest


def _kernel() -> Callable[..., Any]:
    """torch's varlen_attn, called causal whichever way this torch spells it."""
    from torch.nn.attention.varlen import varlen_attn

    params = inspect.signature(varlen_attn).parameters

    def causal(q: Any, k: Any, v: Any, bounds: Any, longest: int, scale: float, gqa: bool):
        extra: dict[str, Any] = {"scale": scale}
        extra.update({"is_causal": True} if "is_causal" in params else {"window_size": (-1, 0)})
        if gqa:
            extra["enable_gqa"] = True
        return varlen_attn(q, k, v, bounds, bounds, longest, longest, **extra)

    return causal


KERNEL: dict[str, Callable[..., Any]] = {}  # the causal varlen kernel, looked up once


def varlen_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' attention signature: (batch, heads, tokens, dim) in, (batch, tokens,
    heads, dim) out. One packed row, sequences from its position ids, no mask."""
    if query.shape[0] != 1 or attention_mask is not None:
        raise ValueError(f"{NAME} takes one packed row without a mask (a padded batch came)")
    position_ids = kwargs.get("position_ids")
    if position_ids is None:
        raise ValueError(f"{NAME} needs the packed row's position ids")
    bounds, longest = sequence_starts(position_ids)
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # (tokens, heads, dim)
    scale = scaling if scaling is not None else q.shape[-1] ** -0.5
    kernel = KERNEL.setdefault("causal", _kernel())
    out = kernel(q, k, v, bounds.to(q.device), longest, scale, k.shape[1] != q.shape[1])
    return out.unsqueeze(0), None


def register() -> None:
    """NAME in transformers' attention registry, with flash attention's mask rule (no dense
    mask for an unpadded batch)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, flash_attention_mask

    AttentionInterface.register(NAME, varlen_attention)
    AttentionMaskInterface.register(NAME, flash_attention_mask)


def works_on(device: Any, dtype: Any) -> bool:
    """The kernel runs on `device` and matches SDPA per sequence, outputs and gradients."""
    import torch
    import torch.nn.functional as F

    try:
        generator = torch.Generator().manual_seed(0)
        lengths = (5, 16, 27)
        shape = (1, 4, sum(lengths), 32)
        q, k, v = (
            torch.randn(shape, generator=generator).to(device, dtype).requires_grad_()
            for _ in range(3)
        )
        positions = torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0).to(device)
        ours, _ = varlen_attention(None, q, k, v, None, position_ids=positions)
        pieces, start = [], 0
        for n in lengths:
            part = slice(start, start + n)
            pieces.append(
                F.scaled_dot_product_attention(
                    q[:, :, part], k[:, :, part], v[:, :, part], is_causal=True
                ).transpose(1, 2)
            )
            start += n
        theirs = torch.cat(pieces, dim=1)
        grads = [torch.autograd.grad(out.float().sum(), (q, k, v)) for out in (ours, theirs)]
        close = (ours.float() - theirs.float()).abs().max() < CHECK_TOLERANCE
        return bool(close) and all(
            (a.float() - b.float()).abs().max() < CHECK_TOLERANCE
            for a, b in zip(*grads, strict=True)
        )
    except Exception:  # noqa: BLE001 - any failure means the kernel is not for this device
        return False
