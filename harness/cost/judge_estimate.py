"""Judge dollars before a judge step runs, from the prompts it will send.

Every cell is estimated the same way, tiny ones included: its pending judge steps' requests are
built with the benchmark's own judge_requests(), from the model's answers when its generate step
is finished, else from placeholder answers as long as the generation may be (max_new_tokens).
Prompt tokens are counted from the messages' characters (3.5 a token: English averages about 4
with OpenAI's tokenizers, so this leans high) plus the chat format's overhead. A completion is
counted as its request's max_tokens up to COMPLETION_TOKENS (GPT-4's reviews under LLaVA's and
Vicuna's rules run 100-250 tokens, against a max_tokens of 1024; MM-Vet's and MMBench's are a few
tokens and count as such). Requests already in the judge cache cost nothing. None means the
snapshot has no price in the registry: unknown, never $0. A budget does not rest on the estimate
alone: a judge step checks measured spend before every request batch (harness/cost/judge_budget.py).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.judging.prices import judge_usd
from harness.plan.dag import Step
from harness.plan.plan_file import Plan
from harness.plan.step_inputs import read_generation, shuffle_images
from harness.plugins import Plugins
from harness.protocols import (
    Benchmark,
    EvalContext,
    GenerationRequest,
    JudgeRequest,
    ModelOutput,
)
from harness.specs import CellSpec

CHARS_PER_TOKEN = 3.5
TOKENS_PER_MESSAGE = 4  # role and separators of the chat format
TOKENS_PER_REQUEST = 3  # the reply's priming
COMPLETION_TOKENS = 256  # a long judge review; shorter max_tokens count as they are


def prompt_tokens(request: JudgeRequest) -> int:
    """Estimated prompt tokens of one request."""
    text = sum(
        math.ceil(len(str(m.get("content", ""))) / CHARS_PER_TOKEN) for m in request.messages
    )
    return text + TOKENS_PER_MESSAGE * len(request.messages) + TOKENS_PER_REQUEST


def requests_usd(
    requests: Sequence[JudgeRequest], snapshot: str, prices: dict[str, Any]
) -> float | None:
    """Dollars these requests are expected to cost; None when the snapshot is unpriced."""
    prompt = sum(prompt_tokens(r) for r in requests)
    completion = sum(min(int(r.max_tokens), COMPLETION_TOKENS) for r in requests)
    return judge_usd(snapshot, prompt, completion, prices)


def placeholder_outputs(requests: Sequence[Any]) -> dict[str, ModelOutput]:
    """Answers as long as each generation may be (about 4 characters a token)."""
    out = {}
    for r in requests:
        if isinstance(r, GenerationRequest):
            out[r.id] = ModelOutput(id=r.id, text="word " * max(1, int(r.max_new_tokens)))
        else:
            out[r.id] = ModelOutput(id=r.id, logliks=[0.0] * len(getattr(r, "continuations", ())))
    return out


def step_requests(plan: Plan, step: Step, plugins: Plugins, work: Path, memo: dict) -> list:
    """The judge requests `step` will send (placeholder answers if not generated yet)."""

    cell = plan.cells[step.cell]
    bench = plugins.benchmark(step.spec["benchmark"])
    ev = next(e for e in cell.evals if e.benchmark == bench.name)
    gen = next(d for d in plan.deps(step) if d.kind == "generate")
    ctx = EvalContext(
        eval=ev,
        assets=_cached_assets(plan, bench),
        work_dir=work,
        judge_name=cell.judge.name,
        judge_snapshot=cell.judge.snapshot,
    )
    source_key = (bench.name, ev.source.model_dump_json())
    if source_key not in memo:
        memo[source_key] = bench.load(ev.source, ctx)
    items = memo[source_key]
    if plan.store.done(gen.key):
        outputs, _ = read_generation(plan.store.step_dir(gen.key))
    else:
        outputs_key = ("placeholder", *source_key, ev.model_dump_json())
        if outputs_key not in memo:
            generation = bench.requests(items, ctx)
            if ev.control == "shuffled-images":
                generation = shuffle_images(generation, seed=ev.source.seed)
            memo[outputs_key] = placeholder_outputs(generation)
        outputs = memo[outputs_key]
    return bench.judge_requests(items, outputs, step.spec["run"], ctx)


def _cached_assets(plan: Plan, bench: Benchmark) -> dict[str, Path]:
    """Protocol files already here (an estimate never downloads)."""
    names = tuple(bench.assets)
    if not names:
        return {}
    from harness.config.assets import asset_specs

    specs = asset_specs(Path(plan.registry_file) if plan.registry_file else None)
    mirror = Path(plan.assets_mirror) if plan.assets_mirror else None
    found = {}
    for name in names:
        spec = specs.get(name)
        if spec is None:
            continue
        for path in (spec.cache_path, mirror / spec.mirror if mirror else None):
            if path is not None and path.is_file():
                found[name] = path
                break
    return found


def snapshot_of(plugins: Plugins, cell: CellSpec, benchmark: str) -> str:
    """The snapshot a cell's judge uses for `benchmark` (the plugin's default when unset)."""
    spec = cell.judge.for_benchmark(benchmark)
    if spec.snapshot:
        return spec.snapshot
    return plugins.judge(spec.name)(spec).snapshot()


def pending_judge_steps(plan: Plan) -> list:
    return [s for s in plan.steps if s.kind == "judge" and not plan.store.done(s.key)]


def judge_estimates(plan: Plan) -> dict[str, float | None]:
    """Dollars each cell's pending judging is expected to cost (None: price unknown)."""
    from harness.config.registry import load_registry
    from harness.judging.cache import JudgeCache
    from harness.judging.prices import is_offline
    from harness.plugins import get_plugins

    plugins = get_plugins()
    prices = load_registry(Path(plan.registry_file) if plan.registry_file else None).judges
    out: dict[str, float | None] = {cid: 0.0 for cid in plan.cells}
    cache_path = plan.store.judge_cache_path
    cache = JudgeCache(cache_path) if Path(cache_path).is_file() else None
    memo: dict = {}
    with tempfile.TemporaryDirectory(prefix="harness-estimate-") as tmp:
        for step in pending_judge_steps(plan):
            snapshot = snapshot_of(plugins, plan.cells[step.cell], step.spec["benchmark"])
            if is_offline(snapshot):  # no dollars: no need to build its requests
                continue
            requests = step_requests(plan, step, plugins, Path(tmp), memo)
            if cache is not None:
                hits = cache.get_many(snapshot, requests)
                requests = [r for r, hit in zip(requests, hits, strict=True) if hit is None]
            usd = requests_usd(requests, snapshot, prices)
            total = out[step.cell]
            out[step.cell] = None if usd is None or total is None else total + usd
    return out


def unpriced_snapshots(plan: Plan) -> list[str]:
    """Snapshots of pending judge steps that the registry has no price for."""
    from harness.config.registry import load_registry
    from harness.judging.prices import is_offline, price_of
    from harness.plugins import get_plugins

    plugins = get_plugins()
    prices = load_registry(Path(plan.registry_file) if plan.registry_file else None).judges
    found = []
    for step in pending_judge_steps(plan):
        snapshot = snapshot_of(plugins, plan.cells[step.cell], step.spec["benchmark"])
        if not is_offline(snapshot) and price_of(snapshot, prices) is None:
            found.append(snapshot)
    return sorted(set(found))
