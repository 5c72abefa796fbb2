"""Tiny foundation models: deterministic tokenizer, cached builds, assembly from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _model_fixtures import TEXTS

from harness.model.tokenizer import train_tokenizer
from harness.specs import ModelSpec, QuantSpec, SizeSpec, TowerSpec


def test_tokenizer_training_is_deterministic_and_byte_level():
    first, second = train_tokenizer(TEXTS, 300), train_tokenizer(TEXTS, 300)
    assert first.get_vocab() == second.get_vocab()
    text = "Zebra ünïcode 42 never seen</s>"
    ids = first(text)["input_ids"]
    assert first.unk_token_id not in ids
    assert first.decode(ids, skip_special_tokens=False) == "<s>" + text
    assert ids[0] == first.bos_token_id and ids[-1] == first.eos_token_id


def quick_spec() -> ModelSpec:
    """A tiny size with a few pretraining steps: the real build path, in seconds."""
    tower = TowerSpec(
        name="quick-clip",
        hidden_size=32,
        patch_size=8,
        resolutions=[32],
        tiny={"layers": 2, "heads": 2, "intermediate": 64, "pretrain_steps": 3},
    )
    size = SizeSpec(
        name="quick",
        hidden_size=96,  # not a multiple of the 4-bit block (64): the CPU repack's weak spot
        params_b=0.0001,
        tower="quick-clip",
        tiny={"layers": 1, "heads": 2, "intermediate": 128, "vocab": 600, "pretrain_steps": 3},
    )
    return ModelSpec(size=size, tower=tower, resolution=32)


@pytest.mark.slow
def test_tiny_build_is_cached_and_assembles(tmp_path, monkeypatch):
    from harness.model import build_llava
    from harness.model.foundation import parts_for, read_manifest

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    spec = quick_spec()
    bundle = build_llava(spec)
    parts = parts_for(spec)
    assert all(p.startswith(str(tmp_path / "foundation")) for p in vars(parts).values())
    llm, tower = read_manifest(parts.llm), read_manifest(parts.tower)
    assert llm["steps"] == 3 and llm["params"] > 0 and llm["train"]["loss"] > 0
    assert tower["steps"] == 3 and "acc_color_0" in tower["train"]
    assert len(bundle.tokenizer) == read_manifest(parts.tokenizer)["vocab"] <= 600
    assert bundle.model.config.text_config.vocab_size >= len(bundle.tokenizer)

    built = {p: (Path(p) / "manifest.json").stat().st_mtime_ns for p in vars(parts).values()}
    again = build_llava(spec)
    rebuilt = {p: (Path(p) / "manifest.json").stat().st_mtime_ns for p in vars(parts).values()}
    assert rebuilt == built  # reused from the cache, not built again
    assert not list((tmp_path / "foundation").glob(".*.*.*"))  # no temporary folders left
    # the cached foundation gives the same LLM and tower weights; the projector is seeded
    for (name, a), b in zip(
        bundle.model.state_dict().items(), again.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name

    quantized = build_llava(spec, quantization=QuantSpec(compute_dtype="float32"))
    q_proj = quantized.model.model.language_model.layers[0].self_attn.q_proj
    assert type(q_proj).__name__ == "Linear4bit"
    # a no-grad forward (evaluation) works at widths that are not multiples of the 4-bit block,
    # and training still works after it in the same process
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        quantized.model(input_ids=ids)
    q_proj.weight.requires_grad_(False)
    quantized.model.model.multi_modal_projector.requires_grad_(True)
    out = quantized.model(input_ids=ids, labels=ids)
    out.loss.backward()


@pytest.mark.slow
def test_a_size_with_lookup_rows_pretrains_its_supervised_heads(tmp_path, monkeypatch):
    from harness.model.foundation import llm_dir, read_manifest

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    size = quick_spec().size
    plain = read_manifest(llm_dir(size, 0))["train"]
    tiny = {**size.tiny, "layers": 2, "lookup_rows": 4, "qk_init_std": 0.15}
    folder = llm_dir(size.model_copy(update={"tiny": tiny}), 0)
    train = read_manifest(folder)["train"]
    assert "attention_mass" not in plain and plain["loss"] > 0
    assert 0 < train["attention_mass"] < 1 and 0 < train["letter_attention"] < 1
    assert 0 <= train["letter_accuracy"] <= 1 and train["letter_loss"] > 0
    assert train["lookup_grad_norm"] > 0 and "lookup_grad_norm" not in plain
    assert train["loss"] != plain["loss"]
    config = json.loads((folder / "config.json").read_text())
    assert config["num_hidden_layers"] == 2


def test_qk_init_std_scales_only_the_queries_and_keys() -> None:
    from harness.model.foundation import fresh_llm

    tokenizer = train_tokenizer(TEXTS, 300)
    size = quick_spec().size
    torch.manual_seed(0)
    plain = fresh_llm(size, tokenizer)
    torch.manual_seed(0)
    raised_size = size.model_copy(update={"tiny": {**size.tiny, "qk_init_std": 0.15}})
    raised = fresh_llm(raised_size, tokenizer)
    for before, after in zip(plain.model.layers, raised.model.layers, strict=True):
        for name in ("q_proj", "k_proj"):
            assert abs(getattr(before.self_attn, name).weight.std().item() - 0.02) < 0.003
            assert abs(getattr(after.self_attn, name).weight.std().item() - 0.15) < 0.02
        torch.testing.assert_close(before.self_attn.v_proj.weight, after.self_attn.v_proj.weight)
        torch.testing.assert_close(before.mlp.up_proj.weight, after.mlp.up_proj.weight)


@pytest.mark.slow
def test_a_specs_foundation_seed_picks_the_world_its_foundation_is_built_on(tmp_path, monkeypatch):
    from harness.model.foundation import parts_for, read_manifest

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    spec = quick_spec()
    first, second = parts_for(spec), parts_for(spec.model_copy(update={"foundation_seed": 1}))
    assert [read_manifest(p.llm)["seed"] for p in (first, second)] == [0, 1]
    assert [read_manifest(p.tower)["seed"] for p in (first, second)] == [0, 1]
    assert first.tokenizer != second.tokenizer  # each trained on its own world's text


def test_pooled_heads_read_each_region_from_its_own_quadrant() -> None:
    from harness.model.pretrain import PooledHeads

    classes = {"kind": 3, "color_0": 2, "color_3": 2}
    heads = PooledHeads(16, 4, classes)  # a 4 x 4 patch grid, quadrants of 2 x 2
    assert heads.quadrants[0].tolist() == [0, 1, 4, 5]
    assert heads.quadrants[3].tolist() == [10, 11, 14, 15]
    tokens = torch.randn(2, 16, 4)
    kind, color_0, color_3 = heads(tokens)
    assert kind.shape == (2, 3) and color_0.shape == color_3.shape == (2, 2)
    changed = tokens.clone()
    changed[:, 15] = torch.randn(2, 4)  # a bottom-right token only
    kind2, color_0b, color_3b = heads(changed)
    torch.testing.assert_close(color_0b, color_0)  # the top-left quadrant does not see it
    assert not torch.allclose(color_3b, color_3) and not torch.allclose(kind2, kind)
    with pytest.raises(ValueError, match="even square grid"):
        PooledHeads(9, 4, classes)


def test_label_pooling_is_checked_and_keys_the_tower(tmp_path, monkeypatch) -> None:
    from harness.model.foundation import read_manifest, tower_dir

    tower = quick_spec().tower
    with pytest.raises(ValueError, match="label_pooling must be one of flat, pooled"):
        TowerSpec(**{**tower.model_dump(), "tiny": {**tower.tiny, "label_pooling": "mean"}})
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    pooled = tower.model_copy(update={"tiny": {**tower.tiny, "label_pooling": "pooled"}})
    flat_dir, pooled_dir = tower_dir(tower, 32, 0), tower_dir(pooled, 32, 0)
    assert flat_dir != pooled_dir
    assert read_manifest(flat_dir)["label_pooling"] == "flat"
    manifest = read_manifest(pooled_dir)
    assert manifest["label_pooling"] == "pooled" and 0 <= manifest["train"]["acc_word"] <= 1


def test_the_registry_check_knows_every_tower_head() -> None:
    from harness.model.pretrain import TOWER_HEADS
    from harness.specs import LABEL_POOLINGS

    assert set(LABEL_POOLINGS) == set(TOWER_HEADS)
