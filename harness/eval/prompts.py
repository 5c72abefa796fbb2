"""How a request becomes the text a model reads: one of the study's conversation formats, or the
checkpoint's own chat template.

`prompt` (an eval setting, `harness eval --prompt`) picks the rendering of generation requests:
`vicuna_v1` and `llava_v1` are LLaVA's formats (harness.model.templates), `checkpoint` is the
model's chat template through `apply_chat_template`, with the image as a `{"type": "image"}`
part when the template reads typed parts (llava-hf's do) and as the `<image>` text otherwise.
The rendered text keeps the `<image>` placeholder; only the token ids expand it to the image's
patch tokens. Samples record that text, so every answer can be audited against its prompt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.model.templates import IMAGE_TOKEN, image_token_id, render
from harness.protocols import GenerationRequest, LoglikRequest

PROMPTS = ("checkpoint", "vicuna_v1", "llava_v1")
PROTOCOL_PROMPT = "vicuna_v1"  # what the study's generation benchmarks were evaluated with
# where a checkpoint keeps its chat template, in the order transformers writes them
TEMPLATE_FILES = (
    ("chat_template.jinja", None),
    ("chat_template.json", "chat_template"),
    ("tokenizer_config.json", "chat_template"),
    ("processor_config.json", "chat_template"),
)


def read_chat_template(folder: str | Path) -> tuple[str, str] | None:
    """(file name, template) of a checkpoint folder's chat template; None when it has none."""
    root = Path(folder)
    for name, field in TEMPLATE_FILES:
        path = root / name
        if not path.is_file():
            continue
        if field is None:
            return name, path.read_text()
        try:
            value = json.loads(path.read_text()).get(field)
        except (ValueError, AttributeError):
            raise UserError(f"{path} is not valid JSON") from None
        if isinstance(value, str) and value:
            return name, value
    return None


def default_prompt(has_chat_template: bool) -> str:
    """A checkpoint that carries a chat template is prompted with it; one without is prompted
    the study's way."""
    return "checkpoint" if has_chat_template else PROTOCOL_PROMPT


def _user_content(template: str, prompt: str) -> Any:
    if "type" not in template:  # a template of plain string contents
        return prompt
    parts: list[dict[str, str]] = []
    text = prompt
    if IMAGE_TOKEN in prompt:
        parts.append({"type": "image"})
        text = prompt.replace(IMAGE_TOKEN, "").strip()
    parts.append({"type": "text", "text": text})
    return parts


def render_chat(tokenizer: Any, prompt: str) -> str:
    """One user turn through the tokenizer's chat template, ending where the model answers."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise UserError(
            "prompt 'checkpoint': the model's tokenizer has no chat template "
            "(choose --prompt vicuna_v1 or llava_v1)"
        )
    messages = [{"role": "user", "content": _user_content(template, prompt)}]
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # noqa: BLE001 - a template's own error (jinja raise_exception)
        raise UserError(f"prompt 'checkpoint': the model's chat template fails: {exc}") from None
    if text.count(IMAGE_TOKEN) != prompt.count(IMAGE_TOKEN):
        raise UserError(
            f"prompt 'checkpoint': the model's chat template renders {text.count(IMAGE_TOKEN)} "
            f"{IMAGE_TOKEN} for a prompt with {prompt.count(IMAGE_TOKEN)} image"
        )
    return text


def rendered_prompt(tokenizer: Any, req: GenerationRequest | LoglikRequest) -> str:
    """The text the model reads for `req`, images as `<image>` (what samples record)."""
    if isinstance(req, LoglikRequest):
        return req.context
    if req.template == "raw":
        return req.prompt
    if req.template == "checkpoint":
        return render_chat(tokenizer, req.prompt)
    return render([{"from": "human", "value": req.prompt}], req.template, generation=True)


def prompt_token_ids(tokenizer: Any, req: GenerationRequest, image_tokens: int) -> list[int]:
    """The prompt's token ids, each `<image>` expanded to `image_tokens` ids. A rendered text
    that already starts with the BOS token (templates that write it) gets no second one."""
    text = rendered_prompt(tokenizer, req)
    bos = getattr(tokenizer, "bos_token", None)
    special = not (bos and text.startswith(bos))
    ids = list(tokenizer(text, add_special_tokens=special)["input_ids"])
    if IMAGE_TOKEN not in text:
        return ids
    image_id = image_token_id(tokenizer)
    return [t for tok in ids for t in [tok] * (image_tokens if tok == image_id else 1)]
