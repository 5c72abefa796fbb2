"""Log-likelihood of continuations after a context, tokenized as lm-evaluation-harness does.

Context and continuation are encoded with the tokenizer's default special tokens, as
lm-evaluation-harness 0.4 does (a LLaMA tokenizer's BOS leads every context), trailing spaces of
the context move to the continuation, and the continuation's tokens are
`encode(context + continuation)[len(encode(context)):]`. When every continuation of a request is
one token (MMLU's " A".." D"), one forward over the context scores them all; otherwise each
continuation gets its own exact forward. Batches are right-padded, so padding never changes a
logit under the causal mask. A context too long for the model keeps its last tokens, as
lm-evaluation-harness truncates: `(context + continuation)[-(max_length + 1):][:-1]`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch

from harness.eval.context_window import context_tokens
from harness.eval.journal import AnswerJournal
from harness.protocols import LoglikRequest, ModelOutput


def split_tokens(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) exactly as lm-eval's `_encode_pair` makes them."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    whole = tokenizer(context + continuation)["input_ids"]
    context_ids = tokenizer(context)["input_ids"]
    return list(whole[: len(context_ids)]), list(whole[len(context_ids) :])


def _wanted_logits(lm: Any, ids: torch.Tensor, mask: torch.Tensor, wanted: list[list[int]]):
    """Logits at the wanted positions only: the decoder runs over every position, but the output
    projection (vocabulary-wide, the costliest matrix for small models) only where scores are read.
    """
    decoder = lm.get_decoder() if hasattr(lm, "get_decoder") else None
    head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
    plain_head = not any(
        getattr(lm.config, key, None) for key in ("final_logit_softcapping", "logit_scale")
    )
    if decoder is None or head is None or not plain_head:
        logits = lm(input_ids=ids, attention_mask=mask).logits
        return [logits[i, positions] for i, positions in enumerate(wanted)]
    hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state
    rows = torch.cat([torch.full((len(p),), i) for i, p in enumerate(wanted)]).to(ids.device)
    cols = torch.tensor([j for p in wanted for j in p], dtype=torch.long, device=ids.device)
    logits = head(hidden[rows, cols])
    return list(logits.split([len(p) for p in wanted]))


def _forward_logprobs(
    model: Any, rows: list[list[int]], pad_id: int, wanted: list[list[int]]
) -> list[torch.Tensor]:
    """Log-probabilities (over the vocabulary) at the wanted positions of each right-padded row."""
    device = next(model.parameters()).device
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    with torch.no_grad():
        picked = _wanted_logits(model, ids.to(device), mask.to(device), wanted)
    return [torch.log_softmax(logits.float(), dim=-1).cpu() for logits in picked]


def _score_shared(
    model: Any, pad_id: int, batch: list[tuple[LoglikRequest, list[int], list[list[int]]]]
) -> list[ModelOutput]:
    """One forward over a batch of contexts scores every one-token continuation of each."""
    began = time.perf_counter()
    rows = [ctx for _, ctx, _ in batch]
    logprobs = _forward_logprobs(model, rows, pad_id, [[len(r) - 1] for r in rows])
    per_item = (time.perf_counter() - began) / len(batch)
    return [
        ModelOutput(
            req.id, logliks=[float(lp[0, c[0]]) for c in conts], n_tokens=len(ctx), seconds=per_item
        )
        for (req, ctx, conts), lp in zip(batch, logprobs, strict=True)
    ]


def _score_separate(
    model: Any,
    tokenizer: Any,
    pad_id: int,
    limit: int | None,
    batch_size: int,
    req: LoglikRequest,
    pieces: list[tuple[list[int], list[int]]],
) -> list[ModelOutput]:
    """Each continuation of one request in its own exact forward, batch_size rows at a time."""
    began = time.perf_counter()
    rows, wanted = [], []
    for ctx, cont in pieces:
        if not ctx:  # an empty context is scored after the BOS token, as lm-eval does
            ctx = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else pad_id]
        row, start = ctx + cont, 0
        if limit and len(row) > limit + 1:  # lm-eval: (ctx + cont)[-(max_length + 1):][:-1]
            start = len(row) - limit - 1
            row = row[start:-1]
        rows.append(row)
        wanted.append(list(range(len(ctx) - 1 - start, len(ctx) + len(cont) - 1 - start)))
    values = []
    for start in range(0, len(rows), max(1, batch_size)):
        chunk = slice(start, start + batch_size)
        lps = _forward_logprobs(model, rows[chunk], pad_id, wanted[chunk])
        for (_, cont), lp in zip(pieces[chunk], lps, strict=True):
            values.append(float(sum(lp[j, t] for j, t in enumerate(cont))))
    seconds = time.perf_counter() - began
    return [ModelOutput(req.id, logliks=values, n_tokens=max(map(len, rows)), seconds=seconds)]


def score_logliks(
    bundle: Any,
    requests: Sequence[LoglikRequest],
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
    *,
    journal: AnswerJournal | None = None,
) -> dict[str, ModelOutput]:
    """Every request's log-likelihoods. With a `journal`, batches (shared-context batches, or
    one request's own forwards) an earlier attempt scored are taken from it, new ones added."""
    model, tokenizer = bundle.model, bundle.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    limit = context_tokens(model)
    shared, separate = [], []  # (request, context ids, [continuation ids])
    for req in requests:
        pieces = [split_tokens(tokenizer, req.context, c) for c in req.continuations]
        contexts = {tuple(ctx) for ctx, _ in pieces}
        conts = [cont for _, cont in pieces]
        if len(contexts) == 1 and all(len(c) == 1 for c in conts) and pieces[0][0]:
            # lm-eval keeps the last max_length tokens of a context too long for the model
            shared.append((req, pieces[0][0][-limit:] if limit else pieces[0][0], conts))
        else:
            separate.append((req, pieces))
    shared.sort(key=lambda x: -len(x[1]))
    size = max(1, batch_size)
    jobs = [  # (the requests a batch answers, how to answer them)
        ([req for req, _, _ in batch], partial(_score_shared, model, pad_id, batch))
        for batch in (shared[start : start + size] for start in range(0, len(shared), size))
    ]
    jobs += [  # one request's own forwards depend on it alone
        ([req], partial(_score_separate, model, tokenizer, pad_id, limit, batch_size, req, pieces))
        for req, pieces in separate
    ]
    earlier = [journal.reusable(reqs) if journal else None for reqs, _ in jobs]
    if journal:
        journal.resuming(sum(len(outs) for outs in earlier if outs), len(requests))
    results: dict[str, ModelOutput] = {}
    for (reqs, answer), outputs in zip(jobs, earlier, strict=True):
        if outputs is None:
            outputs = answer()
            if journal:
                journal.record(reqs, outputs)
        results.update((out.id, out) for out in outputs)
        if progress:
            progress(len(results), len(requests))
    return results
