"""`harness eval --model` on a LoRA stage-2 output: the adapters merged in memory through the
backend its manifest names, or one line saying to run `harness merge`."""

from __future__ import annotations

import json
import shutil

import pytest
from _llava_hf import call_cli
from _train_fixtures import model_spec, train_spec, write_parts

from harness.eval import load_model

pytestmark = pytest.mark.slow


def far_from_zero(model) -> None:
    """Set the LoRA B matrices (zero at init) far from zero, so that merging them matters."""
    import torch

    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


@pytest.fixture
def lora_output(tmp_path, monkeypatch):
    """A LoRA stage-2 folder as the LoRA backend saves it (adapter/, spec, manifest), with
    adapters far from zero so that merging them changes the model."""
    from harness_plugins.backends.lora import LoRA

    import harness.model.assemble as assemble
    from harness.model import build_llava

    parts = write_parts(tmp_path / "parts")
    monkeypatch.setattr(assemble, "parts_for", lambda spec, **kw: parts)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HARNESS_ASSETS_MIRROR", raising=False)
    backend = LoRA()
    bundle = backend.prepare(build_llava(model_spec()), train_spec("lora"))
    far_from_zero(bundle.model)
    out = tmp_path / "lora-stage2"
    out.mkdir()
    backend.save(bundle, out)
    return out, bundle


def test_a_lora_output_is_merged_in_memory_and_answers_as_trained(lora_output):
    import torch

    out, trained = lora_output
    loaded = load_model(str(out))
    assert type(loaded.model).__name__ == "LlavaForConditionalGeneration"  # merged, no PEFT
    ids = trained.tokenizer("two red squares", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ours = loaded.model(input_ids=ids).logits
        theirs = trained.model.eval()(input_ids=ids).logits
        base = trained.model.get_base_model()
        with trained.model.disable_adapter():
            untouched = base(input_ids=ids).logits
    assert torch.allclose(ours, theirs, atol=1e-4)
    assert not torch.allclose(ours, untouched, atol=1e-2)  # the adapters matter


def test_harness_eval_runs_a_lora_output(lora_output, tmp_path, capsys):
    out, _ = lora_output
    config = tmp_path / "in-process.toml"
    config.write_text('extends = "default"\n[executor]\nmax_parallel = 1\n'
                      "[eval]\nmax_new_tokens = 4\n")  # fmt: skip
    run = tmp_path / "run"
    argv = ["eval", "--model", str(out), "--benchmarks", "vicuna-80", "--out", str(run)]
    code, lines = call_cli([*argv, "--config", str(config)], capsys)
    assert code == 0, lines
    (cell,) = json.loads((run / "results.json").read_text())["cells"]
    assert cell["axes"]["method"] == "checkpoint" and cell["benchmarks"]["vicuna-80"]["n_items"]


def test_an_adapter_it_cannot_load_says_to_run_harness_merge(lora_output, tmp_path, capsys):
    from harness.train.adapters import ADAPTER_DIR, META_FILE

    out, _ = lora_output
    manifest = out / META_FILE
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "method": "dora"}))
    argv = ["eval", "--model", str(out), "--benchmarks", "vicuna-80", "--out", str(tmp_path / "r")]
    code, lines = call_cli(argv, capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "method 'dora'" in lines[0] and f"run `harness merge {out} --out DIR`" in lines[0]

    bare = shutil.copytree(out / ADAPTER_DIR, tmp_path / "bare-adapter")  # PEFT files alone
    code, lines = call_cli([*argv[:2], str(bare), *argv[3:]], capsys)
    assert code == 2 and len(lines) == 1, lines
    assert "a PEFT adapter without the base weights" in lines[0] and "harness merge" in lines[0]
    assert not (tmp_path / "r").exists()


def test_a_qlora_output_is_evaluated_as_harness_run_evaluates_it(tmp_path, monkeypatch):
    """A QLoRA output trained on a 4-bit base: `harness eval` answers exactly as `harness run`
    evaluates the cell (the backend's own load), with the trained adapters in. Nothing trains
    after a forward in this process (a no-grad forward repacks 4-bit weights on the CPU)."""
    import torch
    from harness_plugins.backends.qlora import QLoRA

    import harness.model.assemble as assemble
    from harness.model import build_llava
    from harness.specs import QuantSpec

    parts = write_parts(tmp_path / "parts")
    monkeypatch.setattr(assemble, "parts_for", lambda spec, **kw: parts)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    backend = QLoRA()
    quant = QuantSpec()
    bundle = backend.prepare(
        build_llava(model_spec(), quantization=quant), train_spec("qlora", quantization=quant)
    )
    far_from_zero(bundle.model)
    out = tmp_path / "qlora-stage2"
    out.mkdir()
    backend.save(bundle, out)
    loaded = load_model(str(out))
    as_run = backend.load(model_spec(), out)  # what `harness run` evaluates a QLoRA cell with
    ids = bundle.tokenizer("two red squares", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ours = loaded.model(input_ids=ids).logits
        run_logits = as_run.model(input_ids=ids).logits
        trained = bundle.model.eval()(input_ids=ids).logits
        with bundle.model.disable_adapter():
            untouched = bundle.model(input_ids=ids).logits
    assert torch.allclose(ours, run_logits, atol=1e-5)  # eval answers as run evaluates
    # the trained adapters are there: nearer the trained model than the base without them
    assert (ours - trained).abs().mean() < 0.5 * (ours - untouched).abs().mean()
