"""GPU check: a randomly initialised real-width LLaVA trained a few dozen steps per method.

LLaMA-style LLM of ~1.3B parameters (width 2048, 24 layers) + a CLIP ViT-L/14 tower at 224 px
(256 image tokens) + the paper's linear projector, built from configs (no download). Each of
full, LoRA (r 64, alpha 128) and QLoRA (4-bit NF4 LLM) trains through the harness's own stage
loop and backends, in bf16, on random tokens; the table gives tokens/s, MFU (against the
card's bf16 peak) and peak memory. `--smoke` runs the same code at toy width on any device.

`--variants before,after` trains each method twice on the same card in one process: `before`
with the settings the harness had before its device tuning (the model's SDPA, no loader
workers, no compile, no automatic checkpointing), `after` with harness.train.tuning's automatic
choices and torch.compile; it prints `RATIO tuned_<method> <after / before steady tokens/s>`.

    python bench/gpu_check.py [--steps 24] [--baseline] [--seq 1024] [--micro 8] [--smoke]
                               [--variants before,after] [--no-compile] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

PEAK_TFLOPS_BF16 = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}
REAL = dict(
    hidden=2048,
    layers=24,
    heads=16,
    inter=5504,
    vocab=32000,
    tower=dict(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
    ),
)
STEADY_FROM = 4  # steady-state figures count steps after this one
SMOKE = dict(
    hidden=64,
    layers=2,
    heads=4,
    inter=128,
    vocab=512,
    tower=dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
    ),
)


def build_model(dims: dict, folder: Path, dtype: torch.dtype, quantized: bool):
    """LlavaForConditionalGeneration from configs, saved once, reloaded (4-bit for QLoRA)."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from harness.model.assemble import bnb_config
    from harness.model.projector import LinearProjector
    from harness.specs import QuantSpec

    if not (folder / "config.json").is_file():
        text = LlamaConfig(
            vocab_size=dims["vocab"] + 1,
            hidden_size=dims["hidden"],
            intermediate_size=dims["inter"],
            num_hidden_layers=dims["layers"],
            num_attention_heads=dims["heads"],
            num_key_value_heads=dims["heads"],
            max_position_embeddings=4096,
        )
        config = LlavaConfig(
            vision_config=CLIPVisionConfig(**dims["tower"]),
            text_config=text,
            image_token_index=dims["vocab"],
            projector_hidden_act="gelu",
            vision_feature_layer=-2,
            vision_feature_select_strategy="default",
        )
        torch.manual_seed(0)
        model = LlavaForConditionalGeneration(config).to(dtype)
        model.save_pretrained(str(folder))
        del model
    quant = bnb_config(QuantSpec()) if quantized else None
    model = LlavaForConditionalGeneration.from_pretrained(
        str(folder),
        dtype=dtype,
        quantization_config=quant,
        device_map={"": 0} if torch.cuda.is_available() else None,
    )
    tower = model.config.vision_config
    proj = LinearProjector(tower.hidden_size, model.config.text_config.hidden_size)
    model.model.multi_modal_projector = proj.to(device=model.device, dtype=dtype)
    return model


class RandomBatches:
    """Samples of `seq` tokens: the image's patch tokens first, then random text, all supervised."""

    def __init__(self, n: int, seq: int, dims: dict):
        tower = dims["tower"]
        self.n, self.seq, self.vocab = n, seq, dims["vocab"]
        self.patches = (tower["image_size"] // tower["patch_size"]) ** 2
        self.size = tower["image_size"]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        g = torch.Generator().manual_seed(i)
        text = torch.randint(0, self.vocab, (self.seq - self.patches,), generator=g)
        ids = torch.cat([torch.full((self.patches,), self.vocab), text])
        labels = ids.clone()
        labels[: self.patches] = -100
        return {
            "input_ids": ids,
            "labels": labels,
            "attention_mask": torch.ones_like(ids),
            "pixel_values": torch.randn(3, self.size, self.size, generator=g),
        }


def collate(items: list[dict]) -> dict:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def tuning_settings(variant: str, args) -> dict:
    """TrainSpec fields of a variant (see the module docstring)."""
    if variant == "before":
        return dict(
            attention="sdpa",
            dataloader_workers=0,
            compile=False,
            auto_checkpointing=False,
            gradient_checkpointing=args.checkpointing,
        )
    if variant == "after":
        return dict(compile=not args.no_compile, gradient_checkpointing=args.checkpointing)
    raise SystemExit(f"unknown variant {variant!r} (before, after)")


def run_method(method: str, args, dims: dict, folder: Path, hardware, variant: str) -> dict:
    from harness_plugins.backends.full import FullFineTune
    from harness_plugins.backends.lora import LoRA
    from harness_plugins.backends.qlora import QLoRA

    from harness.specs import TrainSpec
    from harness.train.loop import StageRun, finish, run_stage
    from harness.train.measure import build_record, model_flops
    from harness.train.params import count_params, params_of, trainable_parts
    from harness.train.tuning import apply_attention

    backend = {"full": FullFineTune(), "lora": LoRA(), "qlora": QLoRA()}[method]
    gpus = 1 if torch.cuda.is_available() else 0
    precision = "bf16" if gpus else "fp32"
    dtype = torch.bfloat16 if gpus else torch.float32
    train = TrainSpec(
        method=method,
        lr=1e-4 if method != "full" else 2e-5,
        warmup_ratio=0.03,
        global_batch=args.micro,
        micro_batch=args.micro,
        max_steps=args.steps,
        lora_rank=64,
        lora_alpha=128,
        precision=precision,
        seed=0,
        max_length=args.seq,
        packing=False,  # its rows are full, unpadded samples of one length: nothing to pack
        **tuning_settings(variant, args),
    )
    if gpus:
        torch.cuda.reset_peak_memory_stats()
    bundle = SimpleNamespace(model=build_model(dims, folder, dtype, method == "qlora"))
    bundle = backend.prepare(bundle, train)
    apply_attention(bundle.model, train, gpus, print)
    data = RandomBatches(args.steps * args.micro, args.seq, dims)
    stamps: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as out:
        outcome = run_stage(
            StageRun(
                model=bundle.model,
                samples=data,
                collator=collate,
                train=train,
                out_dir=Path(out),
                log=lambda line: stamp(stamps, line),
                gpus=gpus,
            )
        )
        finish(outcome, Path(out))
    model = bundle.model
    t = outcome.meter.totals
    flops = model_flops(
        params_of(model, "llm"),
        params_of(model, "tower"),
        t.tokens,
        t.images,
        data.patches,
        llm_trains="llm" in trainable_parts(model) and method == "full",
    )
    trainable, total = count_params(model)
    record = build_record(
        stage="stage2",
        method=method,
        meter=outcome.meter,
        steps=outcome.steps,
        gpus=gpus,
        hardware=hardware,
        trainable=trainable,
        total=total,
        flops=flops,
        tuning=outcome.tuning,
    )
    del outcome
    gc.collect()
    if gpus:
        torch.cuda.empty_cache()
    result = record.model_dump()
    result["variant"] = variant
    result["record_steady_tokens_per_s"] = result["steady_tokens_per_s"]  # the meter's window
    result["steady_tokens_per_s"] = steady_rate(stamps, args)  # the bare loop's window
    if result["mfu"] and result["steady_tokens_per_s"]:
        result["steady_mfu"] = (
            result["mfu"] * result["steady_tokens_per_s"] / result["tokens_per_s"]
        )
    if args.baseline and variant == "before":
        bare, bare_steady = bare_loop(model, data, args, dtype)
        result["bare_tokens_per_s"], result["bare_steady_tokens_per_s"] = bare, bare_steady
        result["harness_vs_bare"] = result["tokens_per_s"] / bare
        if result["steady_tokens_per_s"] and bare_steady:
            result["steady_harness_vs_bare"] = result["steady_tokens_per_s"] / bare_steady
    del bundle, model
    gc.collect()
    if gpus:
        torch.cuda.empty_cache()
    return result


def stamp(stamps: dict[int, float], line: str) -> None:
    """The stage logs `step N/M loss X` after the loss of step N is on the host (a sync)."""
    if line.startswith("step "):
        stamps[int(line.split()[1].split("/")[0])] = time.perf_counter()


def steady_rate(stamps: dict[int, float], args) -> float | None:
    """Tokens/s from the first logged step at or after STEADY_FROM to the last: the stage's
    start (optimizer creation, first-step allocations) left out, as a long stage amortises it."""
    later = sorted(n for n in stamps if n >= STEADY_FROM)
    if len(later) < 2:
        return None
    first, last = later[0], later[-1]
    return (last - first) * args.micro * args.seq / (stamps[last] - stamps[first])


def bare_loop(model, data, args, dtype) -> tuple[float, float | None]:
    """Tokens/s of a plain PyTorch loop over the same model and batches: fused AdamW, autocast,
    no Trainer, no meter, timed the same way (every step, the first included), and over the
    steps the steady figure covers (after step STEADY_FROM to the last)."""
    cuda = torch.cuda.is_available()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-5, fused=cuda)
    device = next(p.device for p in params)
    model.train()
    tokens = 0
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    steady_start = None
    for step in range(args.steps):
        if step == STEADY_FROM:
            if cuda:
                torch.cuda.synchronize()
            steady_start = time.perf_counter()
        batch = collate([data[step * args.micro + i] for i in range(args.micro)])
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        batch["pixel_values"] = batch["pixel_values"].to(dtype)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    if cuda:
        torch.cuda.synchronize()
    ended = time.perf_counter()
    del optim
    steady = None
    if steady_start is not None:
        steady = (args.steps - STEADY_FROM) * args.micro * args.seq / (ended - steady_start)
    return tokens / (ended - started), steady


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(rows: list) -> None:
    """One row per method and variant: whole-stage and steady figures, the tuning used."""
    print(
        "| method | variant | attention | workers | ckpt | compile | tokens/s | MFU "
        "| steady tokens/s | steady MFU | peak MiB | loss first->last | bare steady "
        "| steady ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for method, r, _ in rows:
        print(
            f"| {method} | {r['variant']} | {r['attention']} | {r['loader_workers']} | "
            f"{'on' if r['gradient_checkpointing'] else 'off'} | "
            f"{'on' if r['compiled'] else 'off'} | {r['tokens_per_s']:.0f} | {pct(r['mfu'])} | "
            f"{fmt(r.get('steady_tokens_per_s'))} | {pct(r.get('steady_mfu'))} | "
            f"{r['peak_mem_mb']:.0f} | {r['first_loss']:.3f}->{r['last_loss']:.3f} | "
            f"{fmt(r.get('bare_steady_tokens_per_s'))} | "
            f"{fmt(r.get('steady_harness_vs_bare'), 2)} |"
        )
    print(f"(trainable / total parameters: {', '.join(params_line(rows))})")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def params_line(rows: list) -> list[str]:
    seen = {}
    for method, r, _ in rows:
        seen.setdefault(
            method, f"{method} {r['trainable_params'] / 1e6:.1f}M / {r['total_params'] / 1e6:.1f}M"
        )
    return list(seen.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)  # under 25: no mid-stage checkpoint
    parser.add_argument(
        "--baseline", action="store_true", help="also time a bare PyTorch loop per method"
    )
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--micro", type=int, default=8)
    parser.add_argument("--methods", default="full,lora,qlora")
    parser.add_argument("--checkpointing", action="store_true", help="force checkpointing on")
    parser.add_argument("--variants", default="before", help="before, after, or both")
    parser.add_argument("--no-compile", action="store_true", help="`after` without compile")
    parser.add_argument("--smoke", action="store_true", help="toy width, runs on CPU too")
    parser.add_argument("--json", type=Path, help="also write the table's records here")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.smoke:
        print("SKIP gpu_check: no NVIDIA GPU visible (torch.cuda.is_available() is False)")
        return 0
    from harness.specs import HardwareSpec

    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    peak = next((v for k, v in PEAK_TFLOPS_BF16.items() if k in name), None)
    hardware = HardwareSpec(name=name, gpus_per_node=1, peak_tflops_bf16=peak)
    dims = SMOKE if args.smoke else REAL
    if args.smoke:
        args.seq = min(args.seq, 64)
    variants = args.variants.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            for variant in variants:
                started = time.perf_counter()
                rec = run_method(method, args, dims, Path(tmp) / "model", hardware, variant)
                rows.append((method, rec, time.perf_counter() - started))
                print(f"{method} ({variant}): done in {rows[-1][2]:.0f} s", flush=True)
    print(
        f"\ndevice: {name}; peak bf16 {peak} TFLOP/s; LLaVA with LLM width {dims['hidden']} x "
        f"{dims['layers']} layers; seq {args.seq}; micro batch {args.micro}; {args.steps} steps"
    )
    print_table(rows)
    before = {m: r for m, r, _ in rows if r["variant"] == "before"}
    for method, r, _ in rows:
        base = before.get(method)
        if r["variant"] == "after" and base and base["steady_tokens_per_s"]:
            ratio = r["steady_tokens_per_s"] / base["steady_tokens_per_s"]
            print(f"RATIO tuned_{method} {ratio:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        setup = {k: getattr(args, k) for k in ("steps", "seq", "micro", "checkpointing")}
        body = {"device": name, "peak_tflops_bf16": peak, "llm": dims["hidden"], **setup}
        body["methods"] = {
            f"{method}/{r['variant']}" if len(variants) > 1 else method: {
                **r,
                "seconds": round(t, 1),
            }
            for method, r, t in rows
        }
        args.json.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
