"""The synthetic world: a seeded generator of images, training data and benchmark mini sets,
written in the official file formats so the same loaders read it as the real data."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from harness.data.synthetic.pretrain import pretrain_text, tower_samples
from harness.data.synthetic.scenes import IMAGE_SIZE, LABEL_CLASSES
from harness.support.atomic import build_folder_once
from harness.support.content_versions import SYNTHETIC_VERSION as VERSION
from harness.support.hashing import sha256_parts

SCALES = ("small", "medium")

__all__ = [
    "LABEL_CLASSES",
    "SCALES",
    "VERSION",
    "generator_digest",
    "pretrain_text",
    "synthetic_root",
    "tower_samples",
    "write_world",
]


def write_world(out_dir: Path, seed: int = 0, scale: str = "small") -> Path:
    """Write the whole world into `out_dir`; the same seed and scale give identical bytes."""
    from harness.data.synthetic.benchsets import (
        write_llava_bench,
        write_mm_vet,
        write_mmbench,
        write_vicuna,
    )
    from harness.data.synthetic.mmlu import write_mmlu
    from harness.data.synthetic.readme import WORLD_README
    from harness.data.synthetic.training import write_training
    from harness.errors import UserError

    if scale not in SCALES:
        raise UserError(f"unknown synthetic scale {scale!r}: choose one of {', '.join(SCALES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = write_training(out, seed, scale)
    counts["llava-bench"] = write_llava_bench(out / "llava-bench", seed, scale)
    counts["mm-vet"] = write_mm_vet(out / "mm-vet", seed, scale)
    counts["mmbench"] = write_mmbench(out / "mmbench", seed, scale)
    counts["vicuna-80"] = write_vicuna(out / "vicuna-80", seed)
    counts["mmlu"] = write_mmlu(out / "mmlu", seed, scale)
    manifest = {
        "version": VERSION,
        "seed": seed,
        "scale": scale,
        "image_size": IMAGE_SIZE,
        "image_folder": "images",
        "counts": counts,
    }
    (out / "world.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    readme = WORLD_README.format(seed=seed, scale=scale, image_size=IMAGE_SIZE)
    (out / "README.md").write_text(readme, encoding="utf-8")
    return out


@lru_cache(maxsize=1)
def generator_digest() -> str:
    """Fingerprint of the generator's code: a world cached by an edited generator (a version
    not bumped yet, or a checkout switched back and forth) is never reused."""
    files = sorted(Path(__file__).parent.glob("*.py"))
    return sha256_parts(path.name.encode() + b"\0" + path.read_bytes() for path in files)[:10]


def synthetic_root(seed: int = 0, scale: str = "small") -> Path:
    """The world for (seed, scale) in the cache, written once (atomically) and reused."""
    from harness.support.paths import cache_dir

    target = cache_dir("synthetic") / f"v{VERSION}-{seed}-{scale}-{generator_digest()}"
    return build_folder_once(target, lambda folder: write_world(folder, seed, scale))
