"""The shipped tiny foundations: every one the default experiment needs is shipped and pinned,
a cache miss copies it instead of pretraining, a tampered copy is never used, and the copies
are what the recipe builds (tokenizer and towers here; the LLMs, 15 CPU minutes, on request)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.cli.foundations import build_fresh, foundation_needs
from harness.model import foundation
from harness.model.shipped import OFF, SHIPPED, copy_shipped, read_index
from harness.support.hashing import sha256_file

SHIP_HINT = "run `harness foundations ship` to rebuild and pin them"


@pytest.fixture(scope="module")
def needs():
    return foundation_needs("default")


def _keys(needs, monkeypatch) -> dict[str, str]:
    """The cache keys the default experiment's foundations have (kind -> key), unbuilt."""
    recorded: dict[str, str] = {}

    def record(kind: str, key: str, build) -> Path:
        recorded[key] = kind
        return Path("/unbuilt") / key

    monkeypatch.setattr(foundation, "cached_folder", record)
    for size, tower, resolution, seed in needs:
        foundation.ensure_foundation(size, tower, resolution, seed=seed)
    return recorded


def test_every_foundation_of_the_default_experiment_is_shipped_and_pinned(needs, monkeypatch):
    index = read_index()
    missing = sorted(set(_keys(needs, monkeypatch)) - set(index))
    assert not missing, f"not shipped: {missing}; {SHIP_HINT}"
    for key, pins in index.items():
        folder = SHIPPED / key
        assert sorted(p.name for p in folder.iterdir()) == sorted(pins), key
        assert {name: sha256_file(folder / name) for name in pins} == pins, key


def test_a_cache_miss_copies_the_shipped_folder_instead_of_pretraining(
    needs, tmp_path, monkeypatch
):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(OFF, raising=False)

    def no_training(*args, **kwargs):
        raise AssertionError("a shipped foundation was pretrained again")

    monkeypatch.setattr("harness.model.pretrain.train_tower", no_training)
    monkeypatch.setattr("harness.model.pretrain.train_llm", no_training)
    monkeypatch.setattr("harness.model.tokenizer.train_tokenizer", no_training)
    size, tower, resolution, seed = needs[0]
    parts = foundation.ensure_foundation(size, tower, resolution, seed=seed)
    for folder in map(Path, (parts.llm, parts.tower, parts.tokenizer)):
        assert folder.parent == tmp_path / "cache" / "foundation"
        pins = read_index()[folder.name]
        assert {p.name: sha256_file(p) for p in folder.iterdir()} == pins


def test_a_tampered_copy_is_never_used(tmp_path):
    root = tmp_path / "shipped"
    shutil.copytree(SHIPPED, root)
    key = next(k for k in read_index(root) if k.startswith("tokenizer-"))
    (root / key / "tokenizer.json").write_text("{}")
    target = tmp_path / "target"
    target.mkdir()
    assert copy_shipped(key, target, root=root) is False
    assert list(target.iterdir()) == []


def _same_files(fresh: Path) -> None:
    """Every file but the build's own manifest (timings) equals the shipped copy byte for byte."""
    shipped = SHIPPED / fresh.name
    names = sorted(p.name for p in fresh.iterdir() if p.name != "manifest.json")
    assert names == sorted(p.name for p in shipped.iterdir() if p.name != "manifest.json")
    for name in names:
        assert sha256_file(fresh / name) == sha256_file(shipped / name), f"{fresh.name}/{name}"


@pytest.mark.slow
def test_the_shipped_tokenizer_and_towers_are_what_the_recipe_builds(needs, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(OFF, "1")
    for size, tower, resolution, seed in {(n[1].name, n[2], n[3]): n for n in needs}.values():
        _same_files(foundation.tower_dir(tower, resolution, seed))
        _same_files(foundation.tokenizer_dir(int(size.tiny["vocab"]), seed))


@pytest.mark.skipif(
    not os.environ.get("HARNESS_CHECK_SHIPPED_LLMS"),
    reason="rebuilding the tiny LLMs costs about 15 CPU minutes: set HARNESS_CHECK_SHIPPED_LLMS=1",
)
def test_the_shipped_llms_are_what_the_recipe_builds(needs, tmp_path):
    for folder in build_fresh(needs, tmp_path / "cache"):
        _same_files(folder)
