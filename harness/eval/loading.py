"""Load a model to evaluate: a saved harness model, a stage-2 training output (adapters included),
a llava-hf checkpoint, or a plain causal LM."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.train.adapters import META_FILE


@dataclass
class EvalBundle:
    """What the engine needs: a model, its tokenizer, and an image processor (None for an LLM)."""

    model: Any
    tokenizer: Any
    image_processor: Any = None
    source: str = ""
    # loads the image processor when a request first needs one (harness.eval.engine)
    load_image_processor: Callable[[], Any] | None = None


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


def load_tokenizer(ref: str) -> Any:
    """The checkpoint's tokenizer, with a pad token and its chat template."""
    from transformers import AutoTokenizer

    from harness.eval.prompts import read_chat_template

    tokenizer = AutoTokenizer.from_pretrained(ref)
    if not getattr(tokenizer, "chat_template", None) and Path(ref).is_dir():
        found = read_chat_template(ref)  # a processor's template the tokenizer did not read
        if found:
            tokenizer.chat_template = found[1]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


class ModelLoadError(UserError):
    """The model itself failed to load: the message names the model, never a benchmark."""

    def __init__(self, ref: str, cause: BaseException):
        super().__init__(f"cannot load model {ref}: {type(cause).__name__}: {cause}")


def load_model(ref: str, dtype: Any = None) -> Any:
    """A bundle for `ref` (folder or hub id): LlavaBundle for ours, EvalBundle otherwise; any
    failure is one line naming `ref`."""
    try:
        return _load(ref, dtype)
    except UserError:
        raise
    except Exception as exc:  # a library's error while reading the checkpoint
        raise ModelLoadError(ref, exc) from exc


def _load(ref: str, dtype: Any) -> Any:
    from harness.model.assemble import SPEC_FILE

    folder = Path(ref)
    if folder.is_dir() and (folder / META_FILE).is_file():
        return load_stage2_adapter(folder)
    if folder.is_dir() and is_bare_adapter(folder):
        raise UserError(
            f"{ref} holds a PEFT adapter without the base weights or {META_FILE}: merge it "
            "into its base model first (`harness merge` for a harness training output)"
        )
    if folder.is_dir() and (folder / SPEC_FILE).is_file():
        from harness.model.persist import load_bundle

        return load_bundle(folder, dtype=dtype)
    config = _config(ref)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    if config.get("model_type") == "llava":
        from transformers import LlavaForConditionalGeneration

        model = LlavaForConditionalGeneration.from_pretrained(ref, **kwargs).eval()
        return EvalBundle(
            model,
            load_tokenizer(ref),
            None,
            source=ref,
            load_image_processor=lambda: load_image_processor(ref, config),
        )
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(ref, **kwargs).eval()
    except ValueError as exc:
        raise UserError(f"{ref}: not a causal LM or LLaVA checkpoint ({exc})") from None
    return EvalBundle(model, load_tokenizer(ref), None, source=ref)


def is_bare_adapter(folder: Path) -> bool:
    """A PEFT adapter folder (or one holding `adapter/`) with no base model weights."""
    from harness.train.adapters import ADAPTER_DIR

    adapter = (folder / "adapter_config.json").is_file()
    nested = (folder / ADAPTER_DIR / "adapter_config.json").is_file()
    return (adapter or nested) and not (folder / "config.json").is_file()


def load_stage2_adapter(folder: Path) -> Any:
    """A LoRA/QLoRA (or plugin PEFT method's) stage-2 output, through the backend that trained
    it, named in its adapter manifest: LoRA adapters come back merged into the base weights in
    memory, QLoRA keeps its 4-bit base as it was trained and evaluated by `harness run`."""
    from harness.model.persist import read_spec
    from harness.plugins import get_plugins

    manifest = folder / META_FILE
    try:
        method = json.loads(manifest.read_text()).get("method")
    except (ValueError, AttributeError):
        raise UserError(f"{manifest} is not valid JSON") from None
    plugins = get_plugins()
    if method not in plugins.names("backend"):
        raise UserError(
            f"{folder} was trained by method {method!r}, whose backend is not installed here: "
            f"run `harness merge {folder} --out DIR` where it is, and evaluate DIR"
        )
    return plugins.backend(method).load(read_spec(folder), folder)


def processor_image_size(processor: Any) -> int | None:
    """The side of the square images the processor hands the tower (its crop, else its size)."""
    for name in ("crop_size", "size"):
        if name == "crop_size" and not getattr(processor, "do_center_crop", False):
            continue
        value = getattr(processor, name, None)
        value = value if isinstance(value, dict) else getattr(value, "__dict__", {})
        if value.get("height") and value.get("width") and value["height"] == value["width"]:
            return int(value["height"])
    return None


def load_image_processor(ref: str, config: dict[str, Any]) -> Any:
    """The image processor the checkpoint ships (CLIP's, SigLIP's, ...: AutoImageProcessor),
    refused in one line when its image size is not the vision tower's."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(ref)
    except (OSError, ValueError) as exc:
        raise UserError(f"{ref}: cannot load its image processor: {exc}") from None
    check_processor_size(ref, processor, config)
    return processor


def check_processor_size(ref: str, processor: Any, config: dict[str, Any]) -> None:
    tower = (config.get("vision_config") or {}).get("image_size")
    size = processor_image_size(processor)
    if tower and size and int(tower) != size:
        raise UserError(
            f"{ref}: the image processor makes {size}-px images but the vision tower takes "
            f"{tower} px (config.json vision_config.image_size)"
        )


def load_base_llm(spec: Any) -> EvalBundle:
    """The untouched LLM of a ModelSpec (Table 5's base rows): tiny foundation or hub model."""
    from transformers import AutoModelForCausalLM

    from harness.model.assemble import default_dtype
    from harness.model.foundation import parts_for

    parts = parts_for(spec)
    model = AutoModelForCausalLM.from_pretrained(parts.llm, dtype=default_dtype(spec)).eval()
    return EvalBundle(model, load_tokenizer(parts.tokenizer), None, source=parts.llm)
