"""The example training method (DoRA on the PEFT helpers) installed like a user would: listed,
planned with LoRA's settings, and a tiny cell trained whose record counts what trained.

The package is copied out of the tree before installing, so building it leaves no files behind.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from _plugins_venv import clean_env, pip_install, run
from _train_fixtures import Spy, cell, open_world

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "harness-example-backend"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example installed (not editable) into a folder, as pip would into site-packages."""
    folder = tmp_path_factory.mktemp("example-backend")
    source = folder / "harness-example-backend"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__py*"))
    pip_install(Path(sys.executable), "--target", folder / "site", source)
    return folder / "site"


def _harness(site: Path, *args, cwd: Path):
    env = clean_env(PYTHONPATH=str(site))
    return run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, timeout=300)


def test_installed_package_passes_its_own_tests(site):
    tested = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", EXAMPLE / "tests"],
        cwd=site,
        env=clean_env(PYTHONPATH=str(site)),
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed" in tested.stdout


def test_listed_from_its_package_and_planned_beside_lora_without_a_warning(site, tmp_path):
    listed = _harness(site, "plugins", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)["registered"]}
    dora = rows[("backend", "dora")]
    assert (dora["package"], dora["version"]) == ("harness-example-backend", "0.1.0")

    config = EXAMPLE / "ci" / "tiny.toml"
    matrix = "sizes=tiny-1m,tiny-2m methods=lora,dora"
    planned = _harness(site, "plan", "--config", config, "--matrix", matrix, cwd=tmp_path)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "tiny-1m_dora" in planned.stdout and "tiny-2m_dora" in planned.stdout
    assert "differ in" not in planned.stdout  # dora inherits LoRA's lr, rank and steps


@pytest.fixture(scope="module")
def trained(site, tmp_path_factory):
    """One tiny DoRA cell and one whose save merges the adapter first, on the test world."""
    import torch

    from harness.model import save_bundle
    from harness.train import run_stage1, run_stage2
    from harness.train.params import count_params

    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(site))
    from harness_example_backend.plugin import DoRA

    class CountingDoRA(DoRA):
        """The example's DoRA, counting the parameters that require grad when save starts."""

        def save(self, bundle, out_dir):
            self.before_save = sum(p.numel() for p in bundle.model.parameters() if p.requires_grad)
            super().save(bundle, out_dir)

    class MergingDoRA(CountingDoRA):
        """Folds the adapter into the weights inside save, as some methods do."""

        name = "dora-merged"

        def save(self, bundle, out_dir):
            self.before_save = sum(p.numel() for p in bundle.model.parameters() if p.requires_grad)
            bundle.model = bundle.model.merge_and_unload()
            self.counted_after_save = count_params(bundle.model)
            save_bundle(bundle, out_dir)

    root = tmp_path_factory.mktemp("dora")
    world = open_world(root, mp)
    run_stage1(cell(world.mix, "full"), root / "stage1", lambda line: None)
    runs = {}
    for backend in (CountingDoRA(), MergingDoRA()):
        spy, lines = Spy(mp), []
        dora_cell = cell(world.mix, backend.name, lora_rank=8, lora_alpha=16)
        out = root / backend.name
        record = run_stage2(dora_cell, backend, root / "stage1", out, lines.append)
        changed = spy.changed() if backend.name == "dora" else None  # merged: names changed
        runs[backend.name] = (record, backend.before_save, changed, out, lines, backend)
    yield world, runs
    mp.undo()


@pytest.mark.slow
def test_dora_trains_its_adapters_and_records_what_trained(trained):
    from harness.train.params import part_of

    world, runs = trained
    record, before_save, changed, out, lines, _ = runs["dora"]
    assert record.method == "dora" and record.steps == 4
    assert record.last_loss < record.first_loss
    # LoRA's 9,760 (rank-8 adapters on 14 layers + the projector) plus one magnitude per output
    # feature of each adapted layer: 2 layers x (4 x 32 + 2 x 64 + 32)
    assert record.trainable_params == before_save == 9_760 + 576
    assert f"{before_save:,} of {record.total_params:,} parameters train" in "\n".join(lines)
    assert any("lora_magnitude_vector" in n for n in changed)
    assert all("lora_" in n or part_of(n) == "projector" for n in changed)
    manifest = json.loads((out / "harness_adapter.json").read_text())
    assert manifest == {"method": "dora", "quantization": None}
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert config["use_dora"] is True and config["r"] == 8


@pytest.mark.slow
def test_counts_are_taken_before_a_save_that_merges(trained):
    _, runs = trained
    record, before_save, *_, backend = runs["dora-merged"]
    assert record.trainable_params == before_save == runs["dora"][0].trainable_params
    trainable_after, _ = backend.counted_after_save
    assert trainable_after != before_save  # what a count after save would have reported


@pytest.mark.slow
def test_dora_output_loads_merged_and_merges_like_lora(trained, tmp_path):
    from harness_example_backend.plugin import DoRA

    from harness.model import load_bundle
    from harness.train.peft_helpers import merge_adapter

    world, runs = trained
    out = runs["dora"][3]
    spec = cell(world.mix, "dora").model
    loaded = DoRA().load(spec, out)
    assert type(loaded.model).__name__ == "LlavaForConditionalGeneration"
    merged = load_bundle(merge_adapter(out, tmp_path / "merged"))  # `harness merge`
    assert type(merged.model).__name__ == "LlavaForConditionalGeneration"
