"""Where the harness keeps caches (built tiny models, the synthetic world) and its registry."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """HARNESS_CACHE (default ~/.cache/harness) joined with `parts`, created on demand."""
    root = Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]  # harness/support/paths.py


def default_registry_file() -> Path:
    """The registry shipped with the project (HARNESS_REGISTRY replaces it)."""
    override = os.environ.get("HARNESS_REGISTRY")
    return Path(override) if override else project_root() / "registry.toml"
