"""Assemble RUN_DIR/results.json and RUN_DIR/samples/ from the store's finished steps.

Only manifests and step outputs are read, so a report can be rebuilt from any store without
recomputing. Each cell's cost covers every step it depends on (shared stage-1 steps included):
what reproducing that cell alone would cost.

A run never makes a run folder's results worse: cells of earlier runs in the same folder keep
their place in results.json when this plan does not have them (a smaller matrix) or when this
run's cell of the same id did not finish and lacks some of their scores (a new setting that
failed).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from harness import __version__
from harness.cost.measured import usd
from harness.judging.prices import add_judge_cost
from harness.plan.plan_file import Plan
from harness.report.samples import item_scores_path, samples_path
from harness.results import BenchmarkResult, CellResult, CostRecord, RunResults, TrainRecord
from harness.run.jobs import log_path
from harness.run.runner import RunSummary


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def collect(
    plan: Plan,
    summary: RunSummary | None = None,
    earlier: dict[str, CellResult] | None = None,
    kept: list[str] | None = None,
) -> RunResults:
    """The plan's cells from the store. An `earlier` cell of the same id stays instead (its id
    added to `kept`, its samples left as they are) when this run's cell did not finish and
    lacks some of its scores: a new setting that failed does not remove earlier results."""
    store = plan.store
    index = plan.by_id()
    earlier = earlier or {}
    cells = []
    for cid, cell in plan.cells.items():
        scored: list[tuple[Path, str]] = []
        lineage = _lineage(plan, cid)
        result = CellResult(
            id=cid,
            axes=cell.axes,
            spec_sha256=cell.sha256(),
            model={
                "size": cell.model.size.name,
                "params_b": cell.model.size.params_b,
                "resolution": cell.model.resolution,
                "projector": cell.model.projector,
                "image_tokens": cell.model.image_tokens,
            },
        )
        cost = CostRecord()
        for sid in lineage:
            step = index[sid]
            if not store.done(step.key):
                if summary and sid in summary.failed:
                    result.failed_steps.append(
                        {
                            "step": sid,
                            "error": summary.failed[sid],
                            "log": str(log_path(plan.run_dir, sid)),
                        }
                    )
                continue
            folder = store.step_dir(step.key)
            manifest = store.manifest(step.key)
            if step.kind in ("stage1", "stage2"):
                record = TrainRecord.model_validate_json((folder / "record.json").read_text())
                result.train[step.kind] = record
                result.data.update(manifest.get("data") or {})
                setattr(
                    cost,
                    f"{step.kind}_gpu_hours",
                    getattr(cost, f"{step.kind}_gpu_hours") + record.gpu_hours_per_node,
                )
            elif step.kind == "generate":
                cost.eval_gpu_hours += manifest.get("gpu_hours_per_node", 0.0)
            elif step.kind == "judge":  # paid, saved by the cache, or price unknown
                add_judge_cost(cost, manifest)
            elif step.kind == "score":
                bench = BenchmarkResult.model_validate_json((folder / "result.json").read_text())
                _point_into_step_folder(bench, store.work_dir(step.key), folder)
                result.benchmarks[bench.benchmark] = bench
                scored.append((folder, bench.benchmark))
        old = earlier.get(cid)
        if old is not None and set(old.benchmarks) - set(result.benchmarks):
            if not all(store.done(index[sid].key) for sid in lineage):
                cells.append(old)
                if kept is not None:
                    kept.append(cid)
                continue
        for folder, benchmark in scored:
            _copy_score_samples(plan.run_dir, cid, folder, benchmark)
        gpu_hours = cost.stage1_gpu_hours + cost.stage2_gpu_hours + cost.eval_gpu_hours
        cost.gpu_usd = usd(gpu_hours, cell.hardware)
        cost.total_usd = cost.gpu_usd + cost.judge_usd
        result.cost = cost
        cells.append(result)
    first = next(iter(plan.cells.values()), None)
    return RunResults(
        harness_version=__version__,
        git=git_revision(),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        experiment=plan.experiment,
        hardware=first.hardware.model_dump(mode="json") if first else {},
        cells=cells,
    )


def _lineage(plan: Plan, cid: str) -> list[str]:
    """Every step a cell needs, dependencies first."""
    return [s.id for s in plan.steps if cid in s.cells]


def _point_into_step_folder(bench: BenchmarkResult, work: Path, folder: Path) -> None:
    """A file the benchmark wrote while scoring (MMBench's test-split submission) was named in
    the step's work folder, which became `folder` when the step finished: name it there."""
    final = str(folder.resolve())
    written = sorted({str(work), str(work.absolute()), str(work.resolve())}, key=len, reverse=True)

    def moved(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for old in written:
            value = value.replace(old, final)
        return value

    bench.extra = {key: moved(value) for key, value in bench.extra.items()}


def _copy_score_samples(run_dir: Path, cid: str, folder: Path, benchmark: str) -> None:
    _copy_samples(folder / "samples.jsonl", samples_path(run_dir, cid, benchmark))
    items = item_scores_path(run_dir, cid, benchmark)
    items.unlink(missing_ok=True)  # a copy from an earlier score of this cell
    _copy_samples(folder / "items.jsonl", items)


def _copy_samples(src: Path, dst: Path) -> None:
    if src.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def earlier_cells(path: Path) -> list[CellResult]:
    """The cells of the results.json at `path` (unreadable or of an older schema: none)."""
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    cells = []
    for raw in body.get("cells", []) if isinstance(body, dict) else []:
        try:
            cells.append(CellResult.model_validate(raw))
        except ValueError:
            continue  # a cell from an older schema that no longer reads: not carried on
    return cells


def write_results(plan: Plan, summary: RunSummary | None = None) -> tuple[Path, list[str]]:
    """Write results.json, keeping earlier cells this plan does not have and earlier scores
    this run could not reproduce (see `collect`); also the ids of the latter."""
    path = plan.run_dir / "results.json"
    earlier = {cell.id: cell for cell in earlier_cells(path)}
    kept: list[str] = []
    results = collect(plan, summary, earlier, kept)
    results.cells.extend(cell for cid, cell in earlier.items() if cid not in plan.cells)
    results.write(path)
    return path, kept
