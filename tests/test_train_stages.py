"""Stage 1 and the three stage-2 backends on a tiny LLaVA: what trains, what is saved, records."""

from __future__ import annotations

import pytest
import torch
from _train_fixtures import Spy, cell, open_world
from harness_plugins.backends.full import FullFineTune
from harness_plugins.backends.lora import LoRA
from harness_plugins.backends.qlora import QLoRA

from harness.train import STAGE1_FILE, run_stage1, run_stage2
from harness.train.params import part_of

pytestmark = pytest.mark.slow
BACKENDS = {"full": FullFineTune(), "lora": LoRA(), "qlora": QLoRA()}

# First losses for seed 0 (fp32 on CPU): a change here means training is no longer reproducible
# or the data, template or model changed.
PINNED_FIRST_LOSS = {"stage1": 5.77626, "full": 5.75821, "lora": 5.75821, "qlora": 5.75284}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("train")
    w = open_world(root, mp)
    spy = Spy(mp)
    w.stage1_dir = root / "stage1"
    w.stage1_record = run_stage1(cell(w.mix, "full"), w.stage1_dir, lambda line: None)
    w.stage1_changed = spy.changed()
    w.runs = {}
    for name, backend in BACKENDS.items():
        out = root / f"stage2-{name}"
        lines: list[str] = []
        record = run_stage2(cell(w.mix, name), backend, w.stage1_dir, out, lines.append)
        w.runs[name] = (record, out, spy.changed(), spy.model, lines)
    yield w
    mp.undo()


def test_stage1_trains_and_saves_only_the_projector(world):
    assert {part_of(n) for n in world.stage1_changed} == {"projector"}
    assert sorted(p.name for p in world.stage1_dir.iterdir()) == [STAGE1_FILE]
    rec = world.stage1_record
    assert rec.trainable_params == 32 * 32 + 32  # one linear layer, tower width -> LLM width
    assert rec.steps == 4 and rec.samples == 32


def test_full_trains_llm_and_projector_not_tower(world):
    record, out, changed, model, _ = world.runs["full"]
    assert {part_of(n) for n in changed} == {"llm", "projector"}
    assert all(not p.requires_grad for n, p in model.named_parameters() if part_of(n) == "tower")
    assert (out / "config.json").is_file() and not (out / "checkpoints").exists()
    from harness.train.params import params_of

    assert record.trainable_params == record.total_params - params_of(model, "tower")


def test_lora_trains_only_adapters_and_projector(world):
    record, out, changed, model, _ = world.runs["lora"]
    assert changed and all("lora_" in n or part_of(n) == "projector" for n in changed)
    assert any("lora_B" in n for n in changed) and any(part_of(n) == "projector" for n in changed)
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert record.trainable_params == 9_760  # rank-8 adapters on 14 layers + the projector
    assert record.total_params == world.runs["full"][0].total_params + 9_760 - 1_056


def test_qlora_trains_over_a_4bit_llm(world):
    import bitsandbytes as bnb

    record, out, changed, model, _ = world.runs["qlora"]
    kinds = {n: type(m) for n, m in model.named_modules()}
    llm_linears = [
        n for n in kinds if n.endswith("language_model.layers.0.self_attn.q_proj.base_layer")
    ]
    assert llm_linears and kinds[llm_linears[0]] is bnb.nn.Linear4bit
    for suffix in ("vision_tower.encoder.layers.0.self_attn.q_proj", "lm_head"):
        name = next(n for n in kinds if n.endswith(suffix))
        assert kinds[name] is torch.nn.Linear, name
    assert any("lora_B" in n for n in changed)
    assert all("lora_" in n or part_of(n) == "projector" for n in changed)
    assert record.total_params == world.runs["lora"][0].total_params  # 4-bit counted unpacked


def test_first_losses_are_pinned_for_a_fixed_seed(world):
    got = {"stage1": world.stage1_record.first_loss}
    got.update({name: run[0].first_loss for name, run in world.runs.items()})
    assert got == pytest.approx(PINNED_FIRST_LOSS, abs=2e-4)
    assert all(run[0].last_loss < run[0].first_loss for run in world.runs.values())


def test_records_measure_the_work(world):
    for name, (record, *_rest) in world.runs.items():
        assert record.stage == "stage2" and record.method == name
        assert (record.steps, record.samples, record.gpus) == (4, 32, 0)
        assert record.tokens > 32 * 16  # image tokens alone are 16 per sample
        assert record.wall_s > 0 and record.peak_mem_mb > 0 and record.mfu is None
        assert record.gpu_hours_per_node == pytest.approx(record.wall_s / 3600, rel=1e-3)
        assert record.tokens_per_s == pytest.approx(record.tokens / record.wall_s, rel=1e-2)
        assert record.samples_per_s == pytest.approx(32 / record.wall_s, rel=1e-2)


def test_backends_load_what_they_saved(world):
    spec = cell(world.mix, "full").model
    full = BACKENDS["full"].load(spec, world.runs["full"][1])
    assert type(full.model).__name__ == "LlavaForConditionalGeneration"
    lora = BACKENDS["lora"].load(spec, world.runs["lora"][1])
    assert type(lora.model).__name__ == "LlavaForConditionalGeneration"  # merged
    qlora = BACKENDS["qlora"].load(spec, world.runs["qlora"][1])
    assert type(qlora.model).__name__ == "PeftModel"
    assert "Linear4bit" in {type(m).__name__ for m in qlora.model.modules()}


def test_lora_merge_gives_the_same_logits(world, tmp_path):
    from harness.data.mix import build_mix
    from harness.model import load_bundle
    from harness.model.collate import LlavaCollator
    from harness.train.adapters import load_adapter

    spec = cell(world.mix, "lora").model
    out = world.runs["lora"][1]
    adapter = load_adapter(spec, out, merge=False)
    assert type(adapter.model).__name__ == "PeftModel"
    batch = LlavaCollator(adapter, "vicuna_v1", 320)(build_mix(world.mix, 2)[:3])
    merged = load_bundle(_merge_cli(out, tmp_path / "merged"))
    assert type(merged.model).__name__ == "LlavaForConditionalGeneration"
    with torch.no_grad():
        a = adapter.model(**batch).logits
        b = merged.model(**batch).logits
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()


def test_an_interrupted_stage_resumes_from_its_last_checkpoint(world, tmp_path, monkeypatch):
    import transformers

    import harness.train.loop as loop

    monkeypatch.setattr(loop, "MIN_SAVE_STEPS", 1)  # a checkpoint after every step
    real_step, calls = transformers.Trainer.training_step, []

    def crash_in_step_3(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # micro batch 5 = the first of optimizer step 3
            raise RuntimeError("simulated crash")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "training_step", crash_in_step_3)
    out, lines = tmp_path / "stage2", []
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_stage2(cell(world.mix, "lora"), BACKENDS["lora"], world.stage1_dir, out, lines.append)
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    monkeypatch.setattr(transformers.Trainer, "training_step", real_step)
    record = run_stage2(
        cell(world.mix, "lora"), BACKENDS["lora"], world.stage1_dir, out, lines.append
    )
    assert any(line.startswith("resuming from") and "checkpoint-2" in line for line in lines)
    uninterrupted = world.runs["lora"][0]
    assert (record.steps, record.samples) == (4, 32)
    assert record.first_loss == pytest.approx(uninterrupted.first_loss, abs=1e-6)
    assert record.last_loss == pytest.approx(uninterrupted.last_loss, abs=1e-5)
    assert not (out / "checkpoints").exists()


def _merge_cli(ckpt, out):
    """`harness merge CKPT --out DIR` through its typer command."""
    import typer
    from typer.testing import CliRunner

    from harness.cli import merge

    app = typer.Typer()
    merge.register(app)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["merge", str(ckpt), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "merged model written to" in result.output
    return out


def test_a_finished_stage_writes_no_checkpoint_of_its_last_step(world, tmp_path, monkeypatch):
    """Only mid-stage checkpoints are saved: the final model is written by the stage itself."""
    import transformers

    import harness.train.loop as loop

    monkeypatch.setattr(loop, "MIN_SAVE_STEPS", 3)  # a checkpoint at step 3 of 4
    saved: list[int] = []
    real_save = transformers.Trainer._save_checkpoint

    def spy(self, *args, **kwargs):
        saved.append(self.state.global_step)
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "_save_checkpoint", spy)
    record = run_stage2(
        cell(world.mix, "lora"), BACKENDS["lora"], world.stage1_dir, tmp_path / "s2", print
    )
    assert record.steps == 4 and saved == [3]
