"""A tiny random LLaVA (and its LLM alone) built from configs in a second, no download."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.eval.loading import EvalBundle

WORDS = "the red square sits left of a blue circle and two green stars count three".split()


def tiny_tokenizer():
    from harness.model.tokenizer import train_tokenizer

    texts = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 4
    texts += ["USER: ASSISTANT: A chat between a curious user and an artificial intelligence"]
    texts += [f"Answer: {letter}\n" for letter in "ABCD"] * 8
    return train_tokenizer(texts, vocab_size=320)


def _scramble(model: torch.nn.Module, seed: int) -> None:
    """Random weights with a wide spread, so greedy choices are decided by clear margins."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:  # matrices: ~unit-variance activations; norms stay at 1
                std = 2.0 / param.shape[1] ** 0.5
                param.copy_(torch.randn(param.shape, generator=generator) * std)


def tiny_llava(seed: int = 0) -> EvalBundle:
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = tiny_tokenizer()
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    vision = CLIPVisionConfig(
        hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
        image_size=16, patch_size=8,
    )  # fmt: skip
    config = LlavaConfig(
        vision_config=vision, text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=4, vision_feature_layer=-2, vision_feature_select_strategy="default",
    )  # fmt: skip
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    _scramble(model, seed)
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
    )
    return EvalBundle(model, tokenizer, processor)


def tiny_llm(seed: int = 0) -> EvalBundle:
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    _scramble(model, seed)
    return EvalBundle(model, tokenizer, None)


def save(bundle: EvalBundle, folder: Path) -> Path:
    bundle.model.save_pretrained(str(folder))
    bundle.tokenizer.save_pretrained(str(folder))
    if bundle.image_processor is not None:
        bundle.image_processor.save_pretrained(str(folder))
    return folder


def write_images(folder: Path, n: int) -> list[str]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img{i}.png"
        colour = ((70 * i) % 256, (130 + 40 * i) % 256, (200 - 50 * i) % 256)
        image = Image.new("RGB", (20, 16), colour)
        image.putpixel((i % 20, i % 16), (255, 255, 255))
        image.save(path)
        paths.append(str(path))
    return paths


def one_thread():
    """Tiny models are overhead-bound: one intra-op thread is faster and immune to a busy CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def mixed_requests(images: list[str], beams: int = 1) -> list:
    """Seven image questions of growing length, one text-only and one raw-template request."""
    from harness.protocols import GenerationRequest

    reqs = [
        GenerationRequest(
            id=f"q{i}",
            prompt="<image>\n" + " ".join(WORDS[: i + 1]) + "?",
            image=images[i % 3],
            max_new_tokens=8,
            num_beams=beams,
        )
        for i in range(7)
    ]
    reqs.append(GenerationRequest(id="text", prompt="the red square", max_new_tokens=8))
    reqs.append(GenerationRequest(id="raw", prompt="two green", template="raw", max_new_tokens=5))
    return reqs
