"""Training and evaluation on a GPU: each backend trains there, and evaluation moves there.

Skipped on machines without CUDA (CI's); bench/gpu_check.sh runs this file on a GPU machine.
"""

from __future__ import annotations

import copy

import pytest
import torch
from _eval_fixtures import WORDS, tiny_llava, write_images
from _train_fixtures import Spy, cell, open_world
from harness_plugins.backends.full import FullFineTune
from harness_plugins.backends.lora import LoRA
from harness_plugins.backends.qlora import QLoRA

from harness.eval import run_requests
from harness.eval.engine import place_for_eval
from harness.protocols import GenerationRequest, LoglikRequest
from harness.train import run_stage1, run_stage2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
BACKENDS = {"full": FullFineTune(), "lora": LoRA(), "qlora": QLoRA()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("gpu-train")
    w = open_world(root, mp)
    w.spy = Spy(mp)
    w.stage1_dir = root / "stage1"
    w.stage1_record = run_stage1(cell(w.mix, "full"), w.stage1_dir, lambda line: None)
    yield w
    mp.undo()


@pytest.mark.parametrize("method", sorted(BACKENDS))
def test_each_backend_trains_on_the_gpu_and_its_model_evaluates_there(world, method):
    out = world.root / f"stage2-{method}"
    record = run_stage2(cell(world.mix, method), BACKENDS[method], world.stage1_dir, out, print)
    assert record.gpus == 1 and record.peak_mem_mb > 0
    assert record.last_loss < record.first_loss
    trained = [p for p in world.spy.model.parameters() if p.requires_grad]
    assert trained and all(p.device.type == "cuda" for p in trained)
    loaded = BACKENDS[method].load(cell(world.mix, method).model, out)
    request = LoglikRequest(id="q", context="What colour is it?", continuations=(" red", " blue"))
    result = run_requests(loaded, [request], batch_size=1)["q"]
    assert result.logliks is not None and all(v < 0 for v in result.logliks)
    assert next(loaded.model.parameters()).device.type == "cuda"
    if method == "qlora":
        kinds = {type(m).__name__ for m in loaded.model.modules()}
        assert "Linear4bit" in kinds


def test_gpu_answers_match_the_cpu(tmp_path, monkeypatch):
    images = write_images(tmp_path, 3)
    requests = [
        GenerationRequest(
            id=f"g{i}",
            prompt="<image>\n" + " ".join(WORDS[: i + 2]),
            image=images[i % 3],
            max_new_tokens=8,
        )  # fmt: skip
        for i in range(6)
    ]
    requests += [
        LoglikRequest(
            id=f"l{i}", context=" ".join(WORDS[: i + 3]), continuations=(" red", f" {WORDS[i]}")
        )
        for i in range(6)
    ]
    cpu_bundle = tiny_llava()
    gpu_bundle = copy.deepcopy(cpu_bundle)
    monkeypatch.setenv("HARNESS_EVAL_DEVICE", "cpu")
    on_cpu = run_requests(cpu_bundle, requests, batch_size=4)
    monkeypatch.delenv("HARNESS_EVAL_DEVICE")
    on_gpu = run_requests(gpu_bundle, requests, batch_size=4)
    assert next(gpu_bundle.model.parameters()).device.type == "cuda"
    assert next(cpu_bundle.model.parameters()).device.type == "cpu"
    for req in requests:
        if isinstance(req, GenerationRequest):
            assert on_gpu[req.id].text == on_cpu[req.id].text, req.id
        else:
            assert on_gpu[req.id].logliks == pytest.approx(on_cpu[req.id].logliks, abs=1e-3)


def test_a_device_mapped_model_stays_where_it_loaded():
    bundle = tiny_llava()
    bundle.model.hf_device_map = {"": "cpu"}
    assert next(place_for_eval(bundle.model).parameters()).device.type == "cpu"


def test_the_device_tuning_on_a_gpu_trains_the_same_model(world):
    """Loader workers by default, compile and forced checkpointing on the GPU: each is in the
    record and gives the untuned stage's losses (bf16 numerics: a looser tolerance)."""
    plain = cell(world.mix, "lora", dataloader_workers=0)
    base = run_stage2(plain, LoRA(), world.stage1_dir, world.root / "t-plain", print)
    assert base.loader_workers == 0 and base.steady_tokens_per_s
    for setting, field in (
        ({}, "loader_workers"),
        ({"compile": True}, "compiled"),
        ({"gradient_checkpointing": True}, "gradient_checkpointing"),
    ):
        spec = cell(world.mix, "lora", **setting)
        name = "-".join(setting) or "auto"
        record = run_stage2(spec, LoRA(), world.stage1_dir, world.root / f"t-{name}", print)
        assert getattr(record, field), (setting, record)
        assert record.first_loss == pytest.approx(base.first_loss, abs=2e-2), setting
        assert record.steady_mfu is None or record.steady_mfu > 0


def test_torchs_varlen_kernel_where_it_runs_trains_packed_rows_as_sdpa_does(world):
    """torch's varlen flash kernel on this GPU (harness.train.varlen): where it passes its
    check, packed rows through it give SDPA's losses; where not, `auto` keeps SDPA."""
    from harness.train import varlen

    works = varlen.works_on("cuda:0", torch.bfloat16)
    auto = run_stage2(cell(world.mix, "lora"), LoRA(), world.stage1_dir, world.root / "v-a", print)
    if not works:
        assert auto.attention != varlen.NAME
        pytest.skip(f"torch {torch.__version__}'s varlen kernel does not run on this GPU")
    assert auto.attention in (varlen.NAME, "flash_attention_2")  # FA2 where flash_attn is
    sdpa = cell(world.mix, "lora", attention="sdpa")
    base = run_stage2(sdpa, LoRA(), world.stage1_dir, world.root / "v-s", print)
    assert auto.first_loss == pytest.approx(base.first_loss, abs=2e-2)
    assert auto.last_loss == pytest.approx(base.last_loss, abs=5e-2)
