"""What each step kind does. The core meets plugins only here, through their protocols.

A step reads its dependencies' folders from the store, writes into its own work folder, and
returns the fields its manifest records. Exceptions from plugin code are labelled with the
plugin's package and version by the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.plan.dag import Step
from harness.plan.plan_file import Plan
from harness.plan.step_inputs import (
    dep_dirs,
    eval_spec,
    load_items,
    read_generation,
    request_json,
    shuffle_images,
)
from harness.plugins import Plugins
from harness.protocols import (
    AnswersRequests,
    ItemScoring,
    ModelOutput,
    OwnTraining,
    RendersPrompts,
    ReportColumns,
)
from harness.results import BenchmarkResult, TrainRecord
from harness.run.judge_step import run_judge_step
from harness.specs import sha256_of

Log = Callable[[str], None]


def run_train(plan: Plan, step: Step, plugins: Plugins, work: Path, log: Log) -> dict[str, Any]:
    cell = plan.cells[step.cell]
    backend = plugins.backend(step.plugin[1])
    inputs = dep_dirs(plan, step)
    for kind, path in inputs.items():
        if not (path / "manifest.json").is_file():
            raise UserError(f"{step.id}: the {kind} output {path} is missing or incomplete")
    if isinstance(backend, OwnTraining):
        record = backend.train(cell, step.kind, inputs, work, log)
    else:
        from harness.train import run_stage2

        record = run_stage2(cell, backend, inputs["stage1"], work, log)
    record = TrainRecord.model_validate(
        record.model_dump() if hasattr(record, "model_dump") else record
    )
    (work / "record.json").write_text(record.model_dump_json(indent=2) + "\n")
    from harness.plan.dag import trained_on

    return {
        "gpus": record.gpus,
        "gpu_hours_per_node": record.gpu_hours_per_node,
        "data": {} if cell.stage2.method == "checkpoint" else trained_on(cell, step.kind),
    }


def run_generate(plan: Plan, step: Step, plugins: Plugins, work: Path, log: Log) -> dict:
    """Answer the benchmark's requests. The work folder keeps a journal of finished batches
    across attempts (harness.eval.journal): a crashed attempt's answers are reused, its wall
    time is counted, and the finished folder holds only what an uninterrupted step's does."""
    from harness.eval.journal import AnswerJournal, clear_all_but_journal

    clear_all_but_journal(work)
    cell = plan.cells[step.cell]
    bench = plugins.benchmark(step.plugin[1])
    ev = eval_spec(cell, bench.name)
    ctx, items = load_items(plan, cell, bench, ev, work)
    requests = bench.requests(items, ctx)
    if ev.control == "shuffled-images":
        requests = shuffle_images(requests, seed=ev.source.seed)
    backend = plugins.backend(cell.stage2.method)
    model = backend.load(cell.model, dep_dirs(plan, step)["stage2"])
    log(f"{bench.name}: {len(items)} items, {len(requests)} requests")
    journal = AnswerJournal(work, log)
    try:
        if isinstance(model, AnswersRequests):  # its own engine: answered from scratch
            outputs = model.run_requests(requests, batch_size=ev.batch_size)
        else:
            from harness.eval import run_requests

            outputs = run_requests(model, requests, batch_size=ev.batch_size, journal=journal)
    finally:
        wall = journal.save_wall()  # this attempt's and the earlier ones': all were paid for
    from harness.eval.prompts import rendered_prompt

    tokenizer = model.tokenizer if isinstance(model, RendersPrompts) else None
    with open(work / "outputs.jsonl", "w") as fh:
        for req in requests:
            out = outputs[req.id]
            line = {
                "request_sha256": sha256_of(request_json(req)),
                "prompt": rendered_prompt(tokenizer, req),  # as read, images as <image>
                **out.to_json(),
            }
            fh.write(json.dumps(line, sort_keys=True) + "\n")
    journal.remove()
    from harness.cost.measured import gpu_hours_per_node

    gpus = 1  # generation runs on one device
    return {
        "gpus": gpus,
        "eval_wall_s": wall,
        "n_requests": len(requests),
        "gpu_hours_per_node": gpu_hours_per_node(wall, gpus, cell.hardware),
    }


def run_judge(plan: Plan, step: Step, plugins: Plugins, work: Path, log: Log) -> dict:
    """Judge one run of one benchmark; fails rather than finish incomplete (judge_step.py)."""
    return run_judge_step(plan, step, plugins, work, log)


def run_score(plan: Plan, step: Step, plugins: Plugins, work: Path, log: Log) -> dict:
    cell = plan.cells[step.cell]
    bench = plugins.benchmark(step.spec["benchmark"])
    ev = eval_spec(cell, bench.name)
    ctx, items = load_items(plan, cell, bench, ev, work)
    deps = plan.deps(step)
    gen = next(d for d in deps if d.kind == "generate")
    prompts: dict[str, str] = {}
    outputs, hashes = read_generation(plan.store.step_dir(gen.key), prompts)
    runs = [
        json.loads((plan.store.step_dir(d.key) / "judgments.json").read_text())
        for d in sorted((d for d in deps if d.kind == "judge"), key=lambda d: d.spec["run"])
    ]
    judgments = [run["parsed"] for run in runs]
    result: BenchmarkResult = bench.score(items, outputs, judgments, ctx)
    if isinstance(bench, ReportColumns) and not result.columns:
        result.columns = dict(bench.report_columns)
    if runs:
        result.judge = runs[0]["judge"]
        for run in runs:  # judge-side failures the benchmark could not see as such
            for reason, count in run.get("failures", {}).items():
                result.failures.setdefault(f"judge:{reason}", 0)
                result.failures[f"judge:{reason}"] += count
    (work / "result.json").write_text(result.model_dump_json(indent=2) + "\n")
    _write_samples(work / "samples.jsonl", outputs, runs, hashes, prompts)
    if isinstance(bench, ItemScoring):
        _write_item_scores(work / "items.jsonl", bench.item_scores(items, outputs, judgments, ctx))
    log(f"{bench.name}: {result.primary} = {result.metrics.get(result.primary)}")
    return {"primary": result.primary, "value": result.metrics.get(result.primary)}


def _item_score(parsed: Any) -> Any:
    if isinstance(parsed, int | float) and not isinstance(parsed, bool):
        return parsed
    if isinstance(parsed, list | tuple) and len(parsed) == 2:  # pairwise: (reference, model)
        return parsed[1]
    return None


def _write_samples(
    path: Path,
    outputs: dict[str, ModelOutput],
    runs: list[dict],
    hashes: dict[str, str],
    prompts: dict[str, str] | None = None,
) -> None:
    with open(path, "w") as fh:
        seen = set()
        for oid, out in outputs.items():
            judged = [run["parsed"].get(oid) for run in runs]
            records = [run.get("records", {}).get(oid) for run in runs]
            line = {
                "request_sha256": hashes.get(oid),
                "prompt": (prompts or {}).get(oid),
                **out.to_json(),
                "parsed": judged,
                "judge": records,
                "score": [_item_score(p) for p in judged] if runs else None,
            }
            fh.write(json.dumps(line, sort_keys=True, default=str) + "\n")
            seen.add(oid)
        extra_ids = sorted({k for run in runs for k in run["parsed"]} - seen)
        for jid in extra_ids:  # judge requests not tied one-to-one to a generation request
            judged = [run["parsed"].get(jid) for run in runs]
            line = {
                "id": jid,
                "parsed": judged,
                "judge": [run.get("records", {}).get(jid) for run in runs],
                "score": [_item_score(p) for p in judged],
            }
            fh.write(json.dumps(line, sort_keys=True, default=str) + "\n")


def _write_item_scores(path: Path, scores: dict[str, list[float | None]]) -> None:
    """One line per question: {"id", "score": [per judging run]}; nothing when there are none."""
    if not scores:
        return
    with open(path, "w") as fh:
        for item_id, per_run in scores.items():
            fh.write(json.dumps({"id": item_id, "score": per_run}, sort_keys=True) + "\n")


RUNNERS: dict[str, Callable[[Plan, Step, Plugins, Path, Log], dict[str, Any]]] = {
    "stage1": run_train,
    "stage2": run_train,
    "generate": run_generate,
    "judge": run_judge,
    "score": run_score,
}
