"""A checkpoint's files: their content fingerprint (for step keys) and the checks they pass
before any step runs.

The fingerprint is the sha256 of every file that decides the model's answers — config,
tokenizer, processor, chat template, weights (index and shards), a training output's adapter
and manifest — so that replacing any of them at the same path gives new step keys. Weight files
are hashed once and remembered by path, size, mtime and inode (harness.support.fingerprint). A
hub id is keyed by the revision it resolves to, and its small files (everything but the
weights) are fetched into the local hub cache before planning and checked as a folder's are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.model.hub_sources import hub_offline
from harness.support.fingerprint import file_sha256

FINGERPRINT_SUFFIXES = {".json", ".jinja", ".model", ".txt", ".safetensors", ".bin", ".tiktoken"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "vocab.txt")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
# What a hub id's checks, description and prompt read: config, tokenizer, processor, template.
HUB_SMALL_FILES = ["*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken"]


def _content_files(folder: Path) -> list[Path]:
    """The folder's model files and those of its `adapter/` (a training output's adapters)."""
    from harness.train.adapters import ADAPTER_DIR

    found = []
    for root in (folder, folder / ADAPTER_DIR):
        if root.is_dir():
            found += [
                p
                for p in sorted(root.iterdir())
                if p.is_file()
                and not p.name.startswith(".")
                and p.suffix.lower() in FINGERPRINT_SUFFIXES
            ]
    return found


def hub_revision(repo: str) -> str | None:
    """The commit a hub id resolves to now (the hub, else the local cache's `main`); None when
    neither can tell."""
    if not hub_offline():
        try:
            from huggingface_hub import HfApi

            return HfApi().model_info(repo, timeout=10).sha
        except Exception:  # noqa: BLE001 - offline or gated: fall back to the cache
            pass
    try:
        from huggingface_hub.constants import HF_HUB_CACHE

        ref = Path(HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "refs" / "main"
        return ref.read_text().strip() if ref.is_file() else None
    except Exception:  # noqa: BLE001
        return None


def hub_snapshot(repo: str) -> Path:
    """The local hub cache's folder of `repo` at the revision it resolves to, holding its small
    files (fetched now unless HF_HUB_OFFLINE); one line when it cannot be had."""
    from huggingface_hub import snapshot_download

    offline = hub_offline()
    try:
        folder = snapshot_download(
            repo,
            revision=hub_revision(repo),
            allow_patterns=HUB_SMALL_FILES,
            local_files_only=offline,
        )
    except Exception as exc:  # noqa: BLE001 - offline, gated, unknown id: one line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = (
            "is not in the local hub cache (HF_HUB_OFFLINE is set)"
            if offline
            else f"could not be fetched: {reason}"
        )
        raise UserError(f"--model {repo}: not a folder, and as a hub id it {where}") from None
    return Path(folder)


def checkpoint_fingerprint(ref: str) -> dict[str, Any]:
    """What a checkpoint's step keys follow: each model file's sha256, or a hub id's revision."""
    folder = Path(ref)
    if folder.is_dir():
        files = _content_files(folder)
        return {"files": {p.relative_to(folder).as_posix(): file_sha256(p) for p in files}}
    return {"hub": ref, "revision": hub_revision(ref)}


# --- checks before any step ----------------------------------------------------------------------


def _json(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise UserError(f"{path} is not a JSON object")
    return body


def _check_training_output(folder: Path) -> None:
    """A stage-2 adapter folder: the spec and adapters it is loaded from, and its backend."""
    from harness.model.assemble import SPEC_FILE
    from harness.plugins import get_plugins
    from harness.train.adapters import ADAPTER_DIR, META_FILE

    method = _json(folder / META_FILE).get("method")
    for needed in (SPEC_FILE, f"{ADAPTER_DIR}/adapter_config.json"):
        if not (folder / needed).is_file():
            raise UserError(f"{folder}: {needed} is missing (a stage-2 training output has it)")
    if method not in get_plugins().names("backend"):
        raise UserError(
            f"{folder} was trained by method {method!r}, whose backend is not installed here: "
            f"run `harness merge {folder} --out DIR` where it is, and evaluate DIR"
        )


def _check_tokenizer(folder: Path, config: dict[str, Any]) -> Any:
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(
            f"{folder}: no tokenizer file (tokenizer.json, tokenizer.model or vocab.json)"
        )
    from harness.eval.loading import load_tokenizer

    try:
        tokenizer = load_tokenizer(str(folder))
    except Exception as exc:  # noqa: BLE001 - any library error: one line naming the folder
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{folder}: its tokenizer does not load: {line}") from None
    text = config.get("text_config") or config
    vocab = text.get("vocab_size")
    if vocab and len(tokenizer) > int(vocab):
        raise UserError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens but config.json's vocab_size "
            f"is {vocab}"
        )
    image_id = config.get("image_token_index", config.get("image_token_id"))
    if config.get("model_type") == "llava" and image_id is not None:
        from harness.model.templates import IMAGE_TOKEN

        found = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        if found != int(image_id):
            raise UserError(
                f"{folder}: the tokenizer's {IMAGE_TOKEN} token has id {found} but config.json's "
                f"image_token_index is {image_id}"
            )
    return tokenizer


def _check_processor(folder: Path, config: dict[str, Any], benchmarks: list[str]) -> None:
    files = [name for name in PROCESSOR_FILES if (folder / name).is_file()]
    nested = any(
        name == PROCESSOR_FILES[0] or "image_processor" in _json(folder / name) for name in files
    )
    if not nested:
        raise UserError(
            f"{folder}: no image processor file ({PROCESSOR_FILES[0]}, or "
            f"{PROCESSOR_FILES[1]} with an image_processor), needed by {', '.join(benchmarks)}"
        )
    from harness.eval.loading import load_image_processor

    load_image_processor(str(folder), config)


def check_files(ref: str, image_benchmarks: list[str], prompt: str | None) -> Any:
    """Config, tokenizer and (when image benchmarks are selected) image processor of a
    checkpoint folder or a hub id's cached files, present and consistent: one line naming the
    file otherwise. Returns the loaded tokenizer (None for a training output, checked when it
    loads)."""
    from harness.eval.loading import is_bare_adapter
    from harness.train.adapters import META_FILE

    folder = Path(ref) if Path(ref).is_dir() else hub_snapshot(ref)
    if (folder / META_FILE).is_file():
        _check_training_output(folder)
        return None
    if is_bare_adapter(folder):
        raise UserError(
            f"{folder} holds a PEFT adapter without the base weights or {META_FILE}: merge it "
            "into its base model first (`harness merge` for a harness training output)"
        )
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder}: no config.json (not a transformers checkpoint folder)")
    config = _json(folder / "config.json")
    tokenizer = _check_tokenizer(folder, config)
    if prompt == "checkpoint" and not getattr(tokenizer, "chat_template", None):
        raise UserError(
            f"{folder}: --prompt checkpoint, but the checkpoint has no chat template "
            "(chat_template.jinja, or chat_template in tokenizer_config.json)"
        )
    if image_benchmarks and config.get("model_type") == "llava":
        _check_processor(folder, config, image_benchmarks)
    return tokenizer
