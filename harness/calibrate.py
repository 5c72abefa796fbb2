"""`harness calibrate RUN_DIR`: measured efficiency per method from finished runs, for the planner.

Efficiency = the training FLOPs a cell did / (wall time x GPUs x peak). The planner then uses
these instead of the study's Table 4 fit for the methods measured.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness.errors import UserError
from harness.planner import FLOPS_PER_PARAM_TOKEN, calibration_file
from harness.results import RunResults


def measured_efficiency(results: RunResults) -> dict[str, list[float]]:
    peak = results.hardware.get("peak_tflops_bf16")
    found: dict[str, list[float]] = {}
    for cell in results.cells:
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
        for method, values in measured_efficiency(RunResults.read(path)).items():
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
    target.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    return efficiency
