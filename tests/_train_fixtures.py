"""A tiny LLaVA world for the training tests: parts built from configs, local data files.

The tiny LLM, CLIP tower and tokenizer are saved to a folder once per session and handed to
`harness.model.build_llava` by patching where it looks for a size's parts, so that the tests
exercise the real assembly, collation and training code in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.specs import (
    CellSpec,
    DataMixSpec,
    DataSource,
    HardwareSpec,
    JudgeSpec,
    ModelSpec,
    SizeSpec,
    TowerSpec,
    TrainSpec,
)

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 30),
    "white": (250, 250, 250),
    "black": (5, 5, 5),
}
SHAPES = ("square", "bar", "dot")


def model_spec() -> ModelSpec:
    tower = TowerSpec(
        name="test-tower", hidden_size=32, patch_size=8, resolutions=[32], tiny={"layers": 2}
    )
    size = SizeSpec(
        name="test-llm", hidden_size=32, params_b=0.0001, tower="test-tower", tiny={"layers": 2}
    )
    return ModelSpec(size=size, tower=tower, resolution=32, projector="linear")


def _draw(colour: tuple[int, int, int], shape: str, path: Path) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (32, 32), (128, 128, 128))
    box = {"square": (6, 6, 26, 26), "bar": (2, 12, 30, 20), "dot": (12, 12, 20, 20)}[shape]
    ImageDraw.Draw(image).rectangle(box, fill=colour)
    image.save(path)


def write_data(root: Path) -> DataMixSpec:
    """Captions and instruction conversations about coloured shapes, in LLaVA's JSON format."""
    images = root / "images"
    images.mkdir(parents=True)
    captions, instructions = [], []
    for i, (colour, rgb) in enumerate(COLOURS.items()):
        for j, shape in enumerate(SHAPES):
            name = f"{colour}-{shape}.png"
            _draw(rgb, shape, images / name)
            captions.append(
                {
                    "id": f"c{i}{j}",
                    "image": name,
                    "conversations": [
                        {"from": "human", "value": "<image>"},
                        {"from": "gpt", "value": f"a {colour} {shape} on grey"},
                    ],
                }
            )
            instructions.append(
                {
                    "id": f"q{i}{j}",
                    "image": name,
                    "conversations": [
                        {"from": "human", "value": "<image>\nWhat colour is the shape?"},
                        {"from": "gpt", "value": f"The {shape} is {colour}."},
                        {"from": "human", "value": "And its form?"},
                        {"from": "gpt", "value": f"It is a {shape}."},
                    ],
                }
            )
    instructions.append(
        {
            "id": "t0",
            "conversations": [
                {"from": "human", "value": "Name a colour."},
                {"from": "gpt", "value": "Red."},
            ],
        }
    )
    (root / "captions.json").write_text(json.dumps(captions * 2))
    (root / "instruct.json").write_text(json.dumps(instructions * 2))
    return DataMixSpec(
        captions=DataSource(kind="local", path=str(root / "captions.json")),
        instructions=DataSource(kind="local", path=str(root / "instruct.json")),
    )


def write_parts(root: Path) -> Any:
    """Tokenizer, LLaMA-style LLM and CLIP tower from configs, saved like hub checkpoints."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

    from harness.model.parts import Parts
    from harness.model.tokenizer import train_tokenizer

    texts = [
        f"The {s} is {c}. It is a {s}. a {c} {s} on grey What colour is the shape? "
        "And its form? Name a colour. Red. USER: ASSISTANT: A chat between a curious user"
        for c in COLOURS
        for s in SHAPES
    ]
    tokenizer = train_tokenizer(texts * 4, vocab_size=320)
    tokenizer.save_pretrained(str(root / "tokenizer"))
    torch.manual_seed(0)
    llm = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        )
    )
    llm.save_pretrained(str(root / "llm"))
    tower = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        )
    )
    tower.save_pretrained(str(root / "tower"))
    return Parts(
        llm=str(root / "llm"), tower=str(root / "tower"), tokenizer=str(root / "tokenizer")
    )


def train_spec(method: str, **overrides: Any) -> TrainSpec:
    fields: dict[str, Any] = dict(
        method=method,
        lr=2e-3,
        warmup_ratio=0.0,
        global_batch=8,
        micro_batch=4,
        max_length=320,
        max_steps=6,
        precision="fp32",
        lora_dropout=0.0,
    )
    if method in ("lora", "qlora"):
        fields.update(lora_rank=8, lora_alpha=16)
    fields.update(overrides)
    return TrainSpec(**fields)


def cell(mix: DataMixSpec, method: str, **stage2: Any) -> CellSpec:
    return CellSpec(
        id=f"test-{method}",
        axes={"method": method},
        model=model_spec(),
        mix=mix,
        stage1=train_spec("projector", lr=1e-2),
        stage2=train_spec(method, **stage2),
        evals=[],
        judge=JudgeSpec(),
        hardware=HardwareSpec(name="cpu", gpus_per_node=1, usd_per_node_hour=0.1),
    )


class World:
    """The session's tiny world: parts, data mix, and one finished stage 1."""

    def __init__(self, root: Path, parts: Any, mix: DataMixSpec):
        self.root, self.parts, self.mix = root, parts, mix
        self.stage1_dir: Path | None = None
        self.stage1_record: Any = None


def open_world(root: Path, monkeypatch: Any) -> World:
    """Build the parts and data under `root` and point build_llava and the cache at them."""
    import harness.model.assemble as assemble

    world = World(root, write_parts(root / "parts"), write_data(root / "data"))
    monkeypatch.setattr(assemble, "parts_for", lambda spec, **kw: world.parts)
    monkeypatch.setenv("HARNESS_CACHE", str(root / "cache"))
    return world


class Spy:
    """Wraps harness.train.loop.run_stage to keep the model and its weights before training."""

    def __init__(self, monkeypatch: Any):
        import harness.train.loop as loop
        from harness.train.params import snapshot

        self.model: Any = None
        self.before: dict = {}
        real = loop.run_stage

        def spy(run):
            self.model, self.before = run.model, snapshot(run.model)
            return real(run)

        monkeypatch.setattr(loop, "run_stage", spy)

    def changed(self, atol: float = 0.0) -> set[str]:
        from harness.train.params import snapshot

        after = snapshot(self.model)
        return {n for n, v in after.items() if not (v - self.before[n]).abs().max() <= atol}


@contextmanager
def world_after_stage1(root: Path) -> Iterator[World]:
    """The tiny world under `root` with stage 1 trained (world.stage1_dir, world.stage1), on
    one thread as the training tests run; the patches are undone on exit."""
    import pytest
    import torch

    from harness.train import run_stage1

    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    try:
        world = open_world(root, mp)
        world.stage1_dir = root / "stage1"
        world.stage1 = run_stage1(cell(world.mix, "full"), world.stage1_dir, lambda line: None)
        yield world
    finally:
        mp.undo()
