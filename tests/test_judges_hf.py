"""The hf judge on a tiny randomly initialised causal LM saved to a temp folder."""

from __future__ import annotations

import pytest
from _judges_fixtures import StubBenchmark, pairwise_request

from harness.errors import UserError
from harness.judging.client import judge_all
from harness.protocols import JudgeRequest
from harness.specs import JudgeSpec

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-judge")
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = ["rate the answers 8 7 fine", "You are a helpful and precise assistant."] * 20
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="<eos>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def short(request: JudgeRequest, max_tokens: int) -> JudgeRequest:
    return JudgeRequest(**{**request.__dict__, "max_tokens": max_tokens})


def make_judge(folder, **options):
    from harness_plugins.judges.hf_judge import HFJudge

    snapshot = None if folder is None else str(folder)
    return HFJudge(JudgeSpec(name="hf", snapshot=snapshot, options={"batch_size": 2, **options}))


def test_batched_generation_answers_every_request(tiny_model_dir):
    judge = make_judge(tiny_model_dir)
    judge.check()
    requests = [short(pairwise_request(i), 12) for i in range(5)]
    requests[3] = short(requests[3], 3)
    responses = judge.judge(requests)
    assert [r.id for r in responses] == [f"q{i}" for i in range(5)]
    assert all(r.ok and isinstance(r.text, str) for r in responses)
    assert all(0 < r.completion_tokens <= 12 for r in responses)
    assert responses[3].completion_tokens <= 3
    assert all(r.prompt_tokens > 10 for r in responses)

    # greedy answers repeat (a random model's near-tied logits make padded and unpadded
    # batches diverge, so only repetition is asserted)
    again = make_judge(tiny_model_dir).judge(requests)
    assert [r.text for r in again] == [r.text for r in responses]


def test_runs_through_judge_all_and_names_itself(tiny_model_dir):
    judge = make_judge(tiny_model_dir)
    requests = [short(pairwise_request(i), 8) for i in range(2)]
    out = judge_all(StubBenchmark(), judge, requests, None)
    assert out.judge["name"] == "hf" and out.judge["official"] is False
    assert out.judge["snapshot"].startswith(f"hf:{tiny_model_dir.name}@")
    assert out.usage.completion_tokens > 0
    assert set(out.failures) == {"judge_error", "parse_failure"}  # random model: parse failures


def test_missing_model_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="needs judge.snapshot"):
        make_judge(None).check()
    with pytest.raises(UserError, match="cannot load"):
        make_judge(tmp_path / "nowhere").check()
