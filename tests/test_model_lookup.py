"""The attention-supervised lookup in the tiny LLM's pretraining: rows mark the right option and
every option's letter, the marks land on the right tokens, and a few real training steps move
the two supervised heads toward them."""

from __future__ import annotations

import re

import pytest
import torch

from harness.data.synthetic.lookup import lookup_rows
from harness.data.synthetic.mmlu import LETTERS, splits
from harness.model.pretrain import _add_lookup_gradient, encode_lookup_rows, lookup_loss
from harness.model.tokenizer import train_tokenizer

ITEM = re.compile(r"(?P<question>[^\n]+)\n((?:[A-D]\. [^\n]*\n){4})Answer: (?P<letter>[A-D])")


@pytest.fixture(scope="module")
def rows():
    return lookup_rows(0, 120)


@pytest.fixture(scope="module")
def tokenizer(rows):
    return train_tokenizer([row.text for row in rows], 500)


def test_rows_are_seeded_and_mark_each_answer_and_option(rows) -> None:
    assert lookup_rows(0, 120) == rows and lookup_rows(1, 120) != rows
    for row in rows:
        assert row.text.startswith("The following are multiple choice questions")
        found = list(ITEM.finditer(row.text))
        assert len(found) == len(row.marks) >= 1 and len(row.options) == 4 * len(row.marks)
        for match, mark in zip(found, row.marks, strict=True):
            letter = match["letter"]
            assert row.text[mark.answer : mark.answer + 2] == " " + letter
            line_start = row.text.rfind("\n", 0, mark.option_start) + 1
            assert row.text[line_start : mark.option_start] == f"{letter}. "
            assert row.text[mark.option_end] == "\n"
        for letter_at, start, end in row.options:
            assert row.text[letter_at] in LETTERS and row.text[letter_at + 1 : start] == ". "
            assert end >= start and row.text[end] == "\n"  # "" is an option (a spider's sound)


def test_rows_hold_drills_and_practice_but_no_held_out_mmlu_item(rows) -> None:
    held_out = {
        (question, tuple(choices), answer)
        for split in splits(0).values()
        for items in split.values()
        for question, choices, answer in items
    }
    topics = [row.text.split(" about ")[1].split(".\n")[0] for row in rows]
    assert len(set(topics)) >= 3
    drills_first, drills_last = (
        sum(topic == "matching options" for topic in half) for half in (topics[:60], topics[60:])
    )
    assert drills_first > drills_last >= 20  # the share falls from all drills to about half
    for row in rows:
        for match in ITEM.finditer(row.text):
            choices = tuple(line[3:] for line in match[2].splitlines())
            item = (match["question"], choices, LETTERS.index(match["letter"]))
            assert item not in held_out


def test_marks_land_on_the_letter_option_and_letter_tokens(rows, tokenizer) -> None:
    encoded = encode_lookup_rows(tokenizer, rows)
    decode = tokenizer.decode
    for r, row in enumerate(rows):
        ids = encoded.ids[r].tolist()
        for k, mark in enumerate(row.marks):
            at = int(encoded.predict_at[r, k])
            assert decode([ids[at + 1]]) == row.text[mark.answer : mark.answer + 2]
            assert int(encoded.letters[r, k]) == ids[at + 1]
            option = encoded.option_tokens[r, k].nonzero().flatten().tolist()
            assert (
                decode([ids[i] for i in option]).strip()
                == row.text[mark.option_start : mark.option_end]
            )
        assert (encoded.predict_at[r, len(row.marks) :] == -1).all()
        texts = (encoded.letter_of[r] >= 0).nonzero().flatten().tolist()
        assert len(texts) >= len(row.options)
        for i in texts:
            letter = decode([ids[int(encoded.letter_of[r, i])]])
            line = decode(ids[int(encoded.letter_of[r, i]) : i + 1])
            assert letter in LETTERS and line.startswith(f"{letter}. ")


def _small_llm(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=64**-0.5,
    )
    llm = LlamaForCausalLM(config)
    llm.set_attn_implementation("eager")
    return llm


def test_lookup_loss_trains_both_supervised_heads(rows, tokenizer) -> None:
    llm = _small_llm(tokenizer)
    data = encode_lookup_rows(tokenizer, rows)
    optimizer = torch.optim.AdamW(llm.parameters(), lr=3e-3)
    figures = []
    for step in range(30):
        batch = data.take(torch.arange(step % 4 * 30, step % 4 * 30 + 30))
        loss, step_figures = lookup_loss(llm, batch, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        figures.append(step_figures)
    first, last = figures[0], figures[-1]
    assert first["letter_attention"] < 0.1 and last["letter_attention"] > 0.5
    assert last["attention_mass"] > first["attention_mass"] + 0.1
    assert last["letter_loss"] < first["letter_loss"]


def test_the_lookup_gradient_is_clipped_apart_from_the_texts(rows, tokenizer) -> None:
    """The text's gradient keeps its own (clipped) size whatever the lookup's norm is."""
    llm = _small_llm(tokenizer)
    batch = encode_lookup_rows(tokenizer, rows).take(torch.arange(16))
    text = torch.tensor([tokenizer(rows[20].text)["input_ids"][:64]])

    def clipped(loss: torch.Tensor) -> list[torch.Tensor]:
        llm.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(llm.parameters(), 1.0)
        assert norm > 0
        return [p.grad.clone() for p in llm.parameters()]

    text_grads = clipped(llm(input_ids=text, labels=text).loss)
    lookup_grads = clipped(lookup_loss(llm, batch, 1.0)[0])
    llm.zero_grad(set_to_none=True)
    llm(input_ids=text, labels=text).loss.backward()
    torch.nn.utils.clip_grad_norm_(llm.parameters(), 1.0)
    figures = _add_lookup_gradient(llm, batch, 1.0)
    assert figures["lookup_grad_norm"] > 1.0  # large enough that a joint clip would shrink text
    for p, t, k in zip(llm.parameters(), text_grads, lookup_grads, strict=True):
        torch.testing.assert_close(p.grad, t + k)
