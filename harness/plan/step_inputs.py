"""What a step reads from its plan and the store: its cell's eval spec, its dependencies'
folders, a benchmark's context and items, a generate step's outputs, the judge it asks.

The generate, judge and score steps, the judge estimate and the preflight checks all read these
the same way, so they live below all of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.plan.dag import Step
from harness.plan.plan_file import Plan
from harness.plugins import Plugins
from harness.protocols import Benchmark, EvalContext, Judge, ModelOutput
from harness.specs import CellSpec, EvalSpec


def eval_spec(cell: CellSpec, bench: str) -> EvalSpec:
    return next(e for e in cell.evals if e.benchmark == bench)


def dep_dirs(plan: Plan, step: Step) -> dict[str, Path]:
    return {dep.kind: plan.store.step_dir(dep.key) for dep in plan.deps(step)}


def eval_context(
    plan: Plan, cell: CellSpec, bench: Benchmark, ev: EvalSpec, work: Path
) -> EvalContext:
    """The benchmark's context, its protocol assets fetched and verified (or left out)."""
    assets: dict[str, Path] = {}
    names = tuple(bench.assets)
    if names:
        from harness.config.assets import available, planned

        mirror = Path(plan.assets_mirror) if plan.assets_mirror else None
        registry = Path(plan.registry_file) if plan.registry_file else None
        if plan.assets is not None:  # exactly the assets the step keys were made with
            assets = planned(names, plan.assets, mirror=mirror, registry_file=registry)
        else:
            assets, _missing = available(names, mirror=mirror, registry_file=registry)
    return EvalContext(
        eval=ev,
        assets=assets,
        work_dir=work,
        judge_name=cell.judge.name,
        judge_snapshot=cell.judge.snapshot,
    )


def load_items(plan: Plan, cell: CellSpec, bench: Benchmark, ev: EvalSpec, work: Path):
    ctx = eval_context(plan, cell, bench, ev, work)
    return ctx, bench.load(ev.source, ctx)


def shuffle_images(requests: list[Any], seed: int) -> list[Any]:
    """Give each image-bearing request the image of another item (a seeded derangement of
    distinct images), keeping rotations of one item on one image."""
    import random
    from dataclasses import replace

    images = sorted({r.image for r in requests if getattr(r, "image", None)})
    if len(images) < 2:
        return requests
    shifted = images[:]
    random.Random(seed).shuffle(shifted)
    mapping = {a: b for a, b in zip(shifted, shifted[1:] + shifted[:1], strict=True)}
    return [
        replace(r, image=mapping[r.image]) if getattr(r, "image", None) else r for r in requests
    ]


def request_json(req: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(req)


def read_generation(
    gen_dir: Path, prompts: dict[str, str] | None = None
) -> tuple[dict[str, ModelOutput], dict[str, str]]:
    """A generate step's outputs and each request's sha256 (the per-sample input hash); each
    request's rendered prompt goes into `prompts` when one is given."""
    outputs, hashes = {}, {}
    for line in (gen_dir / "outputs.jsonl").read_text().splitlines():
        body = json.loads(line)
        hashes[body["id"]] = body.pop("request_sha256", None)
        prompt = body.pop("prompt", None)  # steps generated before prompts were kept have none
        if prompts is not None and prompt is not None:
            prompts[body["id"]] = prompt
        outputs[body["id"]] = ModelOutput(**body)
    return outputs, hashes


def judge_prices(plan: Plan) -> dict[str, Any]:
    from harness.config.registry import load_registry

    return load_registry(Path(plan.registry_file) if plan.registry_file else None).judges


def make_judge(plugins: Plugins, cell: CellSpec, benchmark: str) -> Judge:
    return plugins.judge(cell.judge.name)(cell.judge.for_benchmark(benchmark))
