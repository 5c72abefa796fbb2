"""LLaVA's conversation templates: exact strings, label masking, mismatch reports."""

from __future__ import annotations

import pytest
from _model_fixtures import TEXTS

from harness.errors import UserError
from harness.model.templates import (
    IGNORE_INDEX,
    TokenizationMismatch,
    encode,
    prompt_ids,
    render,
)
from harness.model.tokenizer import train_tokenizer

SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
WITH_IMAGE = [
    {"from": "human", "value": "What shape is this?\n<image>"},
    {"from": "gpt", "value": "A red circle."},
    {"from": "human", "value": "How many are there?"},
    {"from": "gpt", "value": "There are two."},
]
TEXT_ONLY = [
    {"from": "human", "value": "Name a colour."},
    {"from": "gpt", "value": "Blue."},
    {"from": "human", "value": "Another one?"},
    {"from": "gpt", "value": "Green."},
]
CAPTION = [
    {"from": "human", "value": "<image>\nDescribe the image briefly."},
    {"from": "gpt", "value": "A red circle on a dark background."},
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, 320)


def supervised_runs(encoded, tokenizer) -> list[str]:
    """The supervised stretches of a sample, decoded, in order."""
    runs, current = [], []
    for label in encoded.labels + [IGNORE_INDEX]:
        if label != IGNORE_INDEX:
            current.append(label)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    return runs


def test_vicuna_v1_with_image_renders_llavas_string():
    expected = (
        SYSTEM + " USER: <image>\nWhat shape is this? ASSISTANT: A red circle.</s>"
        "USER: How many are there? ASSISTANT: There are two.</s>"
    )
    assert render(WITH_IMAGE, "vicuna_v1") == expected


def test_vicuna_v1_text_only_renders_llavas_string():
    expected = (
        SYSTEM
        + " USER: Name a colour. ASSISTANT: Blue.</s>USER: Another one? ASSISTANT: Green.</s>"
    )
    assert render(TEXT_ONLY, "vicuna_v1") == expected


def test_generation_prompt_ends_where_the_assistant_answers():
    question = [{"from": "human", "value": "<image>\nWhat is this?"}]
    assert render(question, "vicuna_v1", generation=True) == (
        SYSTEM + " USER: <image>\nWhat is this? ASSISTANT:"
    )
    assert render(question, "plain", generation=True) == "<image>"


def test_plain_renders_image_then_caption_then_newline():
    assert render(CAPTION, "plain") == "<image>A red circle on a dark background.\n"


def test_vicuna_labels_supervise_only_replies_and_their_end_token(tokenizer):
    encoded = encode(WITH_IMAGE, tokenizer, "vicuna_v1", image_tokens=16, max_length=512)
    assert supervised_runs(encoded, tokenizer) == [" A red circle.</s>", " There are two.</s>"]
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    image_positions = [i for i, t in enumerate(encoded.input_ids) if t == image_id]
    assert len(image_positions) == 16
    assert image_positions == list(range(image_positions[0], image_positions[0] + 16))
    assert all(encoded.labels[i] == IGNORE_INDEX for i in image_positions)
    assert encoded.input_ids[0] == tokenizer.bos_token_id
    assert encoded.labels[0] == IGNORE_INDEX
    assert tokenizer.decode(encoded.input_ids[1:]).replace("<image>" * 16, "<image>") == render(
        WITH_IMAGE, "vicuna_v1"
    )


def test_text_only_sample_has_no_image_tokens(tokenizer):
    encoded = encode(TEXT_ONLY, tokenizer, "vicuna_v1", image_tokens=16, max_length=512)
    assert not encoded.has_image
    assert tokenizer.convert_tokens_to_ids("<image>") not in encoded.input_ids
    assert supervised_runs(encoded, tokenizer) == [" Blue.</s>", " Green.</s>"]


def test_plain_masks_image_and_supervises_caption_and_newline(tokenizer):
    encoded = encode(CAPTION, tokenizer, "plain", image_tokens=4, max_length=512)
    assert supervised_runs(encoded, tokenizer) == ["A red circle on a dark background.\n"]
    assert (
        encoded.input_ids[:5]
        == [tokenizer.bos_token_id] + [tokenizer.convert_tokens_to_ids("<image>")] * 4
    )


def test_leading_reply_is_dropped_as_llava_does(tokenizer):
    messages = [{"from": "gpt", "value": "Hello."}] + TEXT_ONLY
    assert render(messages, "vicuna_v1") == render(TEXT_ONLY, "vicuna_v1")


def test_malformed_turn_order_names_the_sample(tokenizer):
    bad = [TEXT_ONLY[0], TEXT_ONLY[0], TEXT_ONLY[1]]
    with pytest.raises(UserError, match=r"sample 'item-7': turn 1 should be from 'gpt'"):
        encode(bad, tokenizer, "vicuna_v1", 16, 512, sample_id="item-7")


def test_mismatch_is_reported_with_sample_counts_and_ids(tokenizer):
    """A tokenizer whose EOS is not `</s>` would never learn to stop: reported, not trained."""
    other = train_tokenizer(TEXTS, 320)
    other.eos_token = "<pad>"
    with pytest.raises(TokenizationMismatch) as caught:
        encode(TEXT_ONLY, other, "vicuna_v1", 16, 512, sample_id="conv-42")
    error = caught.value
    assert error.sample_id == "conv-42"
    assert "2 replies but 0 end in the EOS id" in str(error)
    assert error.n_tokens > 0 and error.n_supervised > 0
    assert error.first_ids[0] == other.bos_token_id and len(error.first_ids) == 16
    assert "first ids [" in str(error)


def test_truncation_keeps_image_and_marks_the_sample(tokenizer):
    full = encode(WITH_IMAGE, tokenizer, "vicuna_v1", image_tokens=16, max_length=512)
    assert not full.truncated
    encoded = encode(WITH_IMAGE, tokenizer, "vicuna_v1", image_tokens=16, max_length=130)
    assert len(full.input_ids) > 130
    assert encoded.truncated and len(encoded.input_ids) == 130 == len(encoded.labels)
    assert encoded.input_ids == full.input_ids[:130] and encoded.labels == full.labels[:130]
    with pytest.raises(UserError, match="cuts into its 16 image tokens"):
        encode(WITH_IMAGE, tokenizer, "vicuna_v1", image_tokens=16, max_length=40)


def test_prompt_ids_match_training_prefix(tokenizer):
    """The generation prompt is a prefix of the training sample: train and eval agree."""
    question = WITH_IMAGE[:1]
    ids = prompt_ids(question, tokenizer, "vicuna_v1", image_tokens=16)
    full = encode(WITH_IMAGE[:2], tokenizer, "vicuna_v1", 16, 512).input_ids
    assert full[: len(ids)] == ids
