"""Bad input fails early with one clear line, before any model is built or output written."""

from __future__ import annotations

import sys

import pytest
from _train_fixtures import cell, write_data
from harness_plugins.backends.full import FullFineTune
from harness_plugins.backends.kbit import check_bitsandbytes
from harness_plugins.backends.lora import LoRA, lora_config
from harness_plugins.backends.qlora import QLoRA
from pydantic import ValidationError

from harness.errors import UserError
from harness.specs import TrainSpec
from harness.train import run_stage2


@pytest.fixture(scope="module")
def mix(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp("data"))


@pytest.fixture
def stage1_dir(tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "stage1"
    folder.mkdir()
    save_file({"linear_1.weight": torch.zeros(32, 32)}, str(folder / "projector.safetensors"))
    return folder


def test_rank_zero_is_refused():
    with pytest.raises(ValidationError, match="LoRA rank must be >= 1"):
        TrainSpec(method="lora", lora_rank=0)
    unchecked = TrainSpec.model_construct(method="lora", lora_rank=0, lora_alpha=None)
    with pytest.raises(UserError, match="lora_rank must be an integer >= 1, got 0"):
        lora_config(None, unchecked)
    with pytest.raises(UserError, match="got None"):
        lora_config(None, TrainSpec(method="lora"))


def test_negative_lr_is_refused(mix, stage1_dir, tmp_path):
    with pytest.raises(ValidationError, match="lr must be > 0"):
        TrainSpec(method="full", lr=-1e-4)
    good = cell(mix, "full")
    bad = good.model_copy(update={"stage2": good.stage2.model_copy(update={"lr": -1e-4})})
    with pytest.raises(UserError, match="full: lr must be > 0, got -0.0001"):
        run_stage2(bad, FullFineTune(), stage1_dir, tmp_path / "out", print)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [None, b"not a safetensors file", b""])
def test_missing_or_corrupt_stage1_output_names_the_file(mix, tmp_path, content):
    folder = tmp_path / "stage1"
    folder.mkdir()
    if content is not None:
        (folder / "projector.safetensors").write_bytes(content)
    expected = "missing" if content is None else "corrupt"
    with pytest.raises(UserError, match=f"stage-1 output (is )?{expected}.*projector.safetensors"):
        run_stage2(cell(mix, "lora"), LoRA(), folder, tmp_path / "out", print)
    assert not (tmp_path / "out").exists()


def test_qlora_without_bitsandbytes_support_is_refused(mix, stage1_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    monkeypatch.setitem(sys.modules, "bitsandbytes.functional", None)
    with pytest.raises(UserError, match="QLoRA needs bitsandbytes with 4-bit support"):
        check_bitsandbytes()
    with pytest.raises(UserError, match="QLoRA needs bitsandbytes"):
        run_stage2(cell(mix, "qlora"), QLoRA(), stage1_dir, tmp_path / "out", print)
    assert not (tmp_path / "out").exists()


def test_qlora_refuses_zero3(mix, stage1_dir, tmp_path):
    with pytest.raises(UserError, match="ZeRO-3 does not work with 4-bit"):
        run_stage2(cell(mix, "qlora", zero_stage=3), QLoRA(), stage1_dir, tmp_path / "o", print)


def test_merge_refuses_a_folder_that_is_not_an_adapter(tmp_path):
    import typer
    from typer.testing import CliRunner

    from harness.cli import merge

    app = typer.Typer()
    merge.register(app)
    app.command("noop")(lambda: None)  # typer runs a lone command without its name
    result = CliRunner().invoke(app, ["merge", str(tmp_path), "--out", str(tmp_path / "m")])
    assert isinstance(result.exception, UserError)
    assert "not a LoRA/QLoRA training output" in str(result.exception)
    assert not (tmp_path / "m").exists()
