"""Generation: the harness's engine against a naive loop on MMBench CircularEval and LLaVA-Bench.

Both answer the same requests (the mmbench and llava-bench plugins' requests on the synthetic
world's sets) with the same tiny LLaVA (tiny-1m with its tiny CLIP tower, 32 px), greedy:

- engine: `harness.eval.engine.generate`, batched with left padding, one tower forward per
  distinct image (MMBench's rotations and LLaVA-Bench's questions share images);
- naive: what a plain script does: one request at a time, the image preprocessed and encoded
  again for every question, `model.generate(input_ids, pixel_values)`.

One untimed request on each side warms both up first; each side's time is its fastest of
`--repeats` runs (2, or 1 with --quick), the two sides alternating. The outputs must be
identical; the last line is `RATIO generation <naive s / engine s>`.

    .venv/bin/python bench/generation.py [--quick] [--batch-size 32] [--max-new-tokens 48]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def build_model():
    """The tiny-1m LLaVA the default experiment starts from (foundation parts, cached)."""
    from harness.config.registry import load_registry
    from harness.model import build_llava
    from harness.specs import ModelSpec

    registry = load_registry()
    size = registry.size("tiny-1m")
    tower = registry.tower(size.tower)
    spec = ModelSpec(size=size, tower=tower, resolution=tower.resolutions[0])
    bundle = build_llava(spec)
    bundle.model.eval()
    return bundle


def load_requests(work: Path, scale: str, max_new_tokens: int, quick: bool) -> dict[str, list]:
    """{benchmark: requests} from the plugins, on sets written under `work`."""
    from harness_plugins.benchmarks.llava_bench import LlavaBench
    from harness_plugins.benchmarks.mmbench import MMBench

    from harness.data.synthetic.benchsets import write_llava_bench, write_mmbench
    from harness.protocols import EvalContext
    from harness.specs import DataSource, EvalSpec

    write_mmbench(work / "mmbench", 0, scale)
    write_llava_bench(work / "llava-bench", 0, scale)
    out = {}
    for bench, folder in ((MMBench(), "mmbench"), (LlavaBench(), "llava-bench")):
        spec = EvalSpec(benchmark=bench.name, max_new_tokens=max_new_tokens)
        ctx = EvalContext(eval=spec, assets={}, work_dir=work / "ctx")
        items = bench.load(DataSource(kind="local", path=str(work / folder)), ctx)
        if quick:
            items = items[: len(items) // 3]
        out[bench.name] = bench.requests(items, ctx)
    return out


def run_engine(bundle, requests: list, batch_size: int) -> tuple[dict[str, str], float, int]:
    from harness.eval.engine import ImageFeatures, generate

    started = time.perf_counter()
    features = ImageFeatures(bundle.model, bundle.image_processor)
    outputs = generate(bundle, requests, batch_size, features=features)
    seconds = time.perf_counter() - started
    return {rid: out.text for rid, out in outputs.items()}, seconds, features.encoded


def run_naive(bundle, requests: list) -> tuple[dict[str, str], float, int]:
    """One request at a time; the image is opened, preprocessed and encoded for each."""
    import torch
    from PIL import Image

    from harness.model.templates import prompt_ids

    model, tokenizer, processor = bundle.model, bundle.tokenizer, bundle.image_processor
    n_image = bundle.spec.image_tokens
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    texts, encoded = {}, 0
    started = time.perf_counter()
    for req in requests:
        messages = [{"from": "human", "value": req.prompt}]
        ids = torch.tensor([prompt_ids(messages, tokenizer, req.template, n_image)])
        kwargs = {}
        if req.image:
            image = Image.open(req.image).convert("RGB")
            kwargs["pixel_values"] = processor([image], return_tensors="pt")["pixel_values"]
            encoded += 1
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=req.max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
                **kwargs,
            )
        row = out[0, ids.shape[1] :].tolist()
        if tokenizer.eos_token_id in row:
            row = row[: row.index(tokenizer.eos_token_id)]
        texts[req.id] = tokenizer.decode(row, skip_special_tokens=True).strip()
    return texts, time.perf_counter() - started, encoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a third of the small sets")
    parser.add_argument("--scale", choices=("small", "medium"), default="small")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48, help="the tiny experiment's")
    parser.add_argument("--repeats", type=int, help="timed runs per side (default 2; quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep bench/out/generation")
    args = parser.parse_args()
    work = BENCH / "out" / "generation"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        import torch

        torch.manual_seed(0)
        bundle = build_model()
        by_bench = load_requests(work, args.scale, args.max_new_tokens, args.quick)
        rows, mismatches = [], []
        for requests in by_bench.values():  # warm both paths up (lazy inits, allocator); untimed
            run_engine(bundle, requests[:2], args.batch_size)
            run_naive(bundle, requests[:1])
        repeats = args.repeats or (1 if args.quick else 2)
        for name, requests in by_bench.items():
            engine_s = naive_s = float("inf")
            for _ in range(repeats):
                engine, seconds, engine_enc = run_engine(bundle, requests, args.batch_size)
                engine_s = min(engine_s, seconds)
                naive, seconds, naive_enc = run_naive(bundle, requests)
                naive_s = min(naive_s, seconds)
            bad = [rid for rid in naive if naive[rid] != engine.get(rid)]
            mismatches += [(name, rid, naive[rid], engine.get(rid)) for rid in bad]
            images = len({r.image for r in requests if r.image})
            rows.append((name, len(requests), images, engine_s, engine_enc, naive_s, naive_enc))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(rows, mismatches, args)


def report(rows: list, mismatches: list, args) -> None:
    print(
        f"tiny-1m LLaVA, greedy, max_new_tokens {args.max_new_tokens}, engine batch "
        f"{args.batch_size}; images = distinct images; encoded = tower forwards (images); "
        "seconds = fastest run"
    )
    print(
        f"{'benchmark':<12}{'requests':>9}{'images':>8}{'engine s':>10}{'encoded':>9}"
        f"{'naive s':>9}{'encoded':>9}{'ratio':>7}"
    )
    for name, n, images, engine_s, engine_enc, naive_s, naive_enc in rows:
        print(
            f"{name:<12}{n:>9}{images:>8}{engine_s:>10.2f}{engine_enc:>9}{naive_s:>9.2f}"
            f"{naive_enc:>9}{naive_s / engine_s:>7.2f}"
        )
    engine_total = sum(r[3] for r in rows)
    naive_total = sum(r[5] for r in rows)
    n_total = sum(r[1] for r in rows)
    print(
        f"{'total':<12}{n_total:>9}{'':>8}{engine_total:>10.2f}{'':>9}{naive_total:>9.2f}"
        f"{'':>9}{naive_total / engine_total:>7.2f}"
    )
    print(f"identical greedy outputs: {n_total - len(mismatches)}/{n_total}")
    for name, rid, naive, engine in mismatches[:5]:
        print(f"  {name} {rid}: naive {naive!r} != engine {engine!r}")
    if mismatches:
        sys.exit("FAIL: the engine's outputs differ from the naive loop's")
    print(f"RATIO generation {naive_total / engine_total:.2f}")


if __name__ == "__main__":
    main()
