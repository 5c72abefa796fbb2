"""Short CPU pretraining loops for the tiny foundation models.

The tower learns to name what each image region holds (colour, shape, count, word...) from its
penultimate layer's patch tokens — the features LLaVA reads — through one linear head over all
patch tokens, so that each token keeps its region's content. The LLM learns the world's text
with next-token prediction on packed blocks. Both use AdamW with warm-up then linear decay to
zero, fixed step counts and seeds: the same inputs give the same weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def one_thread() -> Iterator[None]:
    """Train on one thread: these matrices are too small to gain from more, and on a busy
    machine two threads ran 3-5x slower than one (measured). Also makes builds machine-stable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _schedule(optimizer: torch.optim.Optimizer, steps: int, warmup: int) -> Callable[[], None]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return scheduler.step


class RegionHeads(nn.Module):
    """Linear classifiers over the flattened patch tokens, one per label key."""

    def __init__(self, patches: int, width: int, classes: dict[str, int]):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.names = list(classes)
        self.sizes = [classes[name] for name in self.names]
        self.linear = nn.Linear(patches * width, sum(self.sizes))

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        logits = self.linear(self.norm(tokens).flatten(1))
        return list(torch.split(logits, self.sizes, dim=-1))


def train_tower(
    tower: nn.Module,
    pixels: torch.Tensor,
    labels: dict[str, list[int]],
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
) -> dict[str, float]:
    """Train `tower` (a CLIPVisionModel) in place; returns the final losses and accuracies."""
    torch.manual_seed(seed)
    targets = {k: torch.tensor(v, dtype=torch.long) for k, v in labels.items()}
    classes = {k: int(v.max()) + 1 for k, v in targets.items()}
    patches = (pixels.shape[-1] // tower.config.patch_size) ** 2
    heads = RegionHeads(patches, tower.config.hidden_size, classes)
    params = list(tower.parameters()) + list(heads.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    step_lr = _schedule(optimizer, steps, max(1, steps // 20))
    generator = torch.Generator().manual_seed(seed)
    tower.train()
    start, recent = time.perf_counter(), []
    correct = {k: 0 for k in classes}
    seen = 0
    for step in range(steps):
        rows = torch.randint(0, pixels.shape[0], (batch_size,), generator=generator)
        hidden = tower(pixel_values=pixels[rows], output_hidden_states=True).hidden_states[-2]
        outputs = heads(hidden[:, 1:])
        loss = sum(
            nn.functional.cross_entropy(out, targets[k][rows])
            for k, out in zip(heads.names, outputs, strict=True)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step_lr()
        recent = (recent + [loss.item()])[-20:]
        if step >= steps - 20:  # accuracy over the last steps' batches
            seen += batch_size
            for k, out in zip(heads.names, outputs, strict=True):
                correct[k] += int((out.argmax(-1) == targets[k][rows]).sum())
    tower.eval()
    report = {"loss": sum(recent) / len(recent), "seconds": time.perf_counter() - start}
    report.update({f"acc_{k}": correct[k] / max(1, seen) for k in classes})
    return report


def pack_blocks(token_lists: list[list[int]], eos_id: int, block: int) -> torch.Tensor:
    """Documents joined with EOS and cut into fixed blocks (the last partial block dropped)."""
    stream = [t for ids in token_lists for t in (ids + [eos_id])]
    n = len(stream) // block
    if n == 0:
        raise ValueError(f"only {len(stream)} tokens of text: need at least one block of {block}")
    return torch.tensor(stream[: n * block], dtype=torch.long).view(n, block)


def train_llm(
    llm: nn.Module,
    blocks: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
) -> dict[str, float]:
    """Next-token pretraining of a causal LM in place; returns the final loss and perplexity."""
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(llm.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    step_lr = _schedule(optimizer, steps, max(1, steps // 20))
    generator = torch.Generator().manual_seed(seed)
    llm.train()
    start, recent = time.perf_counter(), []
    for _ in range(steps):
        rows = torch.randint(0, blocks.shape[0], (batch_size,), generator=generator)
        batch = blocks[rows]
        loss = llm(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(llm.parameters(), 1.0)
        optimizer.step()
        step_lr()
        recent = (recent + [loss.item()])[-20:]
    llm.eval()
    loss = sum(recent) / len(recent)
    return {"loss": loss, "perplexity": math.exp(loss), "seconds": time.perf_counter() - start}
