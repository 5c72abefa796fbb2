"""LLaVA's length-grouped sampling (`--group_by_modality_length`), seeded.

Image and language-only samples never share a mega-batch (except the one leftover batch);
within a mega-batch, samples are sorted by length so that padding stays small. Upstream draws
the inner shuffles from an unseeded generator; here every shuffle uses the sampler's seed and
epoch, so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def modality_lengths(samples: Sequence) -> list[int]:
    """LLaVA's lengths: word count, positive for image samples, negative for language-only."""
    return [max(1, s.length) * (1 if s.image else -1) for s in samples]


def split_to_even_chunks(indices: list[int], lengths: Sequence[int], n: int) -> list[list[int]]:
    """LLaVA's split of a mega-batch into `n` chunks of about equal total length."""
    if len(indices) % n != 0:
        return [indices[i::n] for i in range(n)]
    per_chunk = len(indices) // n
    chunks: list[list[int]] = [[] for _ in range(n)]
    totals = [0.0] * n
    for index in indices:
        shortest = totals.index(min(totals))
        chunks[shortest].append(index)
        totals[shortest] += lengths[index]
        if len(chunks[shortest]) == per_chunk:
            totals[shortest] = float("inf")
    return chunks


def length_grouped_indices(
    lengths: Sequence[int], batch_size: int, world_size: int, generator: torch.Generator
) -> list[int]:
    order = torch.randperm(len(lengths), generator=generator).tolist()
    size = world_size * batch_size
    megabatches = [order[i : i + size] for i in range(0, len(lengths), size)]
    megabatches = [sorted(m, key=lambda i: lengths[i], reverse=True) for m in megabatches]
    chunked = [split_to_even_chunks(m, lengths, world_size) for m in megabatches]
    return [i for megabatch in chunked for batch in megabatch for i in batch]


def modality_grouped_indices(
    lengths: Sequence[int], batch_size: int, world_size: int, generator: torch.Generator
) -> list[int]:
    """LLaVA's get_modality_length_grouped_indices with the generator passed everywhere."""
    if all(n > 0 for n in lengths) or all(n < 0 for n in lengths):
        return length_grouped_indices([abs(n) for n in lengths], batch_size, world_size, generator)
    mm = [(i, n) for i, n in enumerate(lengths) if n > 0]
    lang = [(i, -n) for i, n in enumerate(lengths) if n < 0]
    size = world_size * batch_size
    groups = []
    for pairs in (mm, lang):
        idx, lens = zip(*pairs, strict=True)
        shuffled = [idx[i] for i in length_grouped_indices(lens, batch_size, world_size, generator)]
        groups.append([shuffled[i : i + size] for i in range(0, len(shuffled), size)])
    (mm_batches, lang_batches) = groups
    leftover = mm_batches[-1] + lang_batches[-1]
    megabatches = mm_batches[:-1] + lang_batches[:-1]
    order = torch.randperm(len(megabatches), generator=generator).tolist()
    megabatches = [megabatches[i] for i in order]
    if leftover:
        megabatches.append(sorted(leftover))
    return [i for megabatch in megabatches for i in megabatch]


class ModalityLengthGroupedSampler(Sampler[int]):
    """A sampler for a DataLoader/Trainer: LLaVA's grouping, a new order each epoch."""

    def __init__(
        self, samples: Sequence, batch_size: int, world_size: int = 1, seed: int = 0
    ) -> None:
        self.lengths = modality_lengths(samples)
        self.batch_size, self.world_size, self.seed = batch_size, world_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(
            modality_grouped_indices(self.lengths, self.batch_size, self.world_size, generator)
        )
