"""Built artefacts cached like downloads: written to a temporary folder, renamed into place.

A folder that exists is complete (the rename is atomic); a lock file serialises concurrent
builders of the same key so that two processes never train the same foundation twice. A
foundation the project ships (harness.model.shipped) is copied, checked, instead of built.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.model.shipped import copy_shipped
from harness.support.atomic import build_folder_once
from harness.support.paths import cache_dir


def cached_folder(kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """cache_dir(kind)/key, calling build(tmp_folder) first when it does not exist yet."""

    def build_or_copy(folder: Path) -> None:
        if not (kind == "foundation" and copy_shipped(key, folder)):
            build(folder)

    return build_folder_once(cache_dir(kind) / key, build_or_copy)
