"""Padding-free stage 2 against padded batches, on a length mix like LLaVA's instruction data.

Every mode trains the same samples in the same micro batches (LLaVA's modality-grouped sampler,
as every stage 2 of the harness): `padded` pads each micro batch to its longest sample
(`packing = false`); `packed` puts the samples of a micro batch into rows, position ids
restarting per sample (`packing = true`, the default; SDPA here, so rows of the width that
costs least under a dense mask); `packed, one row` is the layout flash attention's varlen
kernels get, shown for what it costs under SDPA's dense mask. Useful tokens are the samples'
own tokens (image, prompt and answer tokens), never padding.

The length mix, in LLaMA tokens of text per sample at LLaVA's scale (max_length 2048, 256
image tokens at 224 px), drawn uniformly within each range:

| share | kind | text tokens | why |
| --- | --- | --- | --- |
| 40% | short answers (VQA-style, 1-3 one-line turns) | 20-80 | LLaVA-1.5's academic VQA part |
| 15% | detailed descriptions | 100-250 | LLaVA-Instruct's `detail_23k` |
| 20% | complex reasoning | 150-400 | LLaVA-Instruct's `complex_reasoning_77k` |
| 20% | multi-turn conversations | 200-700 | LLaVA-Instruct's `conversation_58k` |
| 5% | long language-only conversations | 800-1800 | ShareGPT in LLaVA-1.5's mix |

Everything is scaled by 1/4 for a CPU (max_length 512, 64 image tokens, the text ranges / 4)
on a tiny LLaVA (LLaMA-style LLM, 128 wide, 2 layers; CLIP tower at 64 px), full fine-tuning,
global batch 16 = micro 8 x accumulation 2, fp32, one thread. The template's system prompt
and image tokens are not scaled, so no sample is under ~130 tokens; the realised histogram of
sample lengths is printed. `padded, random order` shows the padding share a sampler without length
grouping would leave (counted, not trained).

Per step: wall time per optimizer step, and the share of it outside the model's forward and
backward (data, collation, optimizer, scheduler, the Trainer's own work), from timing the
Trainer's training_step (forward + backward) against the stage's wall time.

`--default-study-steps N` (0 skips) also trains the default experiment's cells (`--sizes`:
both tiny sizes x full, LoRA, QLoRA on the synthetic world; stage 2 as configured but N steps)
both ways and prints seconds per step: what packing changes for `harness run` itself.

    python bench/packing.py [--steps 16] [--repeats 2] [--default-study-steps 30]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

MIX = [  # share, kind, text tokens at LLaVA's scale, has image
    (0.40, "short", (20, 80), True),
    (0.15, "detail", (100, 250), True),
    (0.20, "reasoning", (150, 400), True),
    (0.20, "conversation", (200, 700), True),
    (0.05, "language", (800, 1800), False),
]
SCALE = 4
WORDS = (
    "the a red green blue shape square bar dot image shows left right top bottom of is and "
    "it there are two three on in with near large small colour what where how many why which"
).split()


def print_nothing(line: str) -> None:
    """The stages' log lines are not part of the benchmark's output."""


def _parts(root: Path) -> Any:
    """Tokenizer (one token a word), a 128-wide LLaMA-style LLM and a 64 px CLIP tower."""
    from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

    from harness.model.parts import Parts
    from harness.model.templates import SYSTEMS
    from harness.model.tokenizer import train_tokenizer

    texts = [" ".join(random.Random(i).choices(WORDS, k=40)) for i in range(200)]
    texts += [*SYSTEMS.values(), "USER: ASSISTANT:"] * 20
    tokenizer = train_tokenizer(texts, vocab_size=400)
    tokenizer.save_pretrained(str(root / "tokenizer"))
    torch.manual_seed(0)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=640,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    ).save_pretrained(str(root / "llm"))
    CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=64,
            patch_size=8,
        )
    ).save_pretrained(str(root / "tower"))
    return Parts(
        llm=str(root / "llm"), tower=str(root / "tower"), tokenizer=str(root / "tokenizer")
    )


def _model_spec() -> Any:
    from harness.specs import ModelSpec, SizeSpec, TowerSpec

    tower = TowerSpec(
        name="bench-tower", hidden_size=32, patch_size=8, resolutions=[64], tiny={"layers": 1}
    )
    size = SizeSpec(
        name="bench-llm", hidden_size=128, params_b=0.0005, tower="bench-tower", tiny={"layers": 2}
    )
    return ModelSpec(size=size, tower=tower, resolution=64, projector="linear")


def _conversation(rng: random.Random, tokens: int, image: bool) -> list[dict[str, str]]:
    """Turns of about `tokens` words: short questions, answers taking the rest."""
    turns, left = [], tokens
    while left > 0 or not turns:
        question = rng.randint(4, 10)
        answer = max(2, min(left - question, rng.randint(6, 60)))
        turns.append(" ".join(rng.choices(WORDS, k=question)) + "?")
        turns.append(" ".join(rng.choices(WORDS, k=answer)) + ".")
        left -= question + answer
    if image:
        turns[0] = "<image>\n" + turns[0]
    return [{"from": ("human", "gpt")[i % 2], "value": v} for i, v in enumerate(turns)]


def write_mix(root: Path, n: int, seed: int = 0) -> Any:
    """n instruction samples drawn from MIX (and captions for stage 1), in LLaVA's JSON."""
    from PIL import Image

    from harness.specs import DataMixSpec, DataSource

    rng = random.Random(seed)
    images = root / "images"
    images.mkdir(parents=True)
    for i in range(8):
        Image.new("RGB", (64, 64), (30 * i, 200 - 20 * i, 90)).save(images / f"{i}.png")
    rows, captions = [], []
    for i in range(n):
        share, kind, (lo, hi), image = rng.choices(MIX, weights=[m[0] for m in MIX])[0]
        row = {
            "id": f"{kind}{i}",
            "conversations": _conversation(rng, rng.randint(lo, hi) // SCALE, image),
        }
        if image:
            row["image"] = f"{i % 8}.png"
        rows.append(row)
    for i in range(16):
        captions.append(
            {
                "id": f"c{i}",
                "image": f"{i % 8}.png",
                "conversations": _conversation(rng, 8, True)[:2],
            }
        )
    (root / "instruct.json").write_text(json.dumps(rows))
    (root / "captions.json").write_text(json.dumps(captions))
    return DataMixSpec(
        captions=DataSource(kind="local", path=str(root / "captions.json")),
        instructions=DataSource(kind="local", path=str(root / "instruct.json")),
    )


class Probe:
    """Times the Trainer's training_step (forward + backward) and counts the token slots."""

    def __init__(self) -> None:
        from transformers import Trainer

        self.seconds, self.slots = 0.0, 0
        real = Trainer.training_step

        def timed(trainer, model, inputs, *args, **kwargs):
            self.slots += int(inputs["input_ids"].numel())
            started = time.perf_counter()
            try:
                return real(trainer, model, inputs, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        Trainer.training_step = timed

    def reset(self) -> None:
        self.seconds, self.slots = 0.0, 0


def _cell(model: Any, mix: Any, method: str, steps: int, packing: bool) -> Any:
    from harness.specs import CellSpec, HardwareSpec, JudgeSpec, TrainSpec

    def train(method: str, n: int) -> TrainSpec:
        return TrainSpec(
            method=method,
            lr=1e-4,
            warmup_ratio=0.0,
            global_batch=16,
            micro_batch=8,
            max_length=512,
            max_steps=n,
            epochs=100,
            precision="fp32",
            packing=packing,
        )

    return CellSpec(
        id=f"bench-{method}",
        axes={"method": method},
        model=model,
        mix=mix,
        stage1=train("projector", 1),
        stage2=train(method, steps),
        evals=[],
        judge=JudgeSpec(),
        hardware=HardwareSpec(name="cpu", gpus_per_node=1, usd_per_node_hour=0.1),
    )


def _train(probe: Probe, cell: Any, backend: Any, stage1: Path, out: Path) -> dict[str, float]:
    from harness.train import run_stage2

    probe.reset()
    record = run_stage2(cell, backend, stage1, out, lambda line: None)
    return {
        "tokens_per_s": record.tokens / record.wall_s,
        "padding": 1 - record.tokens / probe.slots,
        "step_s": record.wall_s / record.steps,
        "outside": 1 - probe.seconds / record.wall_s,
    }


def random_order_padding(lengths: list[int], micro: int, seed: int = 0) -> float:
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    batches = [order[i : i + micro] for i in range(0, len(order), micro)]
    slots = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths) / slots


def length_mix(args: argparse.Namespace, probe: Probe, root: Path) -> float:
    import pytest
    from harness_plugins.backends.full import FullFineTune

    import harness.model.assemble as assemble
    from harness.data.mix import build_mix
    from harness.model import build_llava
    from harness.model.collate import LlavaCollator
    from harness.train import run_stage1

    mp = pytest.MonkeyPatch()
    parts = _parts(root / "parts")
    mp.setattr(assemble, "parts_for", lambda spec, **kw: parts)
    mix = write_mix(root / "data", n=args.steps * 16)
    model = _model_spec()
    run_stage1(_cell(model, mix, "full", 1, True), root / "s1", lambda line: None)
    bundle = build_llava(model)
    collator = LlavaCollator(bundle, "vicuna_v1", 512)
    lengths = [len(collator.encode(s).input_ids) for s in build_mix(mix, 2)]
    import harness.train.stage2 as stage2

    best: dict[str, dict[str, float]] = {}
    modes = (("padded", False), ("packed", True), ("packed, one row", True))
    real_pack_mode = stage2.pack_mode  # the one-row mode replaces it; every other mode restores it
    for i in range(args.repeats):
        for name, packing in modes:
            # one row is what varlen (flash) kernels get; under SDPA's dense mask it is shown
            # for what it would cost here
            forced = (lambda *a, **k: "flat") if name.endswith("one row") else real_pack_mode
            mp.setattr(stage2, "pack_mode", forced)
            cell = _cell(model, mix, "full", args.steps, packing)
            got = _train(probe, cell, FullFineTune(), root / "s1", root / f"{name}{i}")
            if got["tokens_per_s"] > best.get(name, {}).get("tokens_per_s", 0.0):
                best[name] = got
    mp.undo()
    edges = [0, 64, 128, 192, 256, 384, 513]
    counts = [sum(lo <= n < hi for n in lengths) for lo, hi in zip(edges, edges[1:], strict=False)]
    print("sample lengths (tokens, image and template included):")
    print(
        "  "
        + "  ".join(
            f"{lo}-{hi - 1}: {c}" for lo, hi, c in zip(edges, edges[1:], counts, strict=False)
        )
    )
    print(f"  mean {sum(lengths) / len(lengths):.0f}, max {max(lengths)}, {len(lengths)} samples")
    print(
        f"\n{'mode':24} {'padding':>8} {'useful tok/s':>13} {'s/step':>8} {'outside fwd/bwd':>16}"
    )
    unsorted = random_order_padding(lengths, 8)
    print(f"{'padded, random order':24} {unsorted:8.1%} {'-':>13} {'-':>8} {'-':>16}")
    for name, _ in modes:
        r = best[name]
        print(
            f"{name + ', grouped':24} {r['padding']:8.1%} {r['tokens_per_s']:13.0f} "
            f"{r['step_s']:8.3f} {r['outside']:16.1%}"
        )
    print(
        f"(tiny LLaVA, full fine-tuning, {args.steps} steps of 16 samples, CPU, one thread, "
        f"best of {args.repeats})"
    )
    return best["packed"]["tokens_per_s"] / best["padded"]["tokens_per_s"]


def default_study(steps: int, sizes: list[str], probe: Probe, root: Path) -> None:
    """The default experiment's cells of `sizes`, stage 2 for `steps` steps, padded and packed."""
    from harness.config.matrix import expand
    from harness.config.registry import load_registry
    from harness.plan.build import Options, build_experiment
    from harness.plugins import get_plugins
    from harness.train import run_stage1

    plugins = get_plugins()
    registry = load_registry(None)
    cells = expand(build_experiment(Options(), registry), registry, plugins, {})
    cells = [c for c in cells if c.model.size.name in sizes]
    for size in sizes:
        first = next(c for c in cells if c.model.size.name == size)
        short = first.stage1.model_copy(update={"max_steps": 2})
        run_stage1(first.model_copy(update={"stage1": short}), root / f"d-s1-{size}", print_nothing)
    print(f"\ndefault experiment, stage 2 ({steps} of its steps each):")
    print(
        f"{'cell':16} {'padded s/step':>14} {'packed s/step':>14} {'padding':>15} "
        f"{'outside fwd/bwd':>16} {'speed-up':>9}"
    )
    for cell in cells:
        backend = plugins.get("backend", cell.stage2.method)
        got = {}
        for packing in (False, True):
            spec = cell.model_copy(
                update={
                    "stage2": cell.stage2.model_copy(
                        update={"max_steps": steps, "packing": packing}
                    )
                }
            )
            stage1 = root / f"d-s1-{cell.model.size.name}"
            got[packing] = _train(probe, spec, backend, stage1, root / f"d-{cell.id}-{packing}")
        padding = f"{got[False]['padding']:.1%} -> {got[True]['padding']:.1%}"
        outside = f"{got[False]['outside']:.0%} / {got[True]['outside']:.0%}"
        print(
            f"{cell.id:16} {got[False]['step_s']:14.3f} {got[True]['step_s']:14.3f} "
            f"{padding:>15} {outside:>16} {got[False]['step_s'] / got[True]['step_s']:9.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--default-study-steps", type=int, default=30)
    parser.add_argument("--sizes", default="tiny-1m,tiny-2m", help="default-study sizes")
    parser.add_argument(
        "--quick", action="store_true", help="8 steps, one repeat, no default study"
    )
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats, args.default_study_steps = 8, 1, 0
    torch.set_num_threads(1)
    probe = Probe()
    with tempfile.TemporaryDirectory() as tmp:
        ratio = length_mix(args, probe, Path(tmp))
        if args.default_study_steps:
            default_study(args.default_study_steps, args.sizes.split(","), probe, Path(tmp))
    print(f"RATIO packing {ratio:.3f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
