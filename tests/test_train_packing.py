"""Padding-free batches: the same loss and gradients as padded ones, on a tiny LLaVA.

A packed batch holds the same samples as the padded one, so its token-weighted mean loss and
every trainable gradient must agree within float tolerance, for full, LoRA and QLoRA, in both
layouts (one row for varlen kernels, rows as wide as the longest sample for dense masks), with
image and language-only samples whose images the packing reorders. Whole stages trained both
ways must log the same losses and count the same samples and tokens.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from _train_fixtures import cell, world_after_stage1
from harness_plugins.backends.full import FullFineTune
from harness_plugins.backends.lora import LoRA
from harness_plugins.backends.qlora import QLoRA

from harness.data.conversations import ConversationSample
from harness.model.collate import (
    PACKED_LENGTHS,
    LlavaCollator,
    cheapest_rows,
    model_inputs,
    pack_rows,
)
from harness.model.templates import IGNORE_INDEX
from harness.specs import TrainSpec
from harness.train import run_stage1, run_stage2
from harness.train.packing import attention_implementation, pack_mode

pytestmark = pytest.mark.slow
BACKENDS = {"full": FullFineTune(), "lora": LoRA(), "qlora": QLoRA()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with world_after_stage1(tmp_path_factory.mktemp("packing")) as w:
        yield w


def _samples(world) -> list[ConversationSample]:
    """Lengths that packing reorders: the image samples' order changes in the rows."""
    images = world.root / "data" / "images"

    def turns(*pairs: str) -> list[dict[str, str]]:
        return [{"from": ("human", "gpt")[i % 2], "value": v} for i, v in enumerate(pairs)]

    return [
        ConversationSample(
            "short", turns("<image>\nName a colour.", "Red."), str(images / "red-dot.png")
        ),
        ConversationSample(
            "text",
            turns(*["What colour is the shape?", "The square is green. It is a square."] * 9),
        ),
        ConversationSample(
            "long",
            turns(
                "<image>\nWhat colour is the shape?",
                "The bar is blue.",
                "And its form?",
                "It is a bar. a blue bar on grey",
            ),
            str(images / "blue-bar.png"),
        ),
        ConversationSample(
            "mid",
            turns("<image>\nAnd its form?", "It is a square."),
            str(images / "yellow-square.png"),
        ),
    ]


def _loss_and_grads(model, batch) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = model(**model_inputs(batch)).loss
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.item(), grads


@pytest.mark.parametrize(
    "method, attention", [("full", "sdpa"), ("full", "eager"), ("lora", "sdpa"), ("qlora", "sdpa")]
)
def test_a_packed_batch_has_the_padded_loss_and_gradients(world, method, attention):
    backend = BACKENDS[method]
    spec = cell(world.mix, method)
    torch.manual_seed(0)
    bundle = backend.prepare(
        backend.load_model(spec.model, spec.stage2, world.stage1_dir), spec.stage2
    )
    if attention != "sdpa":
        bundle.model.set_attn_implementation(attention)
    assert attention_implementation(bundle.model) == attention
    bundle.model.train()
    samples = _samples(world)
    padded = LlavaCollator(bundle, "vicuna_v1", 512)(samples)
    loss, grads = _loss_and_grads(bundle.model, padded)
    assert grads and all(g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)
    for mode in ("flat", "rows"):
        packed = LlavaCollator(bundle, "vicuna_v1", 512, packing=mode)(samples)
        assert "attention_mask" not in packed
        assert packed["pixel_values"].shape == padded["pixel_values"].shape
        packed_loss, packed_grads = _loss_and_grads(bundle.model, packed)
        assert packed_loss == pytest.approx(loss, rel=1e-5), mode
        assert packed_grads.keys() == grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(packed_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_packed_rows_hold_every_sample_once_with_its_labels(world):
    from harness.model import build_llava

    bundle = build_llava(cell(world.mix, "full").model)
    samples = _samples(world)
    collator = LlavaCollator(bundle, "vicuna_v1", 512)
    encoded = [collator.encode(s) for s in samples]
    lengths = [len(e.input_ids) for e in encoded]
    batch = LlavaCollator(bundle, "vicuna_v1", 512, packing="rows")(samples)
    rows, width = batch["input_ids"].shape
    assert max(lengths) <= width <= 512 and rows < len(samples)  # short ones share a row
    assert sorted(batch[PACKED_LENGTHS].tolist()) == sorted(lengths)
    starts = (batch["position_ids"] == 0).sum().item()
    assert starts >= len(samples)  # every sample restarts at 0 (a padded tail does too)
    supervised = int((batch["labels"] != IGNORE_INDEX).sum())
    # every label of every sample but its first, which must not follow the previous sample
    assert supervised == sum(sum(x != IGNORE_INDEX for x in e.labels[1:]) for e in encoded)
    flat = LlavaCollator(bundle, "vicuna_v1", 512, packing="flat")(samples)
    assert flat["input_ids"].shape == (1, sum(lengths))
    assert int(flat["position_ids"].max()) == max(lengths) - 1


def test_rows_are_first_fit_by_decreasing_length():
    assert pack_rows([3, 9, 5, 2, 4], 9) == [[1], [2, 4], [0, 3]]
    assert pack_rows([12, 4], 9) == [[0], [1]]  # an item longer than the width gets its own row
    assert pack_rows([2, 2, 2], 6) == [[0, 1, 2]]


def test_rows_widen_only_while_attention_is_cheaper_than_padding():
    lengths = [100, 90, 80, 70]  # no two fit beside each other in a row of 100
    assert cheapest_rows(lengths, 400, 0.0) == [[0], [1], [2], [3]]  # unknown cost: padded width
    # a 7B-like model: rows of 170 without padding (one row of 340 pays more attention)
    assert cheapest_rows(lengths, 400, 1e-5) == [[0, 3], [1, 2]]
    assert cheapest_rows(lengths, 400, 1.0) == [[0], [1], [2], [3]]  # attention dominates
    assert cheapest_rows([100, 30, 30, 30], 100, 1.0) == [[0], [1, 2, 3]]  # never above cap


def test_packing_follows_the_attention_implementation():
    def model(implementation: str):
        text = SimpleNamespace(_attn_implementation=implementation)
        return SimpleNamespace(config=SimpleNamespace(text_config=text))

    train = TrainSpec(method="lora")
    assert pack_mode(model("sdpa"), train) == "rows"
    assert pack_mode(model("eager"), train) == "rows"
    assert pack_mode(model("flash_attention_2"), train) == "flat"
    assert pack_mode(model("sdpa"), train.model_copy(update={"packing": False})) == "off"
    lines: list[str] = []
    assert pack_mode(model("kernels-community/other"), train, lines.append) == "off"
    assert "padded, length-grouped" in lines[0]


def test_only_packed_training_changes_the_step_keys():
    padded = TrainSpec(method="lora", packing=False)
    assert "packing" not in padded.canonical()  # the key a stage had before packing existed
    assert '"packing":true' in TrainSpec(method="lora").canonical()
    assert padded.sha256() != TrainSpec(method="lora").sha256()


def test_stages_trained_packed_and_padded_agree(world, tmp_path):
    padded1 = run_stage1(
        cell(world.mix, "full").model_copy(
            update={"stage1": cell(world.mix, "full").stage1.model_copy(update={"packing": False})}
        ),
        tmp_path / "s1-padded",
        lambda line: None,
    )
    assert (padded1.samples, padded1.tokens) == (world.stage1.samples, world.stage1.tokens)
    assert padded1.first_loss == pytest.approx(world.stage1.first_loss, abs=1e-5)
    assert padded1.last_loss == pytest.approx(world.stage1.last_loss, abs=1e-4)
    records = {}
    for packing in (True, False):
        spec = cell(world.mix, "lora", packing=packing)
        records[packing] = run_stage2(
            spec, LoRA(), world.stage1_dir, tmp_path / f"lora-{packing}", lambda line: None
        )
    packed, padded = records[True], records[False]
    assert (packed.samples, packed.tokens, packed.steps) == (padded.samples, padded.tokens, 4)
    assert packed.first_loss == pytest.approx(padded.first_loss, abs=1e-5)
    assert packed.last_loss == pytest.approx(padded.last_loss, abs=1e-4)


def test_an_attention_that_may_ignore_position_ids_trains_padded_and_grouped(
    world, tmp_path, monkeypatch
):
    import harness.train.loop as loop
    import harness.train.packing as packing

    monkeypatch.setattr(packing, "attention_implementation", lambda model: "hub/other-kernel")
    runs = []
    real = loop.run_stage
    monkeypatch.setattr(loop, "run_stage", lambda run: runs.append(run) or real(run))
    lines: list[str] = []
    record = run_stage1(cell(world.mix, "full"), tmp_path / "s1", lines.append)
    assert runs[0].collator.packing == "off" and runs[0].group_by_modality  # LLaVA's fallback
    assert any("'hub/other-kernel'" in line and "length-grouped" in line for line in lines)
    assert any(line.endswith("padded batches") for line in lines)
    assert (record.samples, record.tokens) == (world.stage1.samples, world.stage1.tokens)
