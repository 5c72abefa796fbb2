"""Conversation samples -> padded training batches for a LLaVA model.

Image samples contribute one pixel_values row each, in batch order (transformers' Llava fills
the image tokens of the batch from them in order); text-only samples contribute none, and a
batch with no image has no pixel_values at all, as LLaVA trains language-only data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from harness.errors import UserError
from harness.model.templates import IGNORE_INDEX, Encoded, TokenizationMismatch, encode

log = logging.getLogger(__name__)


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

    def __init__(self, bundle: Any, template: str, max_length: int, on_mismatch: str = "raise"):
        if on_mismatch not in ("raise", "skip"):
            raise ValueError(f"on_mismatch must be 'raise' or 'skip', got {on_mismatch!r}")
        self.bundle, self.template, self.max_length = bundle, template, max_length
        self.on_mismatch = on_mismatch
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
        encoded, images = [], []
        for sample in samples:
            try:
                item = self.encode(sample)
            except TokenizationMismatch as exc:
                if self.on_mismatch == "raise":
                    raise
                log.warning("skipped: %s", exc)
                self.skipped.append(str(exc))
                continue
            if item.has_image:
                images.append(open_image(sample.image, str(sample.id)))
            self.truncated += int(item.truncated)
            encoded.append(item)
        if not encoded:
            raise UserError(f"every sample of a batch failed to tokenize: {self.skipped[-1]}")
        return self.pad(encoded, images)

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
