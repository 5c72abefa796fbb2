"""The core end to end with fake plugins: a 2x2 matrix, a failure half-way, a resume."""

from __future__ import annotations

import json
from pathlib import Path

import _core_fakes as fakes
import pytest

from harness.plan.build import Options
from harness.plugins import load_plugins, reset_plugins
from harness.run.orchestrate import run_command


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    reset_plugins(load_plugins(extra=[fakes]))
    registry = tmp_path / "registry.toml"
    registry.write_text(fakes.REGISTRY)
    config = tmp_path / "exp.toml"
    config.write_text(fakes.EXPERIMENT)
    ledger = tmp_path / "ledger.txt"
    monkeypatch.setenv("FAKE_LEDGER", str(ledger))
    yield tmp_path, registry, config, ledger
    reset_plugins(None)


def _opts(tmp_path, registry, config, **kw):
    return Options(
        matrix=["methods=fake", "lr=1e-4,2e-4"],
        config=config,
        registry=registry,
        out=tmp_path / "run",
        **kw,
    )


def _manifests(run_dir: Path) -> dict[str, dict]:
    return {
        json.loads(p.read_text())["step"]: json.loads(p.read_text())
        for p in (run_dir / "store" / "steps").glob("*/manifest.json")
    }


def test_matrix_fails_half_way_then_resumes_without_rerunning(fake_env, monkeypatch, capsys):
    tmp_path, registry, config, ledger = fake_env
    monkeypatch.setenv("FAKE_FAIL", "stage2/fake-b_fake_lr0.0002")
    assert run_command(_opts(tmp_path, registry, config)) == 1
    out = capsys.readouterr().out
    assert "failed stage2/fake-b_fake_lr0.0002" in out
    assert "logs/stage2__fake-b_fake_lr0.0002.log" in out
    first = _manifests(tmp_path / "run")
    # 2 shared stage-1 steps, 3 of 4 stage-2 steps, and the evaluation of those 3 cells
    assert sum(k.startswith("stage1/") for k in first) == 2
    assert sum(k.startswith("stage2/") for k in first) == 3
    assert sum(k.startswith("score/") for k in first) == 3
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    failed = {c["id"]: c["failed_steps"] for c in results["cells"]}
    assert failed["fake-b_fake_lr0.0002"][0]["step"] == "stage2/fake-b_fake_lr0.0002"

    monkeypatch.delenv("FAKE_FAIL")
    ledger.write_text("")
    assert run_command(_opts(tmp_path, registry, config)) == 0
    second = _manifests(tmp_path / "run")
    for step, manifest in first.items():  # finished steps were not run again
        assert second[step]["start"] == manifest["start"]
    assert ledger.read_text().splitlines()[:1] == ["stage2 fake-b_fake_lr0.0002"]
    assert not any(line.startswith("stage1") for line in ledger.read_text().splitlines())

    # a clean run in a fresh folder gives identical scores
    clean = Options(
        matrix=["methods=fake", "lr=1e-4,2e-4"],
        config=config,
        registry=registry,
        out=tmp_path / "clean",
    )
    assert run_command(clean) == 0
    resumed = json.loads((tmp_path / "run" / "results.json").read_text())
    fresh = json.loads((tmp_path / "clean" / "results.json").read_text())
    assert [c["benchmarks"] for c in resumed["cells"]] == [c["benchmarks"] for c in fresh["cells"]]
    assert len(resumed["cells"]) == 4
    assert all(not c["failed_steps"] for c in resumed["cells"])


def test_results_carry_scores_cost_and_samples(fake_env):
    tmp_path, registry, config, ledger = fake_env
    assert run_command(_opts(tmp_path, registry, config)) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    cell = results["cells"][0]
    bench = cell["benchmarks"]["fakebench"]
    assert bench["judge"] == {"name": "fakejudge", "snapshot": "fake-judge-1", "official": False}
    # stage 1 (0.25) + stage 2 (0.5) GPU-hours per node on the CPU price of $0.10
    assert cell["cost"]["stage1_gpu_hours"] == 0.25
    assert cell["cost"]["stage2_gpu_hours"] == 0.5
    assert cell["cost"]["judge_prompt_tokens"] == 400
    assert cell["cost"]["judge_usd"] == pytest.approx((400 * 10 + 8 * 20) / 1e6)
    samples = (tmp_path / "run" / "samples" / cell["id"] / "fakebench.jsonl").read_text()
    lines = [json.loads(line) for line in samples.splitlines()]
    assert [line["id"] for line in lines] == ["q0", "q1", "q2", "q3"]
    assert all(line["text"].startswith("answer") and len(line["score"]) == 1 for line in lines)


def test_a_file_written_while_scoring_is_named_where_the_finished_step_keeps_it(
    fake_env, monkeypatch
):
    """MMBench's test split tells the user to upload its submission file: results.json (which
    the report reads) names the file in the finished step's folder, not the work folder it left."""
    tmp_path, registry, config, ledger = fake_env
    monkeypatch.setenv("FAKE_SCORE_FILE", "1")
    assert run_command(_opts(tmp_path, registry, config)) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    for cell in results["cells"]:
        extra = cell["benchmarks"]["fakebench"]["extra"]
        upload = Path(extra["submission_xlsx"])
        assert upload.read_text() == "predictions"
        assert upload.parent.parent == (tmp_path / "run" / "store" / "steps").resolve()
        assert extra["note"] == f"upload {upload} to the server"


def test_second_run_reuses_everything_and_costs_no_judge_calls(fake_env):
    tmp_path, registry, config, ledger = fake_env
    assert run_command(_opts(tmp_path, registry, config)) == 0
    ledger.write_text("")
    assert run_command(_opts(tmp_path, registry, config)) == 0
    assert ledger.read_text() == ""


def test_runs_axis_repeats_judging_not_generation(fake_env):
    tmp_path, registry, config, ledger = fake_env
    opts = Options(
        matrix=["sizes=fake-a", "runs=3"], config=config, registry=registry, out=tmp_path / "run"
    )
    assert run_command(opts) == 0
    steps = _manifests(tmp_path / "run")
    assert sum(s.startswith("generate/") for s in steps) == 1
    assert sum(s.startswith("judge/") for s in steps) == 3
    runs = ledger.read_text().count("judge_requests run")
    assert runs == 3


def test_library_warnings_go_to_the_step_log_once_not_the_terminal(fake_env, monkeypatch, capfd):
    import logging
    import warnings

    tmp_path, registry, config, _ = fake_env
    real_train = fakes.FakeBackend.train

    def noisy_train(self, cell, stage, inputs, out_dir, log):
        for _ in range(3):
            warnings.warn("`old_api` is deprecated", FutureWarning, stacklevel=1)
        logging.getLogger("somelib.kernels").warning("optional kernel %s not found", "gemm")
        return real_train(self, cell, stage, inputs, out_dir, log)

    monkeypatch.setattr(fakes.FakeBackend, "train", noisy_train)
    assert run_command(_opts(tmp_path, registry, config)) == 0
    log = (tmp_path / "run" / "logs" / "stage2__fake-a_fake_lr0.0001.log").read_text()
    assert log.count("warning FutureWarning: `old_api` is deprecated") == 1
    assert "warning somelib.kernels: optional kernel gemm not found" in log
    err = capfd.readouterr().err
    assert "old_api" not in err and "optional kernel" not in err


TINY_SAVE_AND_LOAD = """
import tempfile
from transformers import LlamaConfig, LlamaForCausalLM
config = LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                     num_attention_heads=1, num_key_value_heads=1)
with tempfile.TemporaryDirectory() as folder:
    LlamaForCausalLM(config).save_pretrained(folder)
    LlamaForCausalLM.from_pretrained(folder)
"""
BARS = ("Loading weights", "Writing model shards")


def test_model_loading_bars_stay_out_of_the_terminal(fake_env, monkeypatch, capfd):
    tmp_path, registry, config, _ = fake_env
    real_train = fakes.FakeBackend.train

    def loading_train(self, cell, stage, inputs, out_dir, log):
        exec(TINY_SAVE_AND_LOAD, {})
        return real_train(self, cell, stage, inputs, out_dir, log)

    monkeypatch.setattr(fakes.FakeBackend, "train", loading_train)
    assert run_command(_opts(tmp_path, registry, config)) == 0
    err = capfd.readouterr().err
    assert not any(bar in err for bar in BARS)


def _terminal_of(script: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr + done.stdout


def test_a_step_that_imports_transformers_first_shows_no_bars():
    in_step = (
        "from harness.run.jobs import library_messages_into\n"
        "with library_messages_into(print):\n"
        + "".join(f"    {line}\n" for line in TINY_SAVE_AND_LOAD.strip().splitlines())
    )
    assert all(bar in _terminal_of(TINY_SAVE_AND_LOAD) for bar in BARS)  # outside a step
    assert not any(bar in _terminal_of(in_step) for bar in BARS)
