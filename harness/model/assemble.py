"""Assemble a transformers LlavaForConditionalGeneration from an LLM, a CLIP tower and a projector.

Real sizes start from the size's LLM checkpoint and the tower's checkpoint at the resolution;
tiny sizes from the cached tiny foundation models (`harness.model.foundation`). Features are
LLaVA's: the tower's penultimate layer, patch tokens only (CLS dropped). With a QuantSpec the
LLM is loaded 4- or 8-bit through bitsandbytes, with the tower, projector and lm_head kept
unquantized (QLoRA).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.model.cache import cached_folder
from harness.model.foundation import parts_for
from harness.model.parts import Parts
from harness.model.projector import LinearProjector, fold_linear, load_projector
from harness.model.templates import IMAGE_TOKEN
from harness.specs import ModelSpec, QuantSpec, sha256_of

SKIP_QUANTIZATION = ["model.vision_tower", "model.multi_modal_projector", "lm_head"]
SPEC_FILE = "harness_model_spec.json"
ASSEMBLY_VERSION = "1"  # part of the key of a cached full-precision assembly


@dataclass
class LlavaBundle:
    """A LLaVA model with what feeds it: tokenizer, image processor, and the spec it came from."""

    model: Any  # LlavaForConditionalGeneration (or a PEFT wrapper of one)
    tokenizer: Any
    image_processor: Any
    spec: ModelSpec

    @property
    def image_tokens(self) -> int:
        return self.spec.image_tokens

    def encode_images(self, images: list) -> torch.Tensor:
        """pixel_values for PIL images, in the model's dtype."""
        pixels = self.image_processor([im.convert("RGB") for im in images], return_tensors="pt")
        tower = (p for n, p in self.model.named_parameters() if "vision_tower" in n)
        return pixels["pixel_values"].to(next(tower).dtype)


def default_dtype(spec: ModelSpec) -> torch.dtype:
    return torch.float32 if spec.size.tiny is not None else torch.bfloat16


def image_processor_for(spec: ModelSpec, parts: Parts) -> Any:
    """CLIP preprocessing (resize shortest edge, centre crop, CLIP mean/std); PIL backend."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    if spec.tower.tiny is not None:
        res = spec.resolution
        return CLIPImageProcessorPil(
            size={"shortest_edge": res}, crop_size={"height": res, "width": res}
        )
    return CLIPImageProcessorPil.from_pretrained(parts.tower)


def load_tokenizer(path: str) -> Any:
    """The LLM's tokenizer with `<image>` and a pad token (LLaVA pads v1 with unk)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def _llava_config(spec: ModelSpec, llm_config: Any, tower_config: Any, tokenizer: Any) -> Any:
    from transformers import LlavaConfig

    return LlavaConfig(
        vision_config=tower_config,
        text_config=llm_config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=spec.image_tokens,
        projector_hidden_act="linear" if spec.projector == "linear" else "gelu",
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        multimodal_projector_bias=True,
        tie_word_embeddings=bool(getattr(llm_config, "tie_word_embeddings", False)),
    )


def assemble(spec: ModelSpec, parts: Parts, dtype: torch.dtype, seed: int = 0) -> Any:
    """A full-precision LLaVA built from `parts`, with a freshly initialised projector."""
    from transformers import AutoModelForCausalLM, CLIPVisionModel, LlavaForConditionalGeneration
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    tokenizer = load_tokenizer(parts.tokenizer)
    llm = AutoModelForCausalLM.from_pretrained(parts.llm, dtype=dtype)
    if llm.get_input_embeddings().num_embeddings < len(tokenizer):
        llm.resize_token_embeddings(len(tokenizer))
    tower = CLIPVisionModel.from_pretrained(parts.tower, dtype=dtype)
    config = _llava_config(spec, llm.config, tower.config, tokenizer)
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    model.model.vision_tower = tower
    model.model.language_model = llm.model
    model.lm_head = llm.lm_head
    torch.manual_seed(seed)
    if spec.projector == "linear":
        projector = LinearProjector(tower.config.hidden_size, llm.config.hidden_size)
    else:
        projector = LlavaMultiModalProjector(config)
    model.model.multi_modal_projector = projector.to(dtype)
    model.config.dtype = dtype
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def assembled_dir(spec: ModelSpec, parts: Parts, dtype: torch.dtype) -> Path:
    """A full-precision assembly of `spec` saved with save_pretrained (for quantized reloads)."""
    key = sha256_of(
        {
            "spec": spec.model_dump(mode="json"),
            "parts": vars(parts),
            "dtype": str(dtype),
            "v": ASSEMBLY_VERSION,
        }
    )[:16]

    def build(tmp: Path) -> None:
        assemble(spec, parts, dtype).save_pretrained(str(tmp))

    return cached_folder("assembled", f"{spec.size.name}-{spec.resolution}-{key}", build)


def use_linear_projector(model: Any, spec: ModelSpec, missing: list[str] = ()) -> Any:
    """After a plain from_pretrained: fold the two-layer linear projector back into one layer.

    A checkpoint written without our state-dict hook (e.g. gathered by DeepSpeed ZeRO-3) lacks
    `linear_2`: from_pretrained then initialised it randomly, so it is dropped, not folded.
    """
    projector = model.model.multi_modal_projector
    if spec.projector != "linear" or isinstance(projector, LinearProjector):
        return model
    if any("multi_modal_projector.linear_2" in key for key in missing):
        with torch.no_grad():
            projector.linear_2.weight.copy_(torch.eye(projector.linear_2.out_features))
            projector.linear_2.bias.zero_()
    model.model.multi_modal_projector = fold_linear(projector)
    return model


def bnb_config(quantization: QuantSpec) -> Any:
    from transformers import BitsAndBytesConfig

    compute = getattr(torch, quantization.compute_dtype)
    if quantization.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=SKIP_QUANTIZATION)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quantization.quant_type,
        bnb_4bit_use_double_quant=quantization.double_quant,
        bnb_4bit_compute_dtype=compute,
        llm_int8_skip_modules=SKIP_QUANTIZATION,
    )


def build_llava(
    spec: ModelSpec,
    *,
    quantization: QuantSpec | None = None,
    projector_path: Path | None = None,
    dtype: torch.dtype | None = None,
) -> LlavaBundle:
    """The LLaVA model of `spec`; with `projector_path`, stage 1's projector loaded into it."""
    dtype = dtype or default_dtype(spec)
    parts = parts_for(spec)
    if quantization is None:
        model = assemble(spec, parts, dtype)
    else:
        model = _quantized(spec, parts, quantization, dtype)
    bundle = LlavaBundle(
        model, load_tokenizer(parts.tokenizer), image_processor_for(spec, parts), spec
    )
    if projector_path is not None:
        load_projector(model, Path(projector_path))
    return bundle


def _quantized(spec: ModelSpec, parts: Parts, quantization: QuantSpec, dtype: torch.dtype) -> Any:
    """Assemble once in full precision (cached on disk), then reload with the LLM quantized."""
    from transformers import LlavaForConditionalGeneration

    folder = assembled_dir(spec, parts, dtype)
    model = LlavaForConditionalGeneration.from_pretrained(
        str(folder),
        quantization_config=bnb_config(quantization),
        dtype=dtype,
        device_map=quantized_device_map(),
    )
    keep_cpu_4bit_layout(model)
    return use_linear_projector(model, spec).eval()


def quantized_device_map() -> dict[str, int] | None:
    """Where a quantized model must load: this process's GPU (bitsandbytes quantizes on load,
    and a quantized model cannot be moved afterwards), or None on a machine without one."""
    if not torch.cuda.is_available():
        return None
    return {"": int(os.environ.get("LOCAL_RANK", "0"))}


def keep_cpu_4bit_layout(model: Any) -> None:
    """Turn off bitsandbytes' CPU repacking of 4-bit weights on the first no-grad forward.

    The repack needs every input width to be a multiple of the quantization block (64) and
    leaves the weights unusable for training afterwards; the plain 4-bit matmul needs neither.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
