"""Checks a plan passes before anything is written or run: its size, its folders, its data.

`harness plan`, `run` and `eval` share them (through `build_plan`), so that what `plan` accepts
`run` can start, and a bad folder or data source is one line and exit 2 before stage 1, not a
failed step hours later.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import PluginError, UserError, warn
from harness.plan.step_inputs import eval_context
from harness.plugins import Plugins
from harness.protocols import SourceCheck
from harness.specs import CellSpec

# A matrix or plan above the first number is warned about, above the second refused.
CELLS_WARN, CELLS_MAX = 256, 4096
STEPS_WARN, STEPS_MAX = 2_000, 20_000


def check_matrix_size(axes: dict[str, list[Any]]) -> None:
    """The number of cells, before any is resolved."""
    cells = math.prod(len(values) for values in axes.values())
    shape = " x ".join(f"{len(v)} {axis}" for axis, v in axes.items() if len(v) > 1)
    if cells > CELLS_MAX:
        raise UserError(f"the matrix has {cells:,} cells ({shape}); the limit is {CELLS_MAX:,}")
    if cells > CELLS_WARN:
        warn(f"the matrix has {cells:,} cells ({shape})")


def check_step_count(cells: list[CellSpec], plugins: Plugins) -> None:
    """The number of steps the cells need at most, before the DAG is built: a stage 1 and a
    stage 2 per cell, and per benchmark a generate, a score and one judge step per run."""
    steps = 0
    runs = max((ev.runs for cell in cells for ev in cell.evals), default=1)
    for cell in cells:
        steps += 2
        for ev in cell.evals:
            judged = plugins.benchmark(ev.benchmark).judged
            steps += 2 + (ev.runs if judged else 0)
    if steps > STEPS_MAX:
        raise UserError(
            f"the plan would have {steps:,} steps (runs={runs}, {_cells(cells)}); "
            f"the limit is {STEPS_MAX:,}"
        )
    if steps > STEPS_WARN:
        warn(f"the plan has up to {steps:,} steps (runs={runs}, {_cells(cells)})")


def _cells(cells: list[CellSpec]) -> str:
    return f"{len(cells)} cell" + ("s" if len(cells) != 1 else "")


def check_folders(run_dir: Path, store: Path) -> None:
    """The run folder and the store are folders (or can be made) and can be written."""
    check_folder("--out", run_dir)
    check_folder("--store", store)


def check_folder(flag: str, path: Path) -> None:
    """`path` is a folder, or can be made, and can be written (one line naming `flag`)."""
    path = Path(path).resolve()
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(f"{flag} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {path}: {existing} is not writable")


def check_sources(plan: Any, plugins: Plugins) -> None:
    """Each selected benchmark's data source, once: a local path must exist, and a benchmark
    with `check` (SourceCheck) looks at it; both raise one line naming the file."""

    seen: set[tuple[str, str]] = set()
    with tempfile.TemporaryDirectory(prefix="harness-check-") as work:
        for cell in plan.cells.values():
            for ev in cell.evals:
                key = (ev.benchmark, ev.source.canonical())
                if key in seen:
                    continue
                seen.add(key)
                source = ev.source
                if source.kind == "local" and not Path(source.path or "").exists():
                    raise UserError(f"{ev.benchmark} data: {source.path} does not exist")
                bench = plugins.benchmark(ev.benchmark)
                if not isinstance(bench, SourceCheck):
                    continue
                ctx = eval_context(plan, cell, bench, ev, Path(work))
                _call_check(plugins, bench, source, ctx)


def check_train_sources(cells: list[Any], train_data: dict[str, str]) -> None:
    """Each cell's local training data must be there before any step (a stage-1 job would find
    out hours later, on a node); a `language` source that no cell's mix reads is named."""
    for cell in cells:
        for role in ("captions", "instructions", "language"):
            source = getattr(cell.mix, role)
            if source is not None and source.kind == "local":
                if not Path(source.path or "").expanduser().exists():
                    raise UserError(f"train data {role}: {source.path} does not exist")
    if "language" in train_data and all(cell.mix.language is None for cell in cells):
        from harness.errors import warn

        warn("train data language: no cell's mix reads it (mix=llava+sharegpt[:RATIO] does)")


def _call_check(plugins: Plugins, bench: Any, source: Any, ctx: Any) -> None:
    try:
        bench.check(source, ctx)
    except UserError:
        raise
    except Exception as exc:  # a plugin's own bug: labelled with its package, one line
        origin = plugins.origin("benchmark", bench.name)
        raise PluginError(origin.plugin, origin.package, origin.version, exc) from None


def check_checkpoint(ref: str, plan: Any, plugins: Plugins, prompt: str | None) -> Any:
    """`harness eval`: the checkpoint's config and tokenizer, and its image processor when an
    image benchmark is selected (MMLU alone needs none), present and consistent; a missing or
    mismatched file is one line naming it. Returns its tokenizer (None when not loaded here)."""
    from harness.eval.checkpoint_files import check_files

    images = sorted(
        {
            ev.benchmark
            for cell in plan.cells.values()
            for ev in cell.evals
            if plugins.benchmark(ev.benchmark).modality != "language"
        }
    )
    return check_files(ref, images, prompt)
