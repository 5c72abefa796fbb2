"""Built artefacts cached like downloads: written to a temporary folder, renamed into place.

A folder that exists is complete (the rename is atomic); a lock file serialises concurrent
builders of the same key so that two processes never train the same foundation twice. A
foundation the project ships (harness.model.shipped) is copied, checked, instead of built.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.model.shipped import copy_shipped
from harness.support.paths import cache_dir


def cached_folder(kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """cache_dir(kind)/key, calling build(tmp_folder) first when it does not exist yet."""
    root = cache_dir(kind)
    final = root / key
    if final.is_dir():
        return final
    with open(root / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
        try:
            if not (kind == "foundation" and copy_shipped(key, tmp)):
                build(tmp)
            tmp.replace(final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final
