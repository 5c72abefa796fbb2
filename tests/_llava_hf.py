"""Tiny checkpoints in the llava-hf layout, as a user downloads them: random weights, a small
trained tokenizer, a chat template, LlavaForConditionalGeneration + LlavaProcessor saved by
transformers itself (config.json, model.safetensors, tokenizer files, processor_config.json,
chat_template.jinja). Built from configs in about a second, no download."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _eval_fixtures import tiny_llava

# llava-hf/llava-1.5-7b-hf's chat template (its chat_template.json)
LLAVA_15_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
# a ChatML template of plain string contents (Qwen/Hermes-style fine-tunes)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def siglip_processor(size: int):
    """SigLIP's preprocessing: a plain resize to size x size, mean and std 0.5 (CLIP's are not)."""
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    return SiglipImageProcessorPil(
        size={"height": size, "width": size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )


def llava_processor(bundle, template: str | None):
    from transformers import LlavaProcessor

    return LlavaProcessor(
        image_processor=bundle.image_processor,
        tokenizer=bundle.tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by "default"
        image_token="<image>",
        chat_template=template,
    )


def build_llava_hf(
    folder: Path,
    *,
    seed: int = 0,
    template: str | None = LLAVA_15_TEMPLATE,
    processor: str = "clip",
    processor_size: int = 16,
) -> Path:
    """A tiny llava-hf checkpoint at `folder` (a 16-px CLIP-style tower, patch 8: 4 image
    tokens). `processor` "siglip" ships SigLIP's preprocessing; `processor_size` another than
    the tower's 16 px makes a mismatched checkpoint; `template` None ships no chat template."""
    bundle = tiny_llava(seed)
    if processor == "siglip":
        bundle.image_processor = siglip_processor(processor_size)
    elif processor_size != 16:
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        side = {"height": processor_size, "width": processor_size}
        bundle.image_processor = CLIPImageProcessorPil(
            size={"shortest_edge": processor_size}, crop_size=side
        )
    bundle.model.save_pretrained(str(folder))
    llava_processor(bundle, template).save_pretrained(str(folder))
    return folder


def as_hub_download(folder: Path, hub_cache: Path, repo: str, revision: str = "c" * 40) -> Path:
    """`folder` laid out as the local hub cache holds a downloaded `repo`: refs/main naming
    the revision, the files under snapshots/REVISION (which the harness reads offline).
    Returns the snapshot folder."""
    import shutil

    root = hub_cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(revision)
    shutil.copytree(folder, root / "snapshots" / revision)
    return root / "snapshots" / revision


def replace_weights(folder: Path, seed: int) -> None:
    """Other random weights saved over the checkpoint's, at the same path."""
    tiny_llava(seed).model.save_pretrained(str(folder))


def drop(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).unlink()


def strip_image_processor(folder: Path) -> None:
    """The processor config without its image processor (tokenizer-only processor files)."""
    path = folder / "processor_config.json"
    body = json.loads(path.read_text())
    body.pop("image_processor", None)
    path.write_text(json.dumps(body))


def call_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """The `harness` console script in this process: exit code and output lines."""
    old, sys.argv = sys.argv, ["harness", *argv]
    try:
        from harness.cli import app as cli

        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, [line for line in (captured.out + captured.err).splitlines() if line.strip()]
