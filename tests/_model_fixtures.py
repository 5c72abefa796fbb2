"""Tiny random LLaVA parts (LLM, CLIP tower, tokenizer) built in a second, for model tests."""

from __future__ import annotations

from pathlib import Path

from harness.model.parts import Parts
from harness.specs import ModelSpec, SizeSpec, TowerSpec

TEXTS = [
    "There is a red circle in the top left and two blue squares.",
    "What colour is the shape? It is green. How many shapes are there? Three.",
    "A chat between a curious user and an artificial intelligence assistant.",
    "USER: What is this? ASSISTANT: A yellow triangle.</s>",
] * 40


def tiny_spec(projector: str = "linear", resolution: int = 32) -> ModelSpec:
    tower = TowerSpec(
        name="test-clip",
        hidden_size=32,
        patch_size=8,
        resolutions=[32, 48],
        tiny={"layers": 2, "heads": 2, "intermediate": 64},
    )
    size = SizeSpec(
        name="test-tiny",
        hidden_size=64,
        params_b=0.0001,
        tower="test-clip",
        tiny={"layers": 2, "heads": 2, "intermediate": 128, "vocab": 320},
    )
    return ModelSpec(size=size, tower=tower, resolution=resolution, projector=projector)


def make_parts(folder: Path, spec: ModelSpec, seed: int = 0) -> Parts:
    """Random-weight parts saved with save_pretrained, as a checkpoint download would be."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

    from harness.model.tokenizer import train_tokenizer

    torch.manual_seed(seed)
    tokenizer = train_tokenizer(TEXTS, spec.size.tiny["vocab"])
    tokenizer.save_pretrained(str(folder / "tokenizer"))
    llm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=spec.size.hidden_size,
            intermediate_size=spec.size.tiny["intermediate"],
            num_hidden_layers=spec.size.tiny["layers"],
            num_attention_heads=spec.size.tiny["heads"],
            max_position_embeddings=512,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
    )
    llm.save_pretrained(str(folder / "llm"))
    tower = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=spec.tower.hidden_size,
            intermediate_size=spec.tower.tiny["intermediate"],
            num_hidden_layers=spec.tower.tiny["layers"],
            num_attention_heads=spec.tower.tiny["heads"],
            image_size=spec.resolution,
            patch_size=spec.tower.patch_size,
        )
    )
    tower.save_pretrained(str(folder / "tower"))
    return Parts(
        llm=str(folder / "llm"), tower=str(folder / "tower"), tokenizer=str(folder / "tokenizer")
    )
