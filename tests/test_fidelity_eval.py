"""`harness eval --model` describes the model it evaluated, not the registry size behind it."""

from __future__ import annotations

import json

import pytest
from _eval_fixtures import save, tiny_llava, tiny_tokenizer
from typer.testing import CliRunner

from harness.config.registry import load_registry
from harness.eval.loading import EvalBundle
from harness.model.assemble import SPEC_FILE
from harness.plan.eval_model import describe
from harness.specs import ModelSpec

TRAINING_FIELDS = ("sizes", "methods", "mixes", "stage1", "stage2", "projector", "resolutions")
TRAINING_FIELDS += ("eval", "data")  # the default experiment's, for benchmarks not evaluated


def llama_of_its_own(folder):
    """A LLaMA whose widths match no registry size (tiny-1m is 96 wide with 3 layers)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=40, intermediate_size=72, num_hidden_layers=3,
        num_attention_heads=4, max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    save(EvalBundle(model, tokenizer, None), folder)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_eval_names_counts_and_records_the_checkpoint_itself(tmp_path, monkeypatch):
    from harness.cli.app import app

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HARNESS_ASSETS_MIRROR", raising=False)
    params = llama_of_its_own(tmp_path / "my-llama-40")
    out = tmp_path / "run"
    args = ["eval", "--model", str(tmp_path / "my-llama-40"), "--benchmarks", "mmlu"]
    config = tmp_path / "in-process.toml"  # one step at a time, in this process
    config.write_text('extends = "default"\n[executor]\nmax_parallel = 1\n')
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    (cell,) = results["cells"]
    assert cell["id"] == "my-llama-40_checkpoint"
    assert cell["axes"] == {"size": "my-llama-40", "method": "checkpoint"}
    assert cell["model"]["size"] == "my-llama-40"
    assert cell["model"]["params_b"] == params / 1e9  # its own count, not tiny-1m's 0.00062
    stage2 = cell["train"]["stage2"]
    assert stage2["method"] == "checkpoint" and stage2["total_params"] == params
    assert cell["benchmarks"]["mmlu"]["n_items"] == 200
    experiment = results["experiment"]
    assert experiment["name"] == "eval-my-llama-40" and experiment["method"] == "checkpoint"
    assert experiment["model"]["params"] == params
    assert experiment["model"]["ref"] == str((tmp_path / "my-llama-40").resolve())
    assert experiment["benchmarks"] == ["mmlu"]
    (evaluated,) = experiment["evals"].values()  # each benchmark's settings as it ran
    assert evaluated["benchmark"] == "mmlu" and evaluated["source"]["kind"] == "synthetic"
    assert not set(TRAINING_FIELDS) & set(experiment)  # no training settings of `default`
    report = CliRunner().invoke(app, ["report", str(out), "--format", "md"])
    assert report.exit_code == 0, report.output
    text = (out / "report" / "report.md").read_text()
    assert "my-llama-40" in text and "tiny-1m" not in text


def test_a_llava_checkpoint_is_described_by_its_own_config_and_weights(tmp_path, monkeypatch):
    from harness.plan.build import Options
    from harness.plan.eval_model import checkpoint_plan
    from harness.plugins import get_plugins

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    bundle = tiny_llava()
    folder = save(bundle, tmp_path / "llava-16px")
    every = sum(p.numel() for p in bundle.model.parameters())
    info = describe(str(folder))
    assert (info.name, info.params, info.hidden_size) == ("llava-16px", every, 32)
    assert info.multimodal is True
    assert info.vision == {"image_size": 16, "patch_size": 8, "hidden_size": 24,
                           "projector": "mlp2x_gelu"}  # fmt: skip
    opts = Options(benchmarks="mmbench", out=tmp_path / "run")
    (cell,) = checkpoint_plan(opts, get_plugins(), str(folder)).cells.values()
    assert cell.id == "llava-16px_checkpoint"
    assert cell.axes == {"size": "llava-16px", "method": "checkpoint"}
    assert (cell.model.size.name, cell.model.size.params_b) == ("llava-16px", every / 1e9)
    model = cell.model
    assert (model.resolution, model.image_tokens, model.projector) == (16, 4, "mlp2x_gelu")
    # saved by the harness with a one-layer projector: the identity second layer its loader
    # folds away is not counted
    registry = load_registry()
    tower = registry.tower("tiny-clip")
    spec = ModelSpec(size=registry.size("tiny-1m"), tower=tower, resolution=tower.resolutions[0])
    (folder / SPEC_FILE).write_text(spec.canonical() + "\n")
    second = bundle.model.model.multi_modal_projector.linear_2
    info = describe(str(folder))
    assert info.params == every - sum(p.numel() for p in second.parameters())
    assert info.vision["projector"] == "linear"
