"""`harness calibrate RUN_DIR`: measured efficiency per method from finished runs, for the planner.

Efficiency = the training FLOPs a cell did / (wall time x GPUs x peak), each cell with the peak
of its own hardware (RUN_DIR/plan.json holds every cell's; a matrix over `hardware` mixes
A100s and H100s). The planner then uses these instead of the study's Table 4 fit for the
methods measured.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness.cost.planner import FLOPS_PER_PARAM_TOKEN, calibration_file
from harness.errors import UserError
from harness.results import RunResults
from harness.support.atomic import write_atomic


def cell_peaks(run_dir: Path) -> dict[str, float | None]:
    """Each cell's hardware peak (TFLOPS, bf16) from RUN_DIR/plan.json; {} without one."""
    try:
        cells = json.loads((Path(run_dir) / "plan.json").read_text()).get("cells", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {
        cid: (cell.get("hardware") or {}).get("peak_tflops_bf16")
        for cid, cell in cells.items()
        if isinstance(cell, dict)
    }


def measured_efficiency(
    results: RunResults, peaks: dict[str, float | None] | None = None
) -> dict[str, list[float]]:
    """Efficiencies per method; `peaks` (cell id -> peak) over the run's first hardware."""
    peaks = peaks or {}
    found: dict[str, list[float]] = {}
    for cell in results.cells:
        peak = peaks.get(cell.id, results.hardware.get("peak_tflops_bf16"))
        record = cell.train.get("stage2")
        params_b = cell.model.get("params_b")
        if not record or not peak or not params_b or record.wall_s <= 0 or not record.tokens:
            continue
        factor = FLOPS_PER_PARAM_TOKEN.get(record.method)
        if factor is None:
            continue
        flops = factor * params_b * 1e9 * record.tokens
        found.setdefault(record.method, []).append(
            flops / (record.wall_s * max(1, record.gpus) * peak * 1e12)
        )
    return found


def calibrate(run_dirs: list[Path]) -> dict[str, float]:
    samples: dict[str, list[float]] = {}
    for run_dir in run_dirs:
        path = Path(run_dir) / "results.json"
        if not path.is_file():
            raise UserError(f"no results.json in {run_dir}")
        results = RunResults.read(path)
        for method, values in measured_efficiency(results, cell_peaks(run_dir)).items():
            samples.setdefault(method, []).extend(values)
    if not samples:
        raise UserError(
            "no stage-2 cell in these runs ran on hardware with a known peak "
            "(peak_tflops_bf16): nothing to calibrate"
        )
    efficiency = {m: math.exp(sum(map(math.log, v)) / len(v)) for m, v in samples.items()}
    target = calibration_file()
    current = json.loads(target.read_text()) if target.is_file() else {}
    current.setdefault("efficiency", {}).update(efficiency)
    current.setdefault("runs", []).extend(str(Path(r).resolve()) for r in run_dirs)
    write_atomic(target, json.dumps(current, indent=2, sort_keys=True) + "\n")
    return efficiency
