"""Save and load a trained LLaVA bundle in transformers' own layout.

The folder is what `LlavaForConditionalGeneration.from_pretrained`, `AutoTokenizer` and
`AutoProcessor` (a LlavaProcessor that expands `<image>` to the patch count) read, plus the
ModelSpec as JSON, so that the harness gets its spec back and anyone else gets a plain
transformers model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harness.errors import UserError
from harness.model.assemble import SPEC_FILE, LlavaBundle, use_linear_projector
from harness.model.templates import IMAGE_TOKEN
from harness.specs import ModelSpec


def save_bundle(bundle: LlavaBundle, out_dir: Path) -> Path:
    """save_pretrained of model, tokenizer and image processor, plus the spec JSON."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bundle.model.save_pretrained(str(out))
    bundle.tokenizer.save_pretrained(str(out))
    processor_for(bundle).save_pretrained(str(out))
    (out / SPEC_FILE).write_text(bundle.spec.canonical() + "\n")
    return out


def processor_for(bundle: LlavaBundle):
    """transformers' LlavaProcessor for the bundle: CLIP preprocessing + image-token expansion."""
    from transformers import LlavaProcessor

    return LlavaProcessor(
        image_processor=bundle.image_processor,
        tokenizer=bundle.tokenizer,
        patch_size=bundle.spec.tower.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by "default"
        image_token=IMAGE_TOKEN,
    )


def read_spec(folder: Path) -> ModelSpec:
    path = Path(folder) / SPEC_FILE
    if not path.is_file():
        raise UserError(f"{folder} is not a saved harness model: {SPEC_FILE} is missing")
    try:
        return ModelSpec.model_validate(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path} is not a valid model spec: {exc}") from None


def load_bundle(out_dir: Path, *, dtype: torch.dtype | None = None) -> LlavaBundle:
    """The bundle saved by save_bundle, with a linear projector folded back to one layer."""
    from transformers import AutoTokenizer, LlavaForConditionalGeneration
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    folder = Path(out_dir)
    spec = read_spec(folder)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    model, info = LlavaForConditionalGeneration.from_pretrained(
        str(folder), output_loading_info=True, **kwargs
    )
    model = use_linear_projector(model, spec, list(info.get("missing_keys", ()))).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    processor = CLIPImageProcessorPil.from_pretrained(str(folder))
    return LlavaBundle(model, tokenizer, processor, spec)
