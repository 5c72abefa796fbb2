"""A checkpoint as users have it (llava-hf layout): the prompt it is asked with, the image
processor it ships, and its files checked before any step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _llava_hf import (
    CHATML_TEMPLATE,
    as_hub_download,
    build_llava_hf,
    call_cli,
    drop,
    strip_image_processor,
)

from harness.eval.engine import image_processor_for
from harness.eval.loading import load_model, load_tokenizer
from harness.eval.prompts import prompt_token_ids, rendered_prompt
from harness.model.templates import LLAVA_SYSTEM, VICUNA_SYSTEM
from harness.protocols import GenerationRequest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llava_hf(tmp_path_factory) -> Path:
    return build_llava_hf(tmp_path_factory.mktemp("ckpt") / "llava-tiny-hf")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HARNESS_ASSETS_MIRROR", raising=False)


def ask(template: str, text: str = "<image>\nWhat is shown?") -> GenerationRequest:
    return GenerationRequest("q", text, image="x.png" if "<image>" in text else None,
                             template=template)  # fmt: skip


def test_the_checkpoint_template_and_the_study_formats_give_the_documented_prompts(llava_hf):
    tokenizer = load_tokenizer(str(llava_hf))
    turn = "USER: <image>\nWhat is shown? ASSISTANT:"
    assert rendered_prompt(tokenizer, ask("checkpoint")) == turn  # llava-1.5-hf's template
    assert rendered_prompt(tokenizer, ask("vicuna_v1")) == f"{VICUNA_SYSTEM} {turn}"
    assert rendered_prompt(tokenizer, ask("llava_v1")) == f"{LLAVA_SYSTEM} {turn}"
    assert rendered_prompt(tokenizer, ask("checkpoint", "Name a colour.")) == (
        "USER: Name a colour. ASSISTANT:"
    )
    # the ids: one BOS, the <image> placeholder expanded to the image's tokens
    ids = prompt_token_ids(tokenizer, ask("checkpoint"), 4)
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    assert ids.count(image_id) == 4
    # a template of plain string contents gets the prompt text, <image> in place
    tokenizer.chat_template = CHATML_TEMPLATE
    assert rendered_prompt(tokenizer, ask("checkpoint")) == (
        "<|im_start|>user\n<image>\nWhat is shown?<|im_end|>\n<|im_start|>assistant\n"
    )


def plan_for(folder: Path, out: Path, prompt: str | None = None, benchmarks="mmbench,mmlu"):
    from harness.plan.build import Options
    from harness.plan.eval_model import checkpoint_plan
    from harness.plugins import get_plugins

    return checkpoint_plan(Options(benchmarks=benchmarks, out=out), get_plugins(), str(folder),
                           prompt)  # fmt: skip


def test_the_default_prompt_follows_the_checkpoint_and_is_recorded_and_keyed(
    llava_hf, tmp_path, capsys
):
    plan = plan_for(llava_hf, tmp_path / "run")
    (cell,) = plan.cells.values()
    prompts = {ev.benchmark: ev.prompt for ev in cell.evals}
    assert prompts == {"mmbench": "checkpoint", "mmlu": None}  # MMLU scores log-likelihoods
    assert plan.experiment["prompt"]["choice"] == {"mmbench": "checkpoint"}
    assert plan.experiment["prompt"]["chat_template_sha256"]
    (warning,) = capsys.readouterr().err.splitlines()
    assert warning.startswith("warning: mmbench: the protocol prompt is vicuna_v1")
    keys = {s.id: s.key for s in plan.steps}

    study = plan_for(llava_hf, tmp_path / "run", prompt="vicuna_v1")
    (cell,) = study.cells.values()
    assert {ev.benchmark: ev.prompt for ev in cell.evals}["mmbench"] == "vicuna_v1"
    (warning,) = capsys.readouterr().err.splitlines()
    assert "prompted with vicuna_v1" in warning and "--prompt checkpoint" in warning
    changed = {s.id for s in study.steps if keys[s.id] != s.key}
    assert changed == {s.id for s in study.steps if "/mmbench" in s.id}  # MMLU's kept

    bare = build_llava_hf(tmp_path / "no-template", template=None)
    capsys.readouterr()
    (cell,) = plan_for(bare, tmp_path / "run2", benchmarks="mmbench").cells.values()
    assert [ev.prompt for ev in cell.evals] == ["vicuna_v1"]
    assert capsys.readouterr().err == ""  # nothing disagrees: no warning


def test_llava_names_llava_v1_as_a_flag_and_as_an_eval_setting(llava_hf, tmp_path):
    from harness.plan.build import Options
    from harness.plan.eval_model import checkpoint_plan
    from harness.plugins import get_plugins

    flagged = plan_for(llava_hf, tmp_path / "run", prompt="llava", benchmarks="mmbench")
    (cell,) = flagged.cells.values()
    assert [ev.prompt for ev in cell.evals] == ["llava_v1"]
    assert flagged.experiment["prompt"]["choice"] == {"mmbench": "llava_v1"}
    # the config's setting for one benchmark; the other keeps the checkpoint's default
    config = tmp_path / "prompt.toml"
    config.write_text('extends = "default"\n[eval.mmbench]\nprompt = "llava"\n')
    opts = Options(benchmarks="mmbench,llava-bench", out=tmp_path / "run2", config=config)
    configured = checkpoint_plan(opts, get_plugins(), str(llava_hf))
    choice = {"mmbench": "llava_v1", "llava-bench": "checkpoint"}
    assert configured.experiment["prompt"]["choice"] == choice


def test_a_siglip_processor_is_honoured_and_loaded_only_for_images(tmp_path):
    import torch
    from PIL import Image

    folder = build_llava_hf(tmp_path / "siglip", processor="siglip")
    bundle = load_model(str(folder))
    from harness.eval import run_requests

    run_requests(bundle, [GenerationRequest("t", "Name a colour.", max_new_tokens=2)])
    assert bundle.image_processor is None  # a language request reads no processor files
    processor = image_processor_for(bundle)
    assert type(processor).__name__ == "SiglipImageProcessorPil"
    image = Image.new("RGB", (40, 24), (255, 0, 51))
    pixels = processor([image], return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 16, 16)  # a plain resize to its own size, no crop
    expected = torch.tensor([1.0, -1.0, 51 / 255 / 0.5 - 1.0])  # mean and std 0.5, not CLIP's
    assert torch.allclose(pixels[0, :, 8, 8], expected, atol=1e-3)


def set_config(folder: Path, **values) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **values}))


CASES = [
    ("processor of another size", {"processor_size": 32}, None, "mmbench",
     "the image processor makes 32-px images but the vision tower takes 16 px"),
    ("no image processor", {}, strip_image_processor, "mmbench",
     "no image processor file (preprocessor_config.json"),
    ("no tokenizer", {}, lambda f: drop(f, "tokenizer.json"), "mmlu", "no tokenizer file"),
    ("no config", {}, lambda f: drop(f, "config.json"), "mmlu", "no config.json"),
    ("corrupt weights", {}, lambda f: (f / "model.safetensors").write_bytes(b"\x00" * 4),
     "mmlu", "model.safetensors: not a readable safetensors file"),
    ("image token id", {}, lambda f: set_config(f, image_token_index=5), "mmlu",
     "the tokenizer's <image> token has id 4 but config.json's image_token_index is 5"),
    ("an unknown prompt", {}, None, "mmbench --prompt chatml", "--prompt chatml: not one of"),
    ("a template that fails", {"template": "{{ raise_exception('system turn first') }}"}, None,
     "mmbench", "the model's chat template fails: system turn first"),
    ("no chat template asked for", {"template": None}, None, "mmbench --prompt checkpoint",
     "--prompt checkpoint, but the checkpoint has no chat template"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "build", "damage", "benchmarks", "expected"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_a_missing_or_mismatched_file_is_one_line_before_any_step(
    case, build, damage, benchmarks, expected, tmp_path, capsys
):
    folder = build_llava_hf(tmp_path / "ckpt", **build)
    if damage:
        damage(folder)
    capsys.readouterr()  # the build's progress bars
    out = tmp_path / "run"
    argv = ["eval", "--model", str(folder), "--out", str(out), "--benchmarks", *benchmarks.split()]
    code, lines = call_cli(argv, capsys)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not out.exists()  # nothing ran, nothing was written


def test_mmlu_alone_needs_no_image_processor(tmp_path):
    folder = build_llava_hf(tmp_path / "ckpt")
    strip_image_processor(folder)
    (cell,) = plan_for(folder, tmp_path / "run", benchmarks="mmlu").cells.values()
    assert [ev.benchmark for ev in cell.evals] == ["mmlu"]


def test_a_hub_id_is_keyed_by_the_revision_it_resolves_to(tmp_path, monkeypatch):
    import huggingface_hub.constants

    from harness.eval.checkpoint_files import checkpoint_fingerprint

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the local hub cache's refs/main
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    refs = tmp_path / "hub" / "models--llava-hf--llava-1.5-7b-hf" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40 + "\n")
    first = checkpoint_fingerprint("llava-hf/llava-1.5-7b-hf")
    assert first == {"hub": "llava-hf/llava-1.5-7b-hf", "revision": "a" * 40}
    (refs / "main").write_text("b" * 40 + "\n")  # the hub id moved on
    assert checkpoint_fingerprint("llava-hf/llava-1.5-7b-hf")["revision"] == "b" * 40


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    """An empty local hub cache read offline (a download from the hub cannot be had here)."""
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    return hub


def test_a_hub_id_is_checked_described_and_prompted_from_its_cached_files(
    llava_hf, offline_hub, tmp_path
):
    from harness.errors import UserError

    repo = "someone/llava-tiny-hf"
    snapshot = as_hub_download(llava_hf, offline_hub, repo)
    plan = plan_for(repo, tmp_path / "run")  # type: ignore[arg-type]
    (cell,) = plan.cells.values()
    assert {ev.benchmark: ev.prompt for ev in cell.evals}["mmbench"] == "checkpoint"
    assert plan.experiment["prompt"]["chat_template_sha256"]  # its own template, recorded
    assert cell.model.size.llm == repo and cell.model.resolution == 16  # its own tower's size
    strip_image_processor(snapshot)
    with pytest.raises(UserError, match="no image processor file"):
        plan_for(repo, tmp_path / "run")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="not in the local hub cache"):
        plan_for("someone/not-downloaded", tmp_path / "run")  # type: ignore[arg-type]


def test_a_hub_id_evaluates_from_the_local_hub_cache(llava_hf, tmp_path):
    """The whole command in its own process, as a user runs it offline."""
    import os
    import subprocess
    import sys

    repo = "someone/llava-tiny-hf"
    as_hub_download(llava_hf, tmp_path / "hub", repo)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    argv = ["eval", "--model", repo, "--benchmarks", "mmlu", "--out", str(tmp_path / "run")]
    done = subprocess.run(
        [sys.executable, "-m", "harness", *argv], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    (cell,) = results["cells"]
    assert cell["model"]["size"] == repo and list(cell["benchmarks"]) == ["mmlu"]
    # its own parameters, counted from the weights the hub cache holds
    assert cell["model"]["params_b"] == pytest.approx(57_568 / 1e9)


def test_a_folder_is_keyed_by_each_model_file_and_hashed_once(llava_hf, tmp_path):
    from harness.eval.checkpoint_files import checkpoint_fingerprint
    from harness.support.paths import cache_dir

    files = checkpoint_fingerprint(str(llava_hf))["files"]
    expected = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    expected |= {"processor_config.json", "chat_template.jinja", "generation_config.json"}
    assert set(files) == expected
    memos = [json.loads(p.read_text()) for p in cache_dir("fingerprints").glob("*.json")]
    remembered = {m["path"]: m["sha256"] for m in memos}  # by path, size, mtime and inode
    assert remembered[str((llava_hf / "model.safetensors").resolve())] == files["model.safetensors"]
