"""`harness eval --model`: a plan whose cells evaluate an existing checkpoint, untrained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.experiment import Options, build_plan


def is_multimodal(model_ref: str) -> bool | None:
    """True for a LLaVA checkpoint folder, False for a plain LM, None when it cannot be told."""
    config = Path(model_ref) / "config.json"
    if not config.is_file():
        return None
    body = json.loads(config.read_text())
    return body.get("model_type") == "llava" or "vision_config" in body


def checkpoint_plan(opts: Options, plugins: Any, model_ref: str):
    local = Path(model_ref)
    if (local.exists() or model_ref.startswith((".", "/"))) and not local.is_dir():
        raise UserError(f"--model {model_ref}: no such checkpoint folder")
    ref = str(local.resolve()) if local.is_dir() else model_ref
    # one cell per checkpoint: the size only names it (the checkpoint's own config decides)
    from harness.matrix import parse_matrix

    sizes = parse_matrix(opts.matrix).get("size")
    opts.matrix = [
        m for m in opts.matrix if not m.startswith(("methods=", "method=", "sizes=", "size="))
    ]
    opts.matrix += ["methods=checkpoint", f"sizes={sizes[0]}" if sizes else "sizes=tiny-1m"]
    if opts.out is None:
        opts.out = Path("runs") / f"eval-{Path(ref).name}"
    plan = build_plan(opts, plugins)
    multimodal = is_multimodal(ref)
    for cid, cell in list(plan.cells.items()):
        stage2 = cell.stage2.model_copy(update={"checkpoint": ref})
        evals = cell.evals
        if multimodal is False:
            evals = [
                e for e in evals if plugins.get("benchmark", e.benchmark).modality == "language"
            ]
        plan.cells[cid] = cell.model_copy(update={"stage2": stage2, "evals": evals})
    from harness.dag import build_dag

    plan.steps = build_dag(list(plan.cells.values()), plugins, plan.assets)
    if not any(c.evals for c in plan.cells.values()):
        raise UserError(f"--model {model_ref}: no selected benchmark can evaluate this model")
    return plan
