"""DoRA through the real plugin manager, on a tiny LLaVA built from configs (no download).

What it must do: register as `dora` from this package, inherit LoRA's settings, adapt exactly
the LLM's linear layers with DoRA (adapters plus magnitudes) and train the projector in full,
and save an adapter folder that peft reloads and merges to the same model.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from harness.plugins import load_plugins
from harness.specs import ModelSpec, SizeSpec, TowerSpec, TrainSpec
from harness.train import peft_helpers


def tiny_llava():
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig
    from transformers import LlavaForConditionalGeneration as Llava

    text = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=64, pad_token_id=0,
    )  # fmt: skip
    vision = CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        image_size=16, patch_size=8,
    )  # fmt: skip
    torch.manual_seed(0)
    return Llava(LlavaConfig(vision_config=vision, text_config=text, image_token_index=63))


def bundle_of(model):
    tower = TowerSpec(name="t", hidden_size=16, patch_size=8, resolutions=[16], tiny={})
    size = SizeSpec(name="s", hidden_size=32, params_b=0.0001, tower="t", tiny={})
    return SimpleNamespace(model=model, spec=ModelSpec(size=size, tower=tower, resolution=16))


TRAIN = TrainSpec(method="dora", lora_rank=4, lora_alpha=8, lora_dropout=0.0)


@pytest.fixture(scope="module")
def dora():
    return load_plugins().get("backend", "dora")


def test_registered_from_this_package_with_loras_settings():
    plugins = load_plugins()
    origin = plugins.origin("backend", "dora")
    assert (origin.plugin, origin.package, origin.version) == (
        "harness_example_backend",
        "harness-example-backend",
        "0.1.0",
    )
    assert not [message for message in plugins.refused if "harness-example-backend" in message]
    assert plugins.get("backend", "dora").inherits == "lora"
    assert "lora" in plugins.names("backend")


def test_prepare_adapts_the_llm_with_dora_and_trains_the_projector(dora):
    bundle = dora.prepare(bundle_of(tiny_llava()), TRAIN)
    trainable = [n for n, p in bundle.model.named_parameters() if p.requires_grad]
    magnitudes = [n for n in trainable if "lora_magnitude_vector" in n]
    assert len(magnitudes) == 2 * 7  # q, k, v, o, gate, up, down in each of the two layers
    assert all("language_model" in n for n in magnitudes)
    for name in trainable:
        assert "lora_" in name or "multi_modal_projector" in name, name
    assert any("multi_modal_projector" in n for n in trainable)
    assert not any("vision_tower" in n or "lm_head" in n for n in trainable)


def test_saved_adapter_reloads_and_merges_to_the_same_model(dora, tmp_path):
    from peft import PeftModel

    bundle = dora.prepare(bundle_of(tiny_llava()), TRAIN)
    with torch.no_grad():  # as if trained: adapters, magnitudes and projector all moved
        for param in bundle.model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.05)
    dora.save(bundle, tmp_path)

    manifest = peft_helpers.read_manifest(tmp_path)
    assert manifest == {"method": "dora", "quantization": None}
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["use_dora"] is True and config["r"] == 4
    assert config["modules_to_save"] == ["multi_modal_projector"]

    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    bundle.model.eval()
    with torch.no_grad():
        trained = bundle.model(input_ids=ids).logits
        merged = PeftModel.from_pretrained(tiny_llava(), str(tmp_path / "adapter"))
        merged = merged.merge_and_unload().eval()
        again = merged(input_ids=ids).logits
    assert type(merged).__name__ == "LlavaForConditionalGeneration"
    assert torch.allclose(trained, again, atol=1e-5), (trained - again).abs().max()
    assert not torch.allclose(again, tiny_llava().eval()(input_ids=ids).logits, atol=1e-3)
