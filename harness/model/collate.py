"""Conversation samples -> padded or packed training batches for a LLaVA model.

Image samples contribute one pixel_values row each, in the order their image tokens appear in
the batch (transformers' Llava fills the image tokens from them in order); text-only samples
contribute none, and a batch with no image has no pixel_values at all, as LLaVA trains
language-only data.

Packed batches (padding-free training, as transformers' DataCollatorWithFlattening) put several
samples in one row with position ids that restart at 0 for each sample and no attention mask:
transformers then attends within each sample only (`masking_utils` for eager/SDPA/flex, varlen
kernels for flash attention). The first label of every sample is ignored, so that no sample is
trained to follow the one before it. `flat` puts the micro batch in one row (varlen kernels
attend within each sample only); `rows` fills rows first fit by decreasing length at the width
that costs least, because a dense mask makes attention cost grow with the row's square
(`cheapest_rows`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import torch

from harness.errors import UserError
from harness.model.templates import IGNORE_INDEX, Encoded, TokenizationMismatch, encode

log = logging.getLogger(__name__)
PackMode = Literal["off", "flat", "rows"]
PACK_MODES = ("off", "flat", "rows")
# A packed batch's sample lengths: what the meter counts, not a model input (the trainer pops it)
PACKED_LENGTHS = "packed_lengths"


def open_image(path: str, sample_id: str = "?"):
    """The image at `path` as RGB, or a UserError naming the file and the sample."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise UserError(f"sample {sample_id!r}: image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(f"sample {sample_id!r}: image file {path} is corrupt: {exc}") from None


class LlavaCollator:
    """Callable for a DataLoader / the HF Trainer: encode, load images, pad.

    `on_mismatch="raise"` (default) stops at a sample whose tokens do not match its template;
    "skip" drops it from the batch and records it in `self.skipped` (and the log), so that a
    run can report how many samples it lost instead of training on zero-loss samples.
    """

    def __init__(
        self,
        bundle: Any,
        template: str,
        max_length: int,
        on_mismatch: str = "raise",
        packing: PackMode = "off",
    ):
        if on_mismatch not in ("raise", "skip"):
            raise ValueError(f"on_mismatch must be 'raise' or 'skip', got {on_mismatch!r}")
        if packing not in PACK_MODES:
            raise ValueError(f"packing must be one of {PACK_MODES}, got {packing!r}")
        self.bundle, self.template, self.max_length = bundle, template, max_length
        self.on_mismatch, self.packing = on_mismatch, packing
        self._column_cost: float | None = None  # see column_cost, for `rows`
        self.skipped: list[str] = []
        self.truncated = 0

    def encode(self, sample: Any) -> Encoded:
        messages = sample.messages
        if sample.image is None:  # LLaVA drops stray <image> tokens from language-only data
            messages = [{**m, "value": m["value"].replace("<image>", "")} for m in messages]
        return encode(
            messages,
            self.bundle.tokenizer,
            self.template,
            self.bundle.image_tokens,
            self.max_length,
            sample_id=str(sample.id),
        )

    def __call__(self, samples: Sequence[Any]) -> dict[str, torch.Tensor]:
        encoded, images = [], []  # images[i]: encoded[i]'s image or None
        for sample in samples:
            try:
                item = self.encode(sample)
            except TokenizationMismatch as exc:
                if self.on_mismatch == "raise":
                    raise
                log.warning("skipped: %s", exc)
                self.skipped.append(str(exc))
                continue
            images.append(open_image(sample.image, str(sample.id)) if item.has_image else None)
            self.truncated += int(item.truncated)
            encoded.append(item)
        if not encoded:
            raise UserError(f"every sample of a batch failed to tokenize: {self.skipped[-1]}")
        if self.packing != "off":
            return self.pack(encoded, images)
        return self.pad(encoded, [image for image in images if image is not None])

    def pad(self, encoded: list[Encoded], images: list) -> dict[str, torch.Tensor]:
        pad_id = self.bundle.tokenizer.pad_token_id
        width = max(len(item.input_ids) for item in encoded)
        input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
        labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, item in enumerate(encoded):
            n = len(item.input_ids)
            input_ids[row, :n] = torch.tensor(item.input_ids)
            labels[row, :n] = torch.tensor(item.labels)
            attention[row, :n] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
        if images:
            batch["pixel_values"] = self.bundle.encode_images(images)
        return batch

    def pack(self, encoded: list[Encoded], images: list) -> dict[str, torch.Tensor]:
        """Samples packed into rows (see the module docstring); `images` parallel to `encoded`."""
        lengths = [len(item.input_ids) for item in encoded]
        if self.packing == "flat":
            rows = pack_rows(lengths, sum(lengths))
        else:
            if self._column_cost is None:
                self._column_cost = column_cost(self.bundle.model)
            rows = cheapest_rows(lengths, max(self.max_length, max(lengths)), self._column_cost)
        width = max(sum(lengths[i] for i in row) for row in rows)
        pad_id = self.bundle.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        ordered_images = []
        for r, row in enumerate(rows):
            start = 0
            for i in row:
                item, n = encoded[i], lengths[i]
                input_ids[r, start : start + n] = torch.tensor(item.input_ids)
                labels[r, start + 1 : start + n] = torch.tensor(item.labels[1:])
                positions[r, start : start + n] = torch.arange(n)
                start += n
                if images[i] is not None:
                    ordered_images.append(images[i])
            # the tail is a sequence of its own: attends only to itself, never a target
            positions[r, start:] = torch.arange(width - start)
        batch = {
            "input_ids": input_ids,
            "labels": labels,
            "position_ids": positions,
            PACKED_LENGTHS: torch.tensor([lengths[i] for row in rows for i in row]),
        }
        if ordered_images:
            batch["pixel_values"] = self.bundle.encode_images(ordered_images)
        return batch


def pack_rows(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Indices of `lengths` in rows of total length <= width (a longer item gets its own row),
    first fit by decreasing length; ties keep their order, so a batch packs the same every time."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        r = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if r is None:
            rows.append([i])
            room.append(width - lengths[i])
        else:
            rows[r].append(i)
            room[r] -= lengths[i]
    return rows


def column_cost(model: Any) -> float:
    """Under a dense mask, the attention FLOPs of one token per column of its row's width
    (4 x width x hidden x layers) over the token's linear-layer FLOPs (2 x the LLM's matrix
    parameters, from its config): 1e-3 for tiny-1m, 4e-5 for a 7B LLaMA. 0 where the config
    does not tell (rows then stay as wide as the longest sample)."""
    config = model.config
    text = getattr(config, "text_config", None) or config
    try:
        d, layers = int(text.hidden_size), int(text.num_hidden_layers)
        matrices = layers * (4 * d * d + 3 * d * int(text.intermediate_size))
        matrices += int(text.vocab_size) * d  # the output head
    except (AttributeError, TypeError, ValueError):
        return 0.0
    return 4 * d * layers / (2 * matrices)


def cheapest_rows(lengths: Sequence[int], cap: int, column: float) -> list[list[int]]:
    """Rows at the width (from the longest sample up to `cap`) that costs least: every slot
    (padding too) costs its linear layers, 1, plus `column` per column of the row's width for
    attention under a dense mask. Wide rows waste less on padding and pay more attention."""
    longest = max(lengths)
    if column <= 0:
        return pack_rows(lengths, longest)
    step = max(1, longest // 4, (cap - longest) // 32)
    best: tuple[float, list[list[int]]] | None = None
    for width in sorted({*range(longest, cap, step), max(cap, longest)}):
        rows = pack_rows(lengths, width)
        used = max(sum(lengths[i] for i in row) for row in rows)
        cost = len(rows) * used * (1 + column * used)
        if best is None or cost < best[0]:
            best = (cost, rows)
    return best[1]


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch as `model(**inputs)` takes it. A packed one loses what only the meter reads
    and asks for no KV cache: transformers looks for packed sequences in the position ids only
    where there is none (`masking_utils`), and its models make one by default, training too."""
    if PACKED_LENGTHS not in batch:
        return batch
    inputs = {key: value for key, value in batch.items() if key != PACKED_LENGTHS}
    inputs["use_cache"] = False
    return inputs
