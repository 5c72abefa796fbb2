"""Tiny foundation models shipped with the project, used like a verified download.

Pretraining the default experiment's foundations (the world's tokenizer, the tiny towers and the
two tiny LLMs) costs about fifteen minutes of CPU, most of a first `make run`. So the project
ships the folders `harness foundations ship` built, under harness/model/shipped/<cache key>/,
with every file's sha256 pinned in shipped/index.json. When the cache lacks a foundation whose
exact key is shipped and the copy matches its pins, the copy goes into the cache instead of a
build. The key holds everything that determines the model (spec, seed, steps, the world's
content, FOUNDATION_VERSION), so a changed recipe never uses a stale copy: it builds, and the
test that the default experiment's foundations are all shipped fails until they are re-shipped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from harness.support.hashing import sha256_file

SHIPPED = Path(__file__).resolve().parent / "shipped"
INDEX = "index.json"
OFF = "HARNESS_NO_SHIPPED"  # set (to 1) to build every foundation, as `ship` does

log = logging.getLogger(__name__)


def read_index(root: Path = SHIPPED) -> dict[str, dict[str, str]]:
    """cache key -> {file name: sha256} of every shipped foundation folder."""
    path = root / INDEX
    return json.loads(path.read_text()) if path.is_file() else {}


def copy_shipped(key: str, target: Path, root: Path = SHIPPED) -> bool:
    """Fill `target` with the shipped folder of `key` if there is one and every file matches
    its pin; False (and `target` left empty) otherwise, so the caller builds instead."""
    if os.environ.get(OFF):
        return False
    pins = read_index(root).get(key)
    if not pins:
        return False
    folder = root / key
    for name, sha in pins.items():
        source = folder / name
        if not source.is_file() or sha256_file(source) != sha:
            log.warning("shipped foundation %s: %s does not match its pin; building it", key, name)
            for written in target.iterdir():
                written.unlink()
            return False
        shutil.copyfile(source, target / name)
    return True


def ship(folders: list[Path], root: Path = SHIPPED) -> dict[str, dict[str, str]]:
    """Make `folders` (built cache folders) the shipped set: copy them, pin them, drop the rest."""
    root.mkdir(parents=True, exist_ok=True)
    keep = {folder.name for folder in folders}
    for old in root.iterdir():
        if old.is_dir() and old.name not in keep:
            shutil.rmtree(old)
    index: dict[str, dict[str, str]] = {}
    for folder in folders:
        target = root / folder.name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target)
        index[folder.name] = {p.name: sha256_file(p) for p in sorted(target.iterdir())}
    (root / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return index
