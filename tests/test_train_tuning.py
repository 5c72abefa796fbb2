"""Device tuning (harness.train.tuning): each choice reaches the Trainer, changes nothing that
trains, and is recorded; the steady-state throughput beside the whole stage's.

What needs a GPU (flash attention's kernels, the free-memory reading, compiled kernels worth
their compile time) is measured by bench/gpu_check.py; here the choices run for real on CPU
where they can, and the GPU-only facts are given to the decision functions as numbers.
"""

from __future__ import annotations

import pytest
import torch
from _train_fixtures import cell, world_after_stage1
from harness_plugins.backends.lora import LoRA

from harness.specs import HardwareSpec, TrainSpec
from harness.train import run_stage2
from harness.train import tuning as tuning_mod
from harness.train.measure import Meter, build_record
from harness.train.tuning import (
    activation_bytes,
    checkpointing_for,
    choose_attention,
    loader_workers,
    needs_checkpointing,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuning")
    with world_after_stage1(root) as w:
        w.lines = []
        spec = cell(w.mix, "lora")
        w.default = run_stage2(spec, LoRA(), w.stage1_dir, root / "s2", w.lines.append)
        yield w


def test_a_default_cpu_stage_records_its_tuning_and_steady_throughput(world):
    record = world.default
    assert record.attention == "sdpa"  # the model's own; flash attention needs a GPU
    assert (record.loader_workers, record.gradient_checkpointing, record.compiled) == (
        0,
        False,
        False,
    )
    assert record.steady_tokens_per_s is not None and record.steady_tokens_per_s > 0
    assert record.mfu is None and record.steady_mfu is None  # no peak for a CPU
    assert any(
        line.startswith("tuning: attention sdpa, 0 loader workers, gradient checkpointing off")
        for line in world.lines
    )


@pytest.mark.parametrize(
    "setting, field, value",
    [
        ({"gradient_checkpointing": True}, "gradient_checkpointing", True),
        ({"dataloader_workers": 2}, "loader_workers", 2),
        ({"attention": "eager"}, "attention", "eager"),
    ],
)
def test_each_choice_trains_the_same_model(world, tmp_path, setting, field, value):
    """Recomputed activations (non-reentrant, so LoRA's adapters get gradients through frozen
    embeddings), collation in forked workers and another attention kernel: same losses."""
    record = run_stage2(
        cell(world.mix, "lora", **setting), LoRA(), world.stage1_dir, tmp_path, lambda s: None
    )
    assert getattr(record, field) == value
    assert record.steps == world.default.steps == 4
    assert (record.samples, record.tokens) == (world.default.samples, world.default.tokens)
    assert record.first_loss == pytest.approx(world.default.first_loss, abs=1e-5)
    assert record.last_loss == pytest.approx(world.default.last_loss, abs=1e-5)
    assert record.last_loss != pytest.approx(record.first_loss, abs=1e-4)  # it trained


def test_compile_reaches_the_trainer(world, tmp_path):
    """A real compiled stage is bench/gpu_check.py's: on this CPU inductor takes about 200 s
    to compile the tiny model's 4 steps the first time, too long for the suite."""
    from harness.train.loop import StageRun, training_arguments, tuning_for

    spec = cell(world.mix, "lora", compile=True)
    model = LoRA().load_model(spec.model, spec.stage2, world.stage1_dir).model
    run = StageRun(model, [], lambda b: b, spec.stage2, tmp_path, lambda s: None)
    tuning = tuning_for(run)
    assert tuning.compiled and training_arguments(run, 4, tuning).torch_compile


def test_attention_is_flash_where_a_gpu_has_it_and_kept_as_given(monkeypatch):
    auto = TrainSpec(method="lora")
    assert choose_attention(auto, 0, "sdpa") == "sdpa"
    assert choose_attention(auto, 1, "sdpa") == "sdpa"  # no flash_attn package here
    # The GPU and the flash_attn package cannot be had here: their presence is given.
    monkeypatch.setattr(tuning_mod, "flash_attention_available", lambda: True)
    assert choose_attention(auto, 1, "sdpa") == "flash_attention_2"
    assert choose_attention(auto, 0, "sdpa") == "sdpa"
    assert choose_attention(TrainSpec(method="lora", attention="eager"), 1, "sdpa") == "eager"


def test_loader_workers_none_on_cpu_a_share_of_the_cores_per_gpu_rank(monkeypatch):
    auto = TrainSpec(method="lora")
    monkeypatch.setattr(tuning_mod.os, "cpu_count", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert loader_workers(auto, 0) == 0
    assert loader_workers(auto, 1) == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert loader_workers(auto, 1) == 1  # two cores a rank: one for the rank, one worker
    assert loader_workers(TrainSpec(method="lora", dataloader_workers=3), 0) == 3


def _gpu_check_llm():
    """bench/gpu_check.py's 1.3B LLaMA, as a config (no weights)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=32001,
        hidden_size=2048,
        intermediate_size=5504,
        num_hidden_layers=24,
        num_attention_heads=16,
    )


def test_activation_estimate_is_pinned_for_the_gpu_check_model():
    config = _gpu_check_llm()
    # 8 x 1024 tokens in bf16, per token: a layer keeps (12 x 2048 + 4 x 5504) x 2 = 93,184
    # bytes, the logits 32001 x (2 + 8) = 320,010. Without checkpointing 24 layers' worth;
    # with it each layer's input (2048 x 2 x 24 = 98,304) and one layer recomputed.
    assert activation_bytes(config, 8 * 1024, False, 2) == (24 * 93_184 + 320_010) * 8192
    assert activation_bytes(config, 8 * 1024, True, 2) == (98_304 + 93_184 + 320_010) * 8192
    assert activation_bytes(config, 8 * 1024, False, 2) / 2**30 == pytest.approx(19.5, abs=0.1)


def test_checkpointing_turns_on_only_where_memory_needs_it(world):
    spec = cell(world.mix, "lora")
    model = LoRA().prepare(
        LoRA().load_model(spec.model, spec.stage2, world.stage1_dir), spec.stage2
    )
    train = spec.stage2.model_copy(update={"precision": "bf16", "max_length": 512})
    # The device's free memory is a GPU's reading; here it is given.
    assert needs_checkpointing(model.model, train, 4, 1, free_bytes=2**20)
    assert not needs_checkpointing(model.model, train, 4, 1, free_bytes=2**30)
    assert checkpointing_for(model.model, train, 4, 1, gpus=0) == (
        False,
        "CPU: memory is not the limit",
    )
    forced = train.model_copy(update={"gradient_checkpointing": True})
    assert checkpointing_for(model.model, forced, 4, 1, gpus=0) == (True, "as configured")
    never = train.model_copy(update={"auto_checkpointing": False})
    assert checkpointing_for(model.model, never, 4, 1, gpus=1) == (False, "as configured")


def test_steady_figures_leave_out_the_first_steps(monkeypatch):
    """20 steps: the first 2 (a tenth) are left out; MFU scales the whole stage's FLOPs per
    token by the steady rate."""
    clock = iter([0.0] + [10.0 + step for step in range(20)] + [40.0])
    monkeypatch.setattr("harness.train.measure.time.perf_counter", lambda: next(clock))
    meter = Meter()
    meter.start()
    for step in range(1, 21):
        meter.totals.tokens += 1000
        meter.mark(step)
    meter.stop()
    assert meter.steady() == (17_000, 17.0)  # steps 4..20 after the mark of step 3
    hardware = HardwareSpec(name="h", gpus_per_node=1, peak_tflops_bf16=1.0)
    record = build_record(
        stage="stage2",
        method="lora",
        meter=meter,
        steps=20,
        gpus=1,
        hardware=hardware,
        trainable=1,
        total=1,
        flops=40e12,  # 2e9 per token
    )
    assert record.tokens_per_s == pytest.approx(20_000 / 40)
    assert record.steady_tokens_per_s == pytest.approx(1000)
    assert record.mfu == pytest.approx(1.0)
    assert record.steady_mfu == pytest.approx(2.0)


def test_tuning_at_its_defaults_leaves_the_step_key_alone():
    default = TrainSpec(method="lora")
    for name in ("auto_checkpointing", "attention", "compile", "dataloader_workers"):
        assert name not in default.canonical()
    assert TrainSpec(method="lora", compile=True).sha256() != default.sha256()


def test_an_attention_the_model_refuses_is_one_line_or_kept_when_automatic(world, monkeypatch):
    from harness.errors import UserError
    from harness.train.tuning import apply_attention

    spec = cell(world.mix, "lora")
    model = LoRA().load_model(spec.model, spec.stage2, world.stage1_dir).model
    named = spec.stage2.model_copy(update={"attention": "flash_attention_2"})
    with pytest.raises(UserError, match="attention 'flash_attention_2'"):
        apply_attention(model, named, 0, lambda line: None)  # no flash_attn package here
    # `auto` on a GPU whose flash_attn the model cannot use (its presence is given here)
    monkeypatch.setattr(tuning_mod, "flash_attention_available", lambda: True)
    lines: list[str] = []
    assert apply_attention(model, spec.stage2, 1, lines.append) == "sdpa"
    assert lines and lines[0].startswith("attention: keeping sdpa, the model refuses")


def _sdpa_per_sequence(q, k, v, bounds, longest, scale, gqa):
    """Stands in for torch's varlen flash kernel, which needs CUDA: SDPA over each sequence."""
    import torch.nn.functional as F

    outs = []
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        part = [t[start:end].transpose(0, 1) for t in (q, k, v)]  # (heads, tokens, dim)
        out = F.scaled_dot_product_attention(*part, is_causal=True, scale=scale, enable_gqa=gqa)
        outs.append(out.transpose(0, 1))
    return torch.cat(outs)


def test_packed_rows_find_their_sequences_and_the_kernel_is_checked_on_the_device(monkeypatch):
    from harness.train import varlen

    bounds, longest = varlen.sequence_starts(torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]]))
    assert bounds.tolist() == [0, 3, 5, 9] and bounds.dtype == torch.int32 and longest == 4
    # torch's kernel needs CUDA: on this CPU it fails its check, so `auto` keeps SDPA
    assert not varlen.works_on("cpu", torch.float32)
    auto = TrainSpec(method="lora")
    assert choose_attention(auto, 1, "sdpa", lambda: False) == "sdpa"
    assert choose_attention(auto, 1, "sdpa", lambda: True) == varlen.NAME  # a GPU where it works
    assert choose_attention(auto, 0, "sdpa", lambda: True) == "sdpa"
    unpacked = TrainSpec(method="lora", packing=False)
    assert choose_attention(unpacked, 1, "sdpa", lambda: True) == "sdpa"  # padded rows: no use
    monkeypatch.setitem(varlen.KERNEL, "causal", _sdpa_per_sequence)
    assert varlen.works_on("cpu", torch.float32)  # the check itself passes a right kernel
    assert choose_attention(TrainSpec(method="lora", attention="varlen"), 0, "sdpa") == varlen.NAME


def test_varlen_asked_for_where_its_kernel_cannot_run_is_one_line(world):
    from harness.errors import UserError
    from harness.train.tuning import apply_attention

    spec = cell(world.mix, "lora", attention="varlen")
    model = LoRA().load_model(spec.model, spec.stage2, world.stage1_dir).model
    with pytest.raises(UserError, match="varlen flash kernel does not run on cpu in float32"):
        apply_attention(model, spec.stage2, 0, lambda line: None)


def test_packed_rows_train_the_same_through_the_varlen_attention(world, tmp_path, monkeypatch):
    """The LLM's attention swapped for the varlen one (its CUDA kernel stood in for by SDPA
    per sequence): the whole micro batch goes in one row, and the losses are the padded-mask
    SDPA rows' of the default stage."""
    import harness.train.loop as loop
    from harness.train import varlen

    calls = []
    monkeypatch.setitem(
        varlen.KERNEL, "causal", lambda *a: calls.append(len(a[3]) - 1) or _sdpa_per_sequence(*a)
    )
    runs = []
    real = loop.run_stage
    monkeypatch.setattr(loop, "run_stage", lambda run: runs.append(run) or real(run))
    spec = cell(world.mix, "lora", attention="varlen")
    record = run_stage2(spec, LoRA(), world.stage1_dir, tmp_path, lambda line: None)
    assert record.attention == varlen.NAME and runs[0].collator.packing == "flat"
    assert calls and max(calls) > 1  # the LLM's layers ran it over rows of several samples
    assert (record.samples, record.tokens) == (world.default.samples, world.default.tokens)
    assert record.first_loss == pytest.approx(world.default.first_loss, abs=1e-5)
    assert record.last_loss == pytest.approx(world.default.last_loss, abs=1e-5)
