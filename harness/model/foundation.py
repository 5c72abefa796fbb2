"""Tiny foundation models: stand-ins for CLIP and Vicuna, built once per size and seed.

LLaVA starts from a pretrained CLIP and an instruction-tuned LLM; a frozen random tower or a
random LLM teaches a tiny LLaVA almost nothing. So each tiny size gets, from the synthetic
world only (no download): a byte-level BPE tokenizer, a CLIP vision tower pretrained to name
what each image region holds, and a LLaMA-style LLM pretrained on the world's text (and, where
a size asks for it, on letter-format lookup rows: the skill MMLU's letters need). Each is
cached under cache_dir("foundation") by everything that determines it (spec, seed, budget,
version, the world's content), written atomically and reused, like a download. Each folder
holds a manifest.json with its build time (wall and CPU seconds: on a busy machine the CPU
time is the figure that compares), parameter count and final training figures.

`parts_for` says where any size's pieces come from: these folders for a tiny size, the
registry's checkpoints for a real one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from harness.errors import UserError
from harness.model.cache import cached_folder
from harness.model.parts import Parts
from harness.specs import ModelSpec, SizeSpec, TowerSpec, sha256_of
from harness.support.content_versions import FOUNDATION_VERSION

TOWER_IMAGES = 3000
TOWER_STEPS = 300  # batch 64: about 20 s on one busy CPU core
LLM_BLOCK = 256  # MMLU's 5-shot prompts are 182-199 tokens, stage-2 samples up to 256
LLM_BATCH = 8
LLM_STEPS = 300  # a size's `tiny.pretrain_steps` in the registry overrides this
LOOKUP_DRILLS = (1.0, 0.5)  # share of drills in lookup rows, first to last (the rest: practice)


def _manifest(folder: Path, **fields: Any) -> None:
    (folder / "manifest.json").write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n")


def read_manifest(folder: Path | str) -> dict[str, Any]:
    return json.loads((Path(folder) / "manifest.json").read_text())


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def world_text_key(seed: int) -> str:
    """Fingerprint of the world's pretraining text: a changed world never reuses old models."""
    from harness.data.synthetic import pretrain_text

    return sha256_of(pretrain_text(seed=seed))[:12]


def world_images_key(resolution: int, seed: int) -> str:
    """Fingerprint of the tower's training images (the first few, and the world's version)."""
    from harness.data.synthetic import VERSION, tower_samples

    images, labels = tower_samples(16, resolution, seed)
    return sha256_of({"v": VERSION, "labels": labels, "px": [im.tobytes().hex() for im in images]})


def template_texts(repeats: int = 64) -> list[str]:
    """The chat template's fixed words, so that the vicuna_v1 system line, which every stage-2
    sample carries, costs about one token per word (71 tokens for its 154 characters without)."""
    from harness.model.templates import VICUNA_SYSTEM

    return [f"{VICUNA_SYSTEM} USER: ASSISTANT:"] * repeats


def tokenizer_dir(vocab: int, seed: int) -> Path:
    """The world's BPE tokenizer with `vocab` entries (shared by sizes with the same vocab)."""
    key = f"tokenizer-v{FOUNDATION_VERSION}-vocab{vocab}-seed{seed}-{world_text_key(seed)}"

    def build(tmp: Path) -> None:
        from harness.data.synthetic import pretrain_text
        from harness.model.tokenizer import train_tokenizer

        start, cpu = time.perf_counter(), time.process_time()
        tokenizer = train_tokenizer(pretrain_text(seed=seed) + template_texts(), vocab)
        tokenizer.save_pretrained(str(tmp))
        _manifest(
            tmp,
            kind="tokenizer",
            vocab=len(tokenizer),
            seed=seed,
            seconds=time.perf_counter() - start,
            cpu_seconds=time.process_time() - cpu,
        )

    return cached_folder("foundation", key, build)


def tower_dir(tower: TowerSpec, resolution: int, seed: int, steps: int | None = None) -> Path:
    """A tiny CLIP vision tower pretrained on the world's images at `resolution`."""
    steps = steps or int((tower.tiny or {}).get("pretrain_steps", TOWER_STEPS))
    pooling = str((tower.tiny or {}).get("label_pooling", "flat"))
    key = sha256_of(
        {
            "tower": tower.model_dump(mode="json"),
            "res": resolution,
            "seed": seed,
            "steps": steps,
            "images": TOWER_IMAGES,
            "world": world_images_key(resolution, seed),
            "v": FOUNDATION_VERSION,
        }
    )[:16]

    def build(tmp: Path) -> None:
        from transformers import CLIPVisionConfig, CLIPVisionModel
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        from harness.data.synthetic import tower_samples
        from harness.model.pretrain import one_thread, train_tower

        start, cpu = time.perf_counter(), time.process_time()
        torch.manual_seed(seed)
        cfg = tower.tiny or {}
        model = CLIPVisionModel(
            CLIPVisionConfig(
                hidden_size=tower.hidden_size,
                intermediate_size=cfg.get("intermediate", 128),
                num_hidden_layers=cfg.get("layers", 2),
                num_attention_heads=cfg.get("heads", 4),
                image_size=resolution,
                patch_size=tower.patch_size,
            )
        )
        images, labels = tower_samples(TOWER_IMAGES, resolution, seed)
        processor = CLIPImageProcessorPil(
            size={"shortest_edge": resolution},
            crop_size={"height": resolution, "width": resolution},
        )
        pixels = processor(images, return_tensors="pt")["pixel_values"]
        data_seconds = time.perf_counter() - start
        with one_thread():
            report = train_tower(
                model, pixels, labels, steps=steps, seed=seed, label_pooling=pooling
            )
        model.save_pretrained(str(tmp))
        _manifest(
            tmp,
            kind="tower",
            tower=tower.name,
            resolution=resolution,
            seed=seed,
            steps=steps,
            label_pooling=pooling,
            params=_params(model),
            data_seconds=data_seconds,
            seconds=time.perf_counter() - start,
            cpu_seconds=time.process_time() - cpu,
            train=report,
        )

    return cached_folder("foundation", f"tower-{tower.name}-{resolution}-{key}", build)


def fresh_llm(size: SizeSpec, tokenizer: Any) -> Any:
    """A randomly initialised LLaMA-style LLM of a tiny size's shape (seed torch first)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = size.tiny or {}
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=size.hidden_size,
            intermediate_size=cfg.get("intermediate", 4 * size.hidden_size),
            num_hidden_layers=cfg.get("layers", 2),
            num_attention_heads=cfg.get("heads", 4),
            max_position_embeddings=cfg.get("max_positions", 2048),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
            # LLaMA's 0.02 suits width 4096; at width 96 it leaves attention logits near zero,
            # and the lookup rows need larger ones to form: `qk_init_std` raises only the
            # queries' and keys' (a larger `init_std` for all weights slowed the text's
            # learning: bench/RESULTS.md, "Lookup supervision").
            initializer_range=float(cfg.get("init_std", 0.02)),
        )
    )
    if "qk_init_std" in cfg:  # only the attention logits' scale, the rest at LLaMA's init
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj):
                torch.nn.init.normal_(proj.weight, std=float(cfg["qk_init_std"]))
    return model


def llm_dir(size: SizeSpec, seed: int, steps: int | None = None) -> Path:
    """A tiny LLaMA-style LLM pretrained on the world's text with the world's tokenizer, and,
    where the size sets `tiny.lookup_rows` (rows a step), on attention-supervised lookup rows."""
    cfg = size.tiny or {}
    steps = steps or int(cfg.get("pretrain_steps", LLM_STEPS))
    lookup_batch = int(cfg.get("lookup_rows", 0))
    tok_dir = tokenizer_dir(int(cfg.get("vocab", 2048)), seed)
    fields = {
        "size": size.model_dump(mode="json"),
        "seed": seed,
        "steps": steps,
        "block": LLM_BLOCK,
        "batch": LLM_BATCH,
        "tokenizer": tok_dir.name,
        "v": FOUNDATION_VERSION,
    }
    if lookup_batch:
        fields["lookup_drills"] = LOOKUP_DRILLS
    key = sha256_of(fields)[:16]

    def build(tmp: Path) -> None:
        from transformers import AutoTokenizer

        from harness.data.synthetic import pretrain_text
        from harness.data.synthetic.lookup import lookup_rows
        from harness.model.pretrain import encode_lookup_rows, one_thread, pack_blocks, train_llm

        start, cpu = time.perf_counter(), time.process_time()
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
        torch.manual_seed(seed)
        model = fresh_llm(size, tokenizer)
        texts = pretrain_text(seed=seed)
        ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
        blocks = pack_blocks(ids, tokenizer.eos_token_id, LLM_BLOCK)
        lookup = None
        if lookup_batch:
            rows = lookup_rows(seed, steps * lookup_batch, *LOOKUP_DRILLS)
            lookup = encode_lookup_rows(tokenizer, rows)
        with one_thread():
            report = train_llm(
                model,
                blocks,
                steps=steps,
                batch_size=LLM_BATCH,
                seed=seed,
                lookup=lookup,
                lookup_batch=lookup_batch,
            )
        model.save_pretrained(str(tmp))
        _manifest(
            tmp,
            kind="llm",
            size=size.name,
            seed=seed,
            steps=steps,
            params=_params(model),
            tokens=int(blocks.numel()),
            seconds=time.perf_counter() - start,
            cpu_seconds=time.process_time() - cpu,
            train=report,
        )

    return cached_folder("foundation", f"llm-{size.name}-{key}", build)


def ensure_foundation(
    size: SizeSpec,
    tower: TowerSpec,
    resolution: int,
    *,
    seed: int = 0,
    tower_steps: int | None = None,
    llm_steps: int | None = None,
) -> Parts:
    """The cached tokenizer, LLM and tower of a tiny size (built first where missing)."""
    if size.tiny is None or tower.tiny is None:
        raise ValueError(f"size {size.name!r} with tower {tower.name!r} is not a tiny pair")
    llm = llm_dir(size, seed, llm_steps)
    vision = tower_dir(tower, resolution, seed, tower_steps)
    tokenizer = tokenizer_dir(int(size.tiny.get("vocab", 2048)), seed)
    return Parts(llm=str(llm), tower=str(vision), tokenizer=str(tokenizer))


def parts_for(spec: ModelSpec) -> Parts:
    """Checkpoint locations: the size's and tower's for real sizes; the cached foundation's else
    (built on the world of spec.foundation_seed)."""
    if spec.is_tiny:
        return ensure_foundation(spec.size, spec.tower, spec.resolution, seed=spec.foundation_seed)
    if spec.size.placeholder or not spec.size.llm:
        raise UserError(
            f"size {spec.size.name!r} has no public LLM checkpoint: set `llm` in a registry file"
        )
    tower = spec.tower.checkpoints.get(spec.resolution)
    if tower is None:
        raise UserError(f"tower {spec.tower.name!r} names no checkpoint for {spec.resolution}px")
    return Parts(llm=spec.size.llm, tower=tower, tokenizer=spec.size.llm)
