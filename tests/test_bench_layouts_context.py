"""Input size against the model's context: generation refuses prompts longer than the context
with a count before any batch runs; log-likelihood contexts keep their last tokens, as
lm-evaluation-harness truncates them."""

from __future__ import annotations

import pytest
import torch
from _eval_fixtures import WORDS, one_thread, tiny_llava, tiny_llm, write_images

from harness.errors import UserError
from harness.eval import run_requests
from harness.eval.context_window import context_tokens
from harness.eval.loglik import split_tokens
from harness.protocols import GenerationRequest, LoglikRequest

pytestmark = pytest.mark.slow

_threads = pytest.fixture(scope="module", autouse=True)(one_thread)


def test_prompts_longer_than_the_context_are_refused_with_a_count(tmp_path):
    llava = tiny_llava()
    limit = context_tokens(llava.model)
    assert limit == 256
    (image,) = write_images(tmp_path, 1)
    long = " ".join(WORDS * 30)  # far more than 256 tokens
    requests = [
        GenerationRequest(
            id="short", prompt="<image>\nthe red square?", image=image, max_new_tokens=4
        ),
        GenerationRequest(id="long1", prompt="<image>\n" + long, image=image),
        GenerationRequest(id="long2", prompt=long + " three", max_new_tokens=4),
    ]
    calls = []
    hook = llava.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        with pytest.raises(UserError) as err:
            run_requests(llava, requests, batch_size=4)
    finally:
        hook.remove()
    message = str(err.value)
    assert message.startswith("2 of 3 prompts are longer than the model's context of 256")
    assert "request long1, has" in message and "\n" not in message
    assert calls == []  # refused before any forward
    short = run_requests(llava, requests[:1], batch_size=4)
    assert short["short"].text is not None


def test_a_loglik_context_longer_than_the_model_keeps_its_last_tokens():
    llm = tiny_llm()
    limit = context_tokens(llm.model)
    context = " ".join(WORDS * 40) + "\nAnswer:"
    ctx, _ = split_tokens(llm.tokenizer, context, " A")
    assert len(ctx) > limit
    request = LoglikRequest("m", context, (" A", " B", "two green stars"))
    out = run_requests(llm, [request], batch_size=2)["m"]
    expected = []
    for continuation in request.continuations:
        ctx, cont = split_tokens(llm.tokenizer, context, continuation)
        kept = (ctx + cont)[-(limit + 1) :][:-1]  # lm-eval's truncation
        with torch.no_grad():
            logits = llm.model(input_ids=torch.tensor([kept])).logits[0].float()
        logprobs = torch.log_softmax(logits, -1)
        first = len(kept) - len(cont)
        expected.append(sum(float(logprobs[first + j, t]) for j, t in enumerate(cont)))
    assert out.logliks == pytest.approx(expected, abs=1e-4)
