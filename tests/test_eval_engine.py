"""The generation engine on a tiny random LLaVA: batching, image cache, fidelity, logliks."""

from __future__ import annotations

import pytest
import torch
from _eval_fixtures import mixed_requests, one_thread, tiny_llava, tiny_llm, write_images

from harness.errors import UserError
from harness.eval import ImageFeatures, generate, run_requests
from harness.eval.loglik import split_tokens
from harness.model.templates import prompt_ids
from harness.protocols import GenerationRequest, LoglikRequest

pytestmark = pytest.mark.slow

_threads = pytest.fixture(scope="module", autouse=True)(one_thread)


@pytest.fixture(scope="module")
def llava():
    return tiny_llava()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("images"), 3)


def test_batched_greedy_equals_batch_one(llava, images):
    reqs = mixed_requests(images)
    one = run_requests(llava, reqs, batch_size=1)
    four = run_requests(llava, reqs, batch_size=4)
    assert {k: v.text for k, v in one.items()} == {k: v.text for k, v in four.items()}
    assert len({v.text for v in one.values()}) > 5  # the outputs differ: the test has teeth
    assert all(v.n_tokens > 0 and v.seconds > 0 for v in one.values())


def test_batched_beam_search_equals_batch_one(llava, images):
    reqs = [r for r in mixed_requests(images, beams=2) if r.id in ("q0", "q5", "text")]
    one = run_requests(llava, reqs, batch_size=1)
    many = run_requests(llava, reqs, batch_size=3)
    assert {k: v.text for k, v in one.items()} == {k: v.text for k, v in many.items()}


def test_image_tower_runs_once_per_distinct_image(llava, images):
    seen = []
    hook = llava.model.model.vision_tower.register_forward_hook(
        lambda module, args, out: seen.append(args[0].shape[0])
    )
    try:
        features = ImageFeatures(llava.model, llava.image_processor)
        generate(llava, mixed_requests(images), batch_size=2, features=features)
    finally:
        hook.remove()
    assert sum(seen) == 3 and features.encoded == 3  # 7 image questions on 3 images


def test_cached_features_match_transformers_own_pixel_path(llava, images):
    req = mixed_requests(images)[4]
    ours = run_requests(llava, [req], batch_size=1)[req.id]
    tok = llava.tokenizer
    ids = prompt_ids([{"from": "human", "value": req.prompt}], tok, "vicuna_v1", 4)
    pixels = llava.image_processor(
        [__import__("PIL.Image").Image.open(req.image).convert("RGB")], return_tensors="pt"
    )["pixel_values"]
    with torch.no_grad():
        out = llava.model.generate(
            input_ids=torch.tensor([ids]),
            pixel_values=pixels,
            max_new_tokens=8,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )
    row = out[0, len(ids) :].tolist()
    if tok.eos_token_id in row:
        row = row[: row.index(tok.eos_token_id)]
    assert ours.text == tok.decode(row, skip_special_tokens=True).strip()


def test_missing_image_names_request_and_file(llava, tmp_path):
    req = GenerationRequest(id="lb-7", prompt="<image>\nHi", image=str(tmp_path / "gone.png"))
    with pytest.raises(UserError, match=r"'lb-7'.*gone.png"):
        run_requests(llava, [req], batch_size=1)


def test_image_request_on_a_plain_llm_is_refused(images):
    req = GenerationRequest(id="x", prompt="<image>\nHi", image=images[0])
    with pytest.raises(UserError, match="request x: this model has no image processor"):
        run_requests(tiny_llm(), [req], batch_size=1)


def exact_loglik(bundle, context, continuation):
    ctx, cont = split_tokens(bundle.tokenizer, context, continuation)
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logprobs = torch.log_softmax(bundle.model(input_ids=ids).logits[0].float(), -1)
    return sum(float(logprobs[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))


def test_single_token_choices_from_one_forward_match_exact_scores():
    llm = tiny_llm()
    contexts = ["the red square sits\nAnswer:", "two green stars count three blue\nAnswer:"]
    reqs = [LoglikRequest(f"m{i}", c, (" A", " B", " C", " D")) for i, c in enumerate(contexts)]
    for choice in reqs[0].continuations:
        assert len(split_tokens(llm.tokenizer, contexts[0], choice)[1]) == 1
    calls = []
    decoder = llm.model.get_decoder()
    hook = decoder.register_forward_hook(lambda m, a, k, o: calls.append(1), with_kwargs=True)
    try:
        outs = run_requests(llm, reqs, batch_size=2)
    finally:
        hook.remove()
    assert len(calls) == 1  # both questions, all four choices: one forward
    for req in reqs:
        expected = [exact_loglik(llm, req.context, c) for c in req.continuations]
        assert outs[req.id].logliks == pytest.approx(expected, abs=1e-5)


def test_multi_token_continuations_are_exact(llava):
    req = LoglikRequest("long", "the red square ", ("sits left of", "circle", " and two green"))
    out = run_requests(llava, [req], batch_size=2)["long"]
    expected = [exact_loglik(llava, req.context, c) for c in req.continuations]
    assert out.logliks == pytest.approx(expected, abs=1e-5)
    moved = split_tokens(llava.tokenizer, "abc ", "d")[1]  # the trailing space moves over
    assert moved == llava.tokenizer(" d", add_special_tokens=False)["input_ids"]


def test_contexts_are_encoded_with_the_tokenizers_special_tokens_as_lm_eval_does():
    tok = tiny_llm().tokenizer
    ctx, cont = split_tokens(tok, "the red square\nAnswer:", " B")
    assert ctx[0] == tok.bos_token_id  # lm-eval 0.4 encodes with the tokenizer's defaults
    assert ctx + cont == tok("the red square\nAnswer: B")["input_ids"]
    assert (
        cont
        == tok("the red square\nAnswer: B")["input_ids"][
            len(tok("the red square\nAnswer:")["input_ids"]) :
        ]
    )
