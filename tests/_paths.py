"""Protocol files for tests, reached only through the harness's own assets mechanism.

They come from a mirror folder (HARNESS_ASSETS_MIRROR, which `make test` sets where one lies
beside the project) or from the verified assets cache (`harness assets fetch`). A fresh clone has
neither: the tests that need them skip with one reason, and the rest of the suite runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.config import assets

ROOT = Path(__file__).resolve().parent.parent
SKIP_REASON = (
    "protocol files unavailable: run `harness assets fetch` "
    "(or set HARNESS_ASSETS_MIRROR to a mirror folder)"
)


def _verified_files() -> dict[str, Path]:
    """Every registry asset whose file the mirror or the cache holds with the pinned sha256.

    Read once at import, before any test points HARNESS_CACHE at a temporary folder."""
    mirror = os.environ.get("HARNESS_ASSETS_MIRROR") or None
    found = {}
    for name, spec in assets.asset_specs().items():
        candidates = [Path(mirror) / spec.mirror] if mirror else []
        candidates.append(spec.cache_path)
        for path in candidates:
            if path.is_file() and assets.sha256_bytes(path.read_bytes()) == spec.sha256:
                found[name] = path
                break
    return found


VERIFIED = _verified_files()


def protocol_file(name: str) -> Path:
    """The verified file of registry asset `name`; the calling test skips when it is absent."""
    if name not in VERIFIED:
        pytest.skip(f"{SKIP_REASON} [{name}]")
    return VERIFIED[name]


def protocol_mirror(folder: Path) -> Path:
    """A mirror folder (the registry's `mirror` layout) holding every asset, made in `folder`.

    Tests of the mirror mechanism itself need one; it is rebuilt from the verified files, so it
    exists wherever every asset is available, and the test skips otherwise."""
    specs = assets.asset_specs()
    missing = sorted(set(specs) - set(VERIFIED))
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        pytest.skip(f"{SKIP_REASON} [{shown}]")
    for name, spec in specs.items():
        target = folder / spec.mirror
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(VERIFIED[name], target)
    return folder
