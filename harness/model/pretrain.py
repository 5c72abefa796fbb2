"""Short CPU pretraining loops for the tiny foundation models.

The tower learns to name what each image region holds (colour, shape, count, word...) from its
penultimate layer's patch tokens — the features LLaVA reads — either through one linear head
over all patch tokens ("flat") or through heads over pooled tokens ("pooled": a region's labels
from its quadrant's mean, the rest from the mean of all), which puts the content in every token.
The LLM learns the world's text with next-token prediction on packed blocks, and beside it the
letter-format lookup from rows whose two attention heads are supervised (lookup_loss).
Both use AdamW with warm-up then linear decay to zero, fixed step counts and seeds: the same
inputs give the same weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harness.support import step_progress


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


class PooledHeads(nn.Module):
    """Linear classifiers over pooled patch tokens: a region's labels (`color_2`) read the mean
    of that quadrant's tokens, every other label the mean of all tokens. Pooling makes each
    token carry what it shows in a form that a uniform average (one attention head spread over
    the image) can read, which is how a tiny LLM first reads image tokens."""

    def __init__(self, patches: int, width: int, classes: dict[str, int]):
        super().__init__()
        side = math.isqrt(patches)
        if side * side != patches or side % 2:
            raise ValueError(f"{patches} patches do not form an even square grid")
        self.norm = nn.LayerNorm(width)
        self.names = list(classes)
        self.heads = nn.ModuleList(nn.Linear(width, classes[name]) for name in self.names)
        grid = torch.arange(patches).view(side, side)
        half = side // 2
        quadrants = [
            grid[row * half : (row + 1) * half, col * half : (col + 1) * half].flatten()
            for row in (0, 1)
            for col in (0, 1)
        ]
        self.pools = [_region_of(name) for name in self.names]
        self.register_buffer("quadrants", torch.stack(quadrants), persistent=False)

    def forward(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        tokens = self.norm(tokens)
        whole = tokens.mean(1)
        out = []
        for head, region in zip(self.heads, self.pools, strict=True):
            if region is None:
                out.append(head(whole))
            else:
                out.append(head(tokens[:, self.quadrants[region]].mean(1)))
        return out


def _region_of(label: str) -> int | None:
    """The quadrant a label describes (`shape_3` -> 3), or None for a whole-image label."""
    stem, _, suffix = label.rpartition("_")
    return int(suffix) if stem and suffix.isdigit() else None


TOWER_HEADS = {"flat": RegionHeads, "pooled": PooledHeads}  # keys: specs.LABEL_POOLINGS


def train_tower(
    tower: nn.Module,
    pixels: torch.Tensor,
    labels: dict[str, list[int]],
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    label_pooling: str = "flat",
) -> dict[str, float]:
    """Train `tower` (a CLIPVisionModel) in place; returns the final losses and accuracies.
    `label_pooling` picks how the labels read the patch tokens (TOWER_HEADS)."""
    torch.manual_seed(seed)
    targets = {k: torch.tensor(v, dtype=torch.long) for k, v in labels.items()}
    classes = {k: int(v.max()) + 1 for k, v in targets.items()}
    patches = (pixels.shape[-1] // tower.config.patch_size) ** 2
    head = TOWER_HEADS[label_pooling](patches, tower.config.hidden_size, classes)
    params = list(tower.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    step_lr = _schedule(optimizer, steps, max(1, steps // 20))
    generator = torch.Generator().manual_seed(seed)
    tower.train()
    start, recent = time.perf_counter(), []
    correct = {k: 0 for k in classes}
    seen = 0
    for step in range(steps):
        step_progress.report(step, steps, "tower step")  # a cold run's first minutes
        rows = torch.randint(0, pixels.shape[0], (batch_size,), generator=generator)
        hidden = tower(pixel_values=pixels[rows], output_hidden_states=True).hidden_states[-2]
        outputs = head(hidden[:, 1:])
        loss = sum(
            nn.functional.cross_entropy(out, targets[k][rows])
            for k, out in zip(head.names, outputs, strict=True)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step_lr()
        recent = (recent + [loss.item()])[-20:]
        if step >= steps - 20:  # accuracy over the last steps' batches
            seen += batch_size
            for k, out in zip(head.names, outputs, strict=True):
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


@dataclass(frozen=True)
class LookupSet:
    """Tokenized lookup rows (harness.data.synthetic.lookup) as padded tensors: for each row's
    k-th solved item, the position that predicts its answer letter (-1 where the row has fewer
    items), that letter's token id, and a mask of the tokens of the option it names."""

    ids: torch.Tensor  # rows x length
    predict_at: torch.Tensor  # rows x items
    letters: torch.Tensor  # rows x items
    option_tokens: torch.Tensor  # rows x items x length (bool)
    letter_of: torch.Tensor  # rows x length: an option text token's letter position, else -1

    def take(self, rows: torch.Tensor) -> LookupSet:
        return LookupSet(
            self.ids[rows],
            self.predict_at[rows],
            self.letters[rows],
            self.option_tokens[rows],
            self.letter_of[rows],
        )


def encode_lookup_rows(tokenizer: Any, rows: list[Any]) -> LookupSet:
    """Tokenize rows with character offsets and place each mark on its tokens."""
    encoded = tokenizer([row.text for row in rows], return_offsets_mapping=True)
    length = max(map(len, encoded["input_ids"]))
    items = max(len(row.marks) for row in rows)
    ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)
    predict_at = torch.full((len(rows), items), -1, dtype=torch.long)
    letters = torch.zeros((len(rows), items), dtype=torch.long)
    option_tokens = torch.zeros((len(rows), items, length), dtype=torch.bool)
    letter_of = torch.full((len(rows), length), -1, dtype=torch.long)
    for r, (row, row_ids, offsets) in enumerate(
        zip(rows, encoded["input_ids"], encoded["offset_mapping"], strict=True)
    ):
        ids[r, : len(row_ids)] = torch.tensor(row_ids)
        for k, mark in enumerate(row.marks):
            at = _token_at(offsets, mark.answer + 1)  # the letter after the space
            predict_at[r, k], letters[r, k] = at - 1, row_ids[at]
            option_tokens[r, k, _tokens_in(offsets, mark.option_start, mark.option_end)] = True
        for letter_char, start, end in row.options:
            letter_of[r, _tokens_in(offsets, start, end)] = _token_at(offsets, letter_char)
    return LookupSet(ids, predict_at, letters, option_tokens, letter_of)


def _token_at(offsets: list[tuple[int, int]], char: int) -> int:
    return next(i for i, (s, e) in enumerate(offsets) if s <= char < e)


def _tokens_in(offsets: list[tuple[int, int]], start: int, end: int) -> list[int]:
    return [i for i, (s, e) in enumerate(offsets) if s < end and e > start]


def lookup_loss(
    llm: nn.Module, batch: LookupSet, attention_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of the answer letters plus `attention_weight` x the negative log of two
    attention weights: the last layer's first head, where it predicts a letter, on the option
    the letter names; the first layer's first head, at each option's text, on that option's
    letter. Both heads get a direct gradient toward the lookup, so it forms in a few hundred
    steps instead of staying at chance past a thousand (bench/RESULTS.md, "Lookup
    supervision"). Needs eager attention (the weights are returned)."""
    width = int((batch.ids != llm.config.pad_token_id).sum(1).max())
    out = llm.model(input_ids=batch.ids[:, :width], output_attentions=True)
    valid = batch.predict_at >= 0
    rows, items = valid.nonzero(as_tuple=True)
    at = batch.predict_at[rows, items]
    logits = llm.lm_head(out.last_hidden_state[rows, at])
    letter_loss = nn.functional.cross_entropy(logits, batch.letters[rows, items])
    attention = out.attentions[-1][rows, 0, at]  # the supervised head's weights at each letter
    mass = (attention * batch.option_tokens[rows, items, :width]).sum(-1)
    # The first layer's first head, at each option's text, attends to the option's letter, so
    # the text's own position carries the letter that the lookup head reads there.
    letter_of = batch.letter_of[:, :width]
    texts, positions = (letter_of >= 0).nonzero(as_tuple=True)
    to_letter = out.attentions[0][texts, 0, positions, letter_of[texts, positions]]
    attention_loss = -torch.log(mass + 1e-6).mean() - torch.log(to_letter + 1e-6).mean()
    accuracy = (logits.argmax(-1) == batch.letters[rows, items]).float().mean()
    figures = {
        "letter_loss": letter_loss.item(),
        "attention_mass": mass.mean().item(),
        "letter_attention": to_letter.mean().item(),
        "letter_accuracy": accuracy.item(),
    }
    return letter_loss + attention_weight * attention_loss, figures


def _add_lookup_gradient(
    llm: nn.Module, batch: LookupSet, attention_weight: float
) -> dict[str, float]:
    """Add lookup_loss's gradient, clipped on its own, to the text's (already clipped) one.

    Clipped together, the lookup's larger gradient (norm 4-9 against the text's 1) scaled the
    text's down by as much and slowed its learning (tiny-1m's text loss 0.76 against 0.62)."""
    text_grads = [p.grad for p in llm.parameters()]
    for p in llm.parameters():
        p.grad = None
    extra, figures = lookup_loss(llm, batch, attention_weight)
    extra.backward()
    figures["lookup_grad_norm"] = float(torch.nn.utils.clip_grad_norm_(llm.parameters(), 1.0))
    for p, text_grad in zip(llm.parameters(), text_grads, strict=True):
        if text_grad is not None:
            p.grad = text_grad if p.grad is None else p.grad + text_grad
    return figures


def train_llm(
    llm: nn.Module,
    blocks: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    lookup: LookupSet | None = None,
    lookup_batch: int = 16,
    attention_weight: float = 1.0,
) -> dict[str, float]:
    """Next-token pretraining of a causal LM in place, plus, given `lookup`, a batch of lookup
    rows a step (lookup_loss); returns the final loss, perplexity and lookup figures (means over
    the last 20 steps)."""
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(llm.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    step_lr = _schedule(optimizer, steps, max(1, steps // 20))
    generator = torch.Generator().manual_seed(seed)
    implementation = llm.config._attn_implementation
    if lookup is not None:
        llm.set_attn_implementation("eager")
    llm.train()
    start, recent = time.perf_counter(), []
    for step in range(steps):
        step_progress.report(step, steps, "LLM step")  # a cold run's first minutes
        rows = torch.randint(0, blocks.shape[0], (batch_size,), generator=generator)
        batch = blocks[rows]
        optimizer.zero_grad(set_to_none=True)
        loss = llm(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(llm.parameters(), 1.0)
        figures = {"loss": loss.item()}
        if lookup is not None:
            picked = (step * lookup_batch + torch.arange(lookup_batch)) % lookup.ids.shape[0]
            figures.update(_add_lookup_gradient(llm, lookup.take(picked), attention_weight))
        optimizer.step()
        step_lr()
        recent = (recent + [figures])[-20:]
    llm.eval()
    if lookup is not None:
        llm.set_attn_implementation(implementation)
    report = {key: sum(f[key] for f in recent) / len(recent) for key in recent[-1]}
    report["perplexity"] = math.exp(report["loss"])
    report["seconds"] = time.perf_counter() - start
    return report
