"""Load a model to evaluate: a saved harness model, a llava-hf checkpoint, or a plain causal LM."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError


@dataclass
class EvalBundle:
    """What the engine needs: a model, its tokenizer, and an image processor (None for an LLM)."""

    model: Any
    tokenizer: Any
    image_processor: Any = None
    source: str = ""


def _config(ref: str) -> dict[str, Any]:
    local = Path(ref)
    if local.is_dir():
        path = local / "config.json"
        if not path.is_file():
            raise UserError(f"{ref}: no config.json (not a transformers checkpoint folder)")
        return json.loads(path.read_text())
    if ref.startswith((".", "/", "~")):
        raise UserError(f"{ref}: no such checkpoint folder")
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(ref).to_dict()
    except OSError as exc:
        raise UserError(f"cannot load model {ref!r} from the hub: {exc}") from None


def _tokenizer(ref: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ref)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def load_model(ref: str, dtype: Any = None) -> Any:
    """A bundle for `ref` (folder or hub id): LlavaBundle for ours, EvalBundle otherwise."""
    from harness.model.assemble import SPEC_FILE

    if Path(ref).is_dir() and (Path(ref) / SPEC_FILE).is_file():
        from harness.model.persist import load_bundle

        return load_bundle(Path(ref), dtype=dtype)
    config = _config(ref)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    if config.get("model_type") == "llava":
        from transformers import LlavaForConditionalGeneration
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        model = LlavaForConditionalGeneration.from_pretrained(ref, **kwargs).eval()
        processor = CLIPImageProcessorPil.from_pretrained(ref)
        return EvalBundle(model, _tokenizer(ref), processor, source=ref)
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(ref, **kwargs).eval()
    except ValueError as exc:
        raise UserError(f"{ref}: not a causal LM or LLaVA checkpoint ({exc})") from None
    return EvalBundle(model, _tokenizer(ref), None, source=ref)


def load_base_llm(spec: Any) -> EvalBundle:
    """The untouched LLM of a ModelSpec (Table 5's base rows): tiny foundation or hub model."""
    from transformers import AutoModelForCausalLM

    from harness.model.assemble import default_dtype, parts_for

    parts = parts_for(spec)
    model = AutoModelForCausalLM.from_pretrained(parts.llm, dtype=default_dtype(spec)).eval()
    return EvalBundle(model, _tokenizer(parts.tokenizer), None, source=parts.llm)
