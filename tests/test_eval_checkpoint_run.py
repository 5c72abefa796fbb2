"""`harness eval --model` on a llava-hf checkpoint, end to end: what it computes equals
transformers' own processor + `generate`, its steps follow the checkpoint's content, and its
samples hold each prompt as the model read it."""

from __future__ import annotations

import json
import re

import pytest
from _eval_fixtures import one_thread, write_images
from _llava_hf import build_llava_hf, call_cli, replace_weights

from harness.eval import load_model, run_requests
from harness.protocols import GenerationRequest

pytestmark = pytest.mark.slow

_threads = pytest.fixture(scope="module", autouse=True)(one_thread)
QUESTIONS = ["the red square", "two green stars count", "a blue circle sits left", "three"]


def test_outputs_equal_transformers_processor_and_generate(tmp_path):
    import torch
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    folder = build_llava_hf(tmp_path / "llava-tiny-hf")
    images = write_images(tmp_path / "img", len(QUESTIONS))
    requests = [
        GenerationRequest(f"q{i}", f"<image>\n{q}", image=images[i], template="checkpoint",
                          max_new_tokens=8)
        for i, q in enumerate(QUESTIONS)
    ]  # fmt: skip
    requests.append(GenerationRequest("t", "Name a colour.", template="checkpoint",
                                      max_new_tokens=8))  # fmt: skip
    ours = run_requests(load_model(str(folder)), requests, batch_size=3)  # left-padded batches

    processor = AutoProcessor.from_pretrained(str(folder))
    model = LlavaForConditionalGeneration.from_pretrained(str(folder)).eval()
    for req in requests:
        content = [{"type": "text", "text": req.prompt.replace("<image>\n", "")}]
        if req.image:
            content.insert(0, {"type": "image"})
        text = processor.apply_chat_template([{"role": "user", "content": content}],
                                             add_generation_prompt=True)  # fmt: skip
        image = Image.open(req.image).convert("RGB") if req.image else None
        inputs = processor(images=image, text=text, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
        theirs = processor.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        assert ours[req.id].text == theirs.strip(), req.id
    assert len({o.text for o in ours.values()}) > 1  # the answers differ: a real comparison


def steps_ran(lines: list[str]) -> int:
    (line,) = [line for line in lines if line.startswith("steps: ")]
    return int(re.match(r"steps: (\d+) ran", line).group(1))


def answers(out) -> dict[str, str]:
    (cell,) = json.loads((out / "results.json").read_text())["cells"]
    path = out / "samples" / cell["id"] / "llava-bench.jsonl"
    return {s["id"]: s for s in map(json.loads, path.read_text().splitlines())}


def prompt_record(out) -> dict:
    return json.loads((out / "results.json").read_text())["experiment"]["prompt"]


def test_a_checkpoint_changed_at_the_same_path_is_evaluated_again(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HARNESS_ASSETS_MIRROR", raising=False)
    folder = build_llava_hf(tmp_path / "llava-tiny-hf")
    config = tmp_path / "in-process.toml"  # one step at a time, in this process; short answers
    config.write_text('extends = "default"\n[executor]\nmax_parallel = 1\n'
                      "[eval]\nmax_new_tokens = 6\n")  # fmt: skip
    out = tmp_path / "run"
    argv = ["eval", "--model", str(folder), "--benchmarks", "llava-bench", "--out", str(out)]
    argv += ["--config", str(config)]
    code, lines = call_cli(argv, capsys)
    assert code == 0, lines
    first = answers(out)
    recorded = prompt_record(out)  # the results say which prompt each benchmark was asked with
    assert recorded["choice"] == {"llava-bench": "checkpoint"}
    assert steps_ran(lines) == 4  # stage 2 (records the checkpoint), generate, judge, score
    sample = next(iter(first.values()))
    assert sample["prompt"].startswith("USER: <image>\n") and sample["prompt"].endswith(
        " ASSISTANT:"
    )  # the checkpoint's own template, the image as its placeholder
    for sample in first.values():
        assert sample["prompt"].count("<image>") == 1 and "A chat between" not in sample["prompt"]

    code, lines = call_cli(argv, capsys)
    assert code == 0 and steps_ran(lines) == 0  # nothing changed: every step reused

    replace_weights(folder, seed=1)  # other weights at the same path
    code, lines = call_cli(argv, capsys)
    assert code == 0 and steps_ran(lines) == 4, lines
    second = answers(out)
    assert [s["text"] for s in second.values()] != [s["text"] for s in first.values()]

    (folder / "chat_template.jinja").write_text("{{ 'Q: ' }}{% for m in messages %}"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% else %}"
        "{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}{{ ' A:' }}")  # fmt: skip
    code, lines = call_cli(argv, capsys)  # a new chat template: asked again, the new way
    assert code == 0 and steps_ran(lines) == 4, lines
    assert all(s["prompt"].startswith("Q: ") for s in answers(out).values())
    assert prompt_record(out)["choice"] == {"llava-bench": "checkpoint"}
    assert prompt_record(out)["chat_template_sha256"] != recorded["chat_template_sha256"]


def test_a_model_that_fails_to_load_is_named_not_a_benchmark(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    folder = build_llava_hf(tmp_path / "llava-tiny-hf")
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    config["text_config"]["intermediate_size"] = 80  # the weights are 64 wide
    config_file.write_text(json.dumps(config))
    settings = tmp_path / "in-process.toml"
    settings.write_text('extends = "default"\n[executor]\nmax_parallel = 1\n')
    argv = ["eval", "--model", str(folder), "--benchmarks", "mmbench", "--out", str(tmp_path)]
    code, lines = call_cli([*argv[:-1], str(tmp_path / "run"), "--config", str(settings)], capsys)
    assert code != 0
    text = "\n".join(lines)
    assert f"cannot load model {folder}" in text, text
    assert "plugin 'mmbench'" not in text
