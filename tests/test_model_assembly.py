"""LLaVA assembly: widths, features, projector kinds, save/reload with plain transformers."""

from __future__ import annotations

import pytest
import torch
from _model_fixtures import make_parts, tiny_spec
from PIL import Image

from harness.errors import UserError
from harness.model import load_bundle, load_projector, save_bundle, save_projector
from harness.model.assemble import LlavaBundle, assemble, image_processor_for, load_tokenizer
from harness.model.collate import LlavaCollator
from harness.model.projector import LinearProjector
from harness.model.templates import encode

QUESTION = [
    {"from": "human", "value": "<image>\nWhat is this?"},
    {"from": "gpt", "value": "A red circle."},
]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    return make_parts(tmp_path_factory.mktemp("parts"), tiny_spec())


def bundle_of(spec, parts, seed=0) -> LlavaBundle:
    model = assemble(spec, parts, torch.float32, seed=seed)
    return LlavaBundle(
        model, load_tokenizer(parts.tokenizer), image_processor_for(spec, parts), spec
    )


def inputs(bundle):
    encoded = encode(QUESTION, bundle.tokenizer, "vicuna_v1", bundle.image_tokens, 256)
    pixels = bundle.encode_images([Image.new("RGB", (40, 50), (200, 30, 30))])
    return torch.tensor([encoded.input_ids]), pixels


def logits(model, ids, pixels):
    with torch.no_grad():
        return model(input_ids=ids, pixel_values=pixels).logits


@pytest.mark.parametrize("projector", ["linear", "mlp2x_gelu"])
def test_projector_kinds_and_llava_feature_choice(parts, projector):
    spec = tiny_spec(projector)
    bundle = bundle_of(spec, parts)
    config = bundle.model.config
    assert config.vision_feature_layer == -2
    assert config.vision_feature_select_strategy == "default"
    assert bundle.image_tokens == (32 // 8) ** 2 == config.image_seq_length
    module = bundle.model.model.multi_modal_projector
    if projector == "linear":  # one Linear: the paper's parameter count
        assert isinstance(module, LinearProjector)
        assert sum(p.numel() for p in module.parameters()) == 32 * 64 + 64
    else:
        assert module.linear_1.in_features == 32 and module.linear_2.out_features == 64
        assert sum(p.numel() for p in module.parameters()) == 32 * 64 + 64 + 64 * 64 + 64
    ids, pixels = inputs(bundle)
    assert logits(bundle.model, ids, pixels).shape == (1, ids.shape[1], len(bundle.tokenizer))


@pytest.mark.parametrize("projector", ["linear", "mlp2x_gelu"])
def test_saved_model_reloads_with_plain_transformers_identically(parts, tmp_path, projector):
    from transformers import AutoProcessor, AutoTokenizer, LlavaForConditionalGeneration

    bundle = bundle_of(tiny_spec(projector), parts)
    ids, pixels = inputs(bundle)
    before = logits(bundle.model, ids, pixels)
    save_bundle(bundle, tmp_path / "saved")

    plain = LlavaForConditionalGeneration.from_pretrained(str(tmp_path / "saved")).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    assert tokenizer.convert_tokens_to_ids("<image>") == plain.config.image_token_id
    assert torch.equal(logits(plain, ids, pixels), before)

    processor = AutoProcessor.from_pretrained(str(tmp_path / "saved"))
    prompt = processor(images=[Image.new("RGB", (9, 9))], text=["<image>\nHi"], return_tensors="pt")
    assert int((prompt["input_ids"] == plain.config.image_token_id).sum()) == bundle.image_tokens

    again = load_bundle(tmp_path / "saved")
    assert again.spec == bundle.spec
    assert torch.equal(logits(again.model, ids, pixels), before)
    if projector == "linear":
        assert isinstance(again.model.model.multi_modal_projector, LinearProjector)


def test_stage1_projector_loads_into_a_fresh_model(parts, tmp_path):
    spec = tiny_spec()
    trained = bundle_of(spec, parts, seed=1)
    path = save_projector(trained.model, tmp_path / "stage1")
    assert path.name == "mm_projector.safetensors"
    fresh = bundle_of(spec, parts, seed=2)
    ids, pixels = inputs(fresh)
    assert not torch.equal(logits(fresh.model, ids, pixels), logits(trained.model, ids, pixels))
    load_projector(fresh.model, path)
    assert torch.equal(logits(fresh.model, ids, pixels), logits(trained.model, ids, pixels))


def test_projector_bad_files_are_named(parts, tmp_path):
    model = bundle_of(tiny_spec(), parts).model
    with pytest.raises(UserError, match="projector file not found: .*nothing.safetensors"):
        load_projector(model, tmp_path / "nothing.safetensors")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00\x01 not a safetensors file")
    with pytest.raises(UserError, match="projector file .*corrupt.safetensors is corrupt"):
        load_projector(model, corrupt)
    mlp = bundle_of(tiny_spec("mlp2x_gelu"), parts).model
    with pytest.raises(UserError, match="linear vs mlp2x_gelu"):
        load_projector(model, save_projector(mlp, tmp_path / "mlp"))


def test_collator_batches_image_and_text_samples(parts):
    from harness.data.conversations import ConversationSample

    bundle = bundle_of(tiny_spec(), parts)
    image = Image.new("RGB", (32, 32), (0, 0, 200))
    folder = parts.llm.rsplit("/", 1)[0]
    image.save(f"{folder}/blue.png")
    text = [{"from": "human", "value": "Name a colour."}, {"from": "gpt", "value": "Blue."}]
    samples = [
        ConversationSample("a", QUESTION, f"{folder}/blue.png"),
        ConversationSample("b", text, None),
    ]
    collate = LlavaCollator(bundle, "vicuna_v1", max_length=256)
    batch = collate(samples)
    assert batch["pixel_values"].shape == (1, 3, 32, 32)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert int(batch["attention_mask"][1].sum()) < batch["input_ids"].shape[1]  # padded right
    assert (batch["labels"][1][batch["attention_mask"][1] == 0] == -100).all()
    loss = bundle.model(**batch).loss
    assert torch.isfinite(loss)
    assert "pixel_values" not in collate([samples[1]])


@pytest.mark.slow
def test_qlora_loading_quantizes_only_the_llm(parts, monkeypatch, tmp_path):
    import bitsandbytes as bnb

    from harness.model.assemble import _quantized
    from harness.specs import QuantSpec

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    spec = tiny_spec()
    model = _quantized(spec, parts, QuantSpec(compute_dtype="float32"), torch.float32)
    layers = model.model.language_model.layers
    assert isinstance(layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    assert not isinstance(model.lm_head, bnb.nn.Linear4bit)
    assert isinstance(model.model.multi_modal_projector, LinearProjector)
    tower_linear = model.model.vision_tower.encoder.layers[0].mlp.fc1
    assert type(tower_linear) is torch.nn.Linear
    reference = bundle_of(spec, parts)
    ids, pixels = inputs(reference)
    quantized_logits = logits(model, ids, pixels)
    assert torch.isfinite(quantized_logits).all()
    assert quantized_logits.shape == logits(reference.model, ids, pixels).shape


def test_linear_projector_saved_without_its_identity_layer_still_loads(parts, tmp_path):
    """DeepSpeed ZeRO-3 gathers parameters, not our state-dict hook: linear_2 is then absent."""
    from safetensors.torch import load_file, save_file

    bundle = bundle_of(tiny_spec(), parts)
    ids, pixels = inputs(bundle)
    save_bundle(bundle, tmp_path / "saved")
    weights = tmp_path / "saved" / "model.safetensors"
    tensors = {k: v for k, v in load_file(str(weights)).items() if "linear_2" not in k}
    save_file(tensors, str(weights), metadata={"format": "pt"})
    again = load_bundle(tmp_path / "saved")
    assert torch.equal(logits(again.model, ids, pixels), logits(bundle.model, ids, pixels))
