"""The generation engine: batched greedy / beam search with left padding, one image encoding per
distinct image, and log-likelihood scoring of multiple-choice continuations.

Prompts are rendered through harness.eval.prompts (a vicuna_v1 or llava_v1 user turn followed by
"ASSISTANT:", or the checkpoint's own chat template), or fed as they are with template "raw".
Image features are computed once per image path and scattered into the `<image>` positions of
the prompt embeddings, so MMBench's rotations and several LLaVA-Bench questions on one image cost
one tower forward.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from harness.errors import UserError
from harness.eval.context_window import context_tokens
from harness.eval.journal import AnswerJournal
from harness.eval.loglik import score_logliks
from harness.eval.prompts import prompt_token_ids
from harness.protocols import GenerationRequest, LoglikRequest, ModelOutput

__all__ = ["ImageFeatures", "generate", "generation_batches", "prompt_token_ids", "run_requests"]

Progress = Callable[[int, int], None]
SMALL_MODEL = 50_000_000  # parameters below which CPU evaluation runs on one intra-op thread


def _parts(bundle: Any) -> tuple[Any, Any, Any]:
    return bundle.model, bundle.tokenizer, getattr(bundle, "image_processor", None)


def image_processor_for(bundle: Any) -> Any:
    """The bundle's image processor, loaded on first need (a checkpoint's loads only when a
    request carries an image: language benchmarks never read its processor files)."""
    loader = getattr(bundle, "load_image_processor", None)
    if getattr(bundle, "image_processor", None) is None and loader is not None:
        bundle.image_processor = loader()
    return getattr(bundle, "image_processor", None)


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _float_dtype(model: Any) -> torch.dtype:
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


class ImageFeatures:
    """Projected image features keyed by image path: the tower runs once per distinct image."""

    def __init__(self, model: Any, image_processor: Any):
        self.model, self.processor = model, image_processor
        self.cache: dict[str, torch.Tensor] = {}
        self.encoded = 0  # images through the tower (tests and benchmarks read it)

    def ensure(self, requests: Sequence[GenerationRequest]) -> None:
        from harness.model.collate import open_image

        todo: dict[str, str] = {}
        for req in requests:
            if req.image and req.image not in self.cache:
                todo.setdefault(req.image, req.id)
        if not todo:
            return
        if self.processor is None:
            first = next(iter(todo.values()))
            raise UserError(f"request {first}: this model has no image processor (language-only)")
        images = [open_image(path, rid) for path, rid in todo.items()]
        pixels = self.processor(images, return_tensors="pt")["pixel_values"]
        pixels = pixels.to(_device(self.model), _float_dtype(self.model))
        with torch.no_grad():
            out = self.model.get_image_features(pixel_values=pixels, return_dict=True)
        features = out.pooler_output if hasattr(out, "pooler_output") else out
        for path, feature in zip(todo, features, strict=True):
            self.cache[path] = feature.reshape(-1, feature.shape[-1])
        self.encoded += len(todo)

    def n_tokens(self, path: str) -> int:
        return self.cache[path].shape[0]


def refuse_overlong(
    bundle: Any, features: ImageFeatures, requests: Sequence[GenerationRequest]
) -> None:
    """Refuse, with a count, prompts longer than the model's context before any batch runs:
    a batch of them would ask for more memory than the step needs, or than the machine has."""
    model, tokenizer, _ = _parts(bundle)
    limit = context_tokens(model)
    if limit is None:
        return
    over = []
    for req in requests:
        n_image = features.n_tokens(req.image) if req.image in features.cache else 0
        n = len(prompt_token_ids(tokenizer, req, n_image))
        if n > limit:
            over.append((n, req.id))
    if over:
        n, rid = max(over)
        raise UserError(
            f"{len(over)} of {len(requests)} prompts are longer than the model's context of "
            f"{limit} tokens (the longest, request {rid}, has {n}): shorten them or use a "
            "model with a longer context"
        )


def _left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids, mask


def _generate_batch(
    bundle: Any, features: ImageFeatures | None, batch: list[GenerationRequest]
) -> list[ModelOutput]:
    model, tokenizer, _ = _parts(bundle)
    device = _device(model)
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    started = time.perf_counter()
    rows = []
    for req in batch:
        n_image = features.n_tokens(req.image) if (features and req.image) else 0
        if req.image and "<image>" not in req.prompt:
            raise UserError(f"request {req.id}: has an image but no <image> in its prompt")
        rows.append(prompt_token_ids(tokenizer, req, n_image))
    ids, mask = _left_pad(rows, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    first = batch[0]
    kwargs: dict[str, Any] = {
        "attention_mask": mask,
        "max_new_tokens": first.max_new_tokens,
        "num_beams": first.num_beams,
        "do_sample": first.temperature > 0,
        "pad_token_id": pad_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if first.temperature > 0:
        kwargs["temperature"] = first.temperature
        torch.manual_seed(0)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    with torch.no_grad():
        if any(req.image for req in batch):
            embeds = model.get_input_embeddings()(ids)
            image_id = model.config.image_token_id
            for i, req in enumerate(batch):
                if req.image:
                    positions = (ids[i] == image_id).nonzero(as_tuple=True)[0]
                    embeds[i, positions] = features.cache[req.image].to(embeds.dtype)
            out = model.generate(inputs_embeds=embeds, **kwargs)
            new_tokens = out  # with inputs_embeds only the new tokens come back
        else:
            out = model.generate(input_ids=ids, **kwargs)
            new_tokens = out[:, ids.shape[1] :]
    per_item = (time.perf_counter() - started) / len(batch)
    outputs = []
    for req, row in zip(batch, new_tokens.tolist(), strict=True):
        if tokenizer.eos_token_id in row:
            row = row[: row.index(tokenizer.eos_token_id)]
        while row and row[-1] == pad_id:
            row = row[:-1]
        text = tokenizer.decode(row, skip_special_tokens=True).strip()
        outputs.append(ModelOutput(id=req.id, text=text, n_tokens=len(row), seconds=per_item))
    return outputs


@contextmanager
def small_model_threads(model: Any) -> Iterator[None]:
    """One intra-op thread for small models on CPU: they are overhead-bound, and extra threads
    only add contention (several-fold on a busy machine)."""
    threads = torch.get_num_threads()
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL
    if _device(model).type == "cpu" and small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def generation_batches(
    requests: Sequence[GenerationRequest], batch_size: int
) -> list[list[GenerationRequest]]:
    """Batches of like settings (beams, length, temperature), longest prompts first. An answer
    depends on its batch (left padding), so a resumed step forms exactly these again."""
    size = max(1, batch_size)
    groups: dict[tuple, list[GenerationRequest]] = {}
    for req in requests:
        groups.setdefault((req.num_beams, req.max_new_tokens, req.temperature), []).append(req)
    batches = []
    for group in groups.values():
        group = sorted(group, key=lambda r: (-len(r.prompt), r.id))
        batches += [group[start : start + size] for start in range(0, len(group), size)]
    return batches


def generate(
    bundle: Any,
    requests: Sequence[GenerationRequest],
    batch_size: int,
    progress: Progress | None = None,
    features: ImageFeatures | None = None,
    *,
    journal: AnswerJournal | None = None,
) -> dict[str, ModelOutput]:
    """Answer generation requests in batches of like settings, longest prompts first. With a
    `journal`, batches an earlier attempt answered are taken from it, and new ones added to it."""
    model = bundle.model
    processor = image_processor_for(bundle) if any(r.image for r in requests) else None
    features = features or ImageFeatures(model, processor)
    features.ensure(requests)  # every image at once, as without a journal: the same features
    refuse_overlong(bundle, features, requests)
    batches = generation_batches(requests, batch_size)
    earlier = [journal.reusable(batch) if journal else None for batch in batches]
    if journal:
        journal.resuming(sum(len(outs) for outs in earlier if outs), len(requests))
    results: dict[str, ModelOutput] = {}
    with small_model_threads(model):
        for batch, outputs in zip(batches, earlier, strict=True):
            if outputs is None:
                outputs = _generate_batch(bundle, features, batch)
                if journal:
                    journal.record(batch, outputs)
            results.update((out.id, out) for out in outputs)
            if progress:
                progress(len(results), len(requests))
    return results


def place_for_eval(module: Any) -> Any:
    """The torch module on this machine's GPU when there is one (HARNESS_EVAL_DEVICE=cpu keeps
    it on the CPU). Quantized and device-mapped modules were placed when they loaded and stay
    there; everything else loads on the CPU."""
    if os.environ.get("HARNESS_EVAL_DEVICE", "").lower() == "cpu":
        return module
    if not torch.cuda.is_available() or _device(module).type != "cpu":
        return module
    if getattr(module, "hf_device_map", None) or getattr(module, "is_quantized", False):
        return module
    return module.to(f"cuda:{torch.cuda.current_device()}")


def run_requests(
    bundle: Any,
    requests: Sequence[GenerationRequest | LoglikRequest],
    batch_size: int = 16,
    progress: Progress | None = None,
    *,
    journal: AnswerJournal | None = None,
) -> dict[str, ModelOutput]:
    """Every request's ModelOutput, keyed by request id (the protocol's single entry point).
    Without a `progress` callback, items done go to the running step's progress report. With a
    `journal` (harness.eval.journal), answers survive a crash and a rerun reuses them."""
    if progress is None:
        from harness.support.step_progress import report

        def progress(done: int, total: int) -> None:
            report(done, total, "items")

    model = place_for_eval(bundle.model)
    was_training = model.training
    model.eval()
    try:
        gen = [r for r in requests if isinstance(r, GenerationRequest)]
        lik = [r for r in requests if isinstance(r, LoglikRequest)]
        results = generate(bundle, gen, batch_size, progress, journal=journal) if gen else {}
        if lik:
            with small_model_threads(model):
                results.update(score_logliks(bundle, lik, batch_size, progress, journal=journal))
    finally:
        model.train(was_training)
    return results
