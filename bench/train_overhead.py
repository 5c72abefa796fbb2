"""Training overhead: the harness's stage-2 step against a plain HF Trainer loop.

Same tiny LLaVA, same data, same collator, same batch geometry, same optimizer and schedule;
the harness adds its meter, LLaVA's modality-grouped sampler, checkpoint policy and record.
Each side runs `--repeats` times, alternating, and the best samples/s counts (these machines
are noisy). The last line is `RATIO train_overhead <min over methods of harness / plain>`.

    python bench/train_overhead.py [--steps 24] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pytest  # noqa: E402
import torch  # noqa: E402
from _train_fixtures import cell, open_world  # noqa: E402
from harness_plugins.backends.full import FullFineTune  # noqa: E402
from harness_plugins.backends.lora import LoRA  # noqa: E402

from harness.data.mix import build_mix  # noqa: E402
from harness.model.collate import LlavaCollator  # noqa: E402
from harness.train import run_stage1, run_stage2  # noqa: E402
from harness.train.settings import batch_plan  # noqa: E402


def harness_run(world, root: Path, backend, spec, tag: str) -> float:
    record = run_stage2(spec, backend, root / "s1", root / tag, lambda line: None)
    return record.samples_per_s


def plain_run(world, root: Path, backend, spec, tag: str) -> float:
    """What a user would write: load, freeze, HF Trainer, train."""
    from transformers import Trainer, TrainingArguments

    train = spec.stage2
    bundle = backend.prepare(backend.load_model(spec.model, train, root / "s1"), train)
    plan = batch_plan(train, 1)
    args = TrainingArguments(
        output_dir=str(root / tag),
        per_device_train_batch_size=plan.micro,
        gradient_accumulation_steps=plan.accumulation,
        max_steps=train.max_steps,
        learning_rate=train.lr,
        lr_scheduler_type=train.schedule,
        optim="adamw_torch",
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        logging_steps=1,
        remove_unused_columns=False,
        use_cpu=True,
        dataloader_pin_memory=False,
        seed=train.seed,
    )
    samples = build_mix(spec.mix, 2)
    trainer = Trainer(
        model=bundle.model,
        args=args,
        train_dataset=samples,
        data_collator=LlavaCollator(bundle, "vicuna_v1", train.max_length),
    )
    started = time.perf_counter()
    trainer.train()
    return train.max_steps * plan.global_batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mp = pytest.MonkeyPatch()
        world = open_world(root, mp)
        run_stage1(cell(world.mix, "full", max_steps=1), root / "s1", lambda line: None)
        rows = []
        for backend in (LoRA(), FullFineTune()):
            spec = cell(world.mix, backend.name, max_steps=args.steps, epochs=100)
            best = {"harness": 0.0, "plain": 0.0}
            for i in range(args.repeats):
                best["plain"] = max(best["plain"], plain_run(world, root, backend, spec, f"p{i}"))
                best["harness"] = max(
                    best["harness"], harness_run(world, root, backend, spec, f"h{backend.name}{i}")
                )
            rows.append((backend.name, best["harness"], best["plain"]))
        mp.undo()
    print(f"\n{'method':8} {'harness samples/s':>18} {'plain HF samples/s':>19} {'ratio':>7}")
    for name, ours, plain in rows:
        print(f"{name:8} {ours:18.2f} {plain:19.2f} {ours / plain:7.3f}")
    print(f"(tiny LLaVA, {args.steps} steps of 8 samples, CPU, best of {args.repeats})")
    print(f"RATIO train_overhead {min(ours / plain for _, ours, plain in rows):.3f}")


if __name__ == "__main__":
    main()
