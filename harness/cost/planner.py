"""The cost planner: GPU-hours per node, dollars and memory per GPU before anything runs.

Time = training FLOPs / (GPUs x peak x efficiency). Training FLOPs follow the method: full
fine-tuning computes weight gradients (6 FLOPs per parameter and token), LoRA and QLoRA do not
(4; QLoRA adds dequantisation). The efficiency per method is calibrated: from the study's
Table 4 by default (three numbers fitted to nine cells), and from the user's own finished runs
with `harness calibrate RUN_DIR`, so estimates improve with use.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cost.judge_estimate import judge_estimates
from harness.plan.plan_file import Plan
from harness.specs import CellSpec, HardwareSpec
from harness.support.paths import cache_dir

# Stage-2 data of the study: LLaVA-80K conversations; stage 1: 558K caption pairs.
STAGE2_SAMPLES = 80_000
STAGE2_TEXT_TOKENS = 340  # average text tokens per LLaVA-80K conversation
STAGE1_SAMPLES = 558_000
STAGE1_TEXT_TOKENS = 20
FLOPS_PER_PARAM_TOKEN = {"full": 6.0, "lora": 4.0, "qlora": 4.0, "projector": 4.0}

# Table 4 (size in B params, method, GPU-hours per node), the default calibration set.
PAPER_TABLE4 = [
    (6.74, "full", 1.3),
    (13.0, "lora", 2.1),
    (13.0, "full", 2.3),
    (32.5, "lora", 4.62),
    (32.5, "qlora", 4.68),
    (32.5, "lora", 4.79),
    (32.5, "full", 5.80),
    (65.2, "lora", 9.17),
    (65.2, "full", 13.50),
]
A100_PEAK_TFLOPS = 312.0


def stage_tokens(cell: CellSpec, stage: str) -> float:
    """Tokens one epoch of a stage processes (image tokens by resolution included)."""
    image = cell.model.image_tokens
    if stage == "stage1":
        samples, text = STAGE1_SAMPLES, STAGE1_TEXT_TOKENS
        epochs = cell.stage1.epochs
    else:
        samples, text = STAGE2_SAMPLES * (1 + cell.mix.language_ratio), STAGE2_TEXT_TOKENS
        epochs = cell.stage2.epochs
    return samples * (image + text) * epochs


def _flops(params_b: float, method: str, tokens: float) -> float:
    return FLOPS_PER_PARAM_TOKEN.get(method, 6.0) * params_b * 1e9 * tokens


def fit_paper_efficiency() -> dict[str, float]:
    """Per-method efficiency fitted (geometric mean) to Table 4 on A100 nodes."""
    logs: dict[str, list[float]] = {}
    for params_b, method, gpu_hours in PAPER_TABLE4:
        tokens = STAGE2_SAMPLES * (256 + STAGE2_TEXT_TOKENS)
        ideal_s = _flops(params_b, method, tokens) / (A100_PEAK_TFLOPS * 1e12)
        gpu_s = gpu_hours * 8 * 3600  # per node -> GPU-seconds
        logs.setdefault(method, []).append(math.log(ideal_s / gpu_s))
    return {m: math.exp(sum(v) / len(v)) for m, v in logs.items()}


def calibration_file() -> Path:
    return cache_dir() / "calibration.json"


def paper_efficiencies() -> dict[str, float]:
    """The study's Table 4 fit; stage 1 (projector) at LoRA's, as neither computes weight grads."""
    eff = fit_paper_efficiency()
    eff.setdefault("projector", eff["lora"])
    return eff


def measured_efficiencies() -> dict[str, float]:
    """`harness calibrate`'s efficiencies per method ({} before any calibration)."""
    path = calibration_file()
    return json.loads(path.read_text()).get("efficiency", {}) if path.is_file() else {}


def efficiencies() -> dict[str, float]:
    """The paper's fit, with the user's measured efficiencies (harness calibrate) over it."""
    return {**paper_efficiencies(), **measured_efficiencies()}


def memory_gb_per_gpu(cell: CellSpec, gpus: int) -> float:
    """Weights, gradients, optimizer states per GPU under the cell's ZeRO stage, + activations."""
    n = cell.model.size.params_b * 1e9
    spec = cell.stage2
    zero = spec.zero_stage or 0
    if spec.quantization is not None:
        weights = n * spec.quantization.bits / 8
    else:
        weights = 2 * n
    trainable = n if spec.method == "full" else n * 0.0075
    states = trainable * (2 + 12)  # bf16 grads + fp32 master, m, v
    if zero >= 3:
        weights /= gpus
    if zero >= 2:
        states /= gpus
    elif zero == 1:
        states = trainable * 2 + trainable * 12 / gpus
    activations = 8e9 if cell.model.size.params_b >= 30 else 4e9
    return (weights + states + activations) / 1e9


def estimate_cell(cell: CellSpec, eff: dict[str, float]) -> dict[str, Any]:
    hw: HardwareSpec = cell.hardware
    out: dict[str, Any] = {"warnings": []}
    if hw.peak_tflops_bf16 is None or cell.model.size.tiny is not None:
        return {"warnings": [], "note": "no estimate for this hardware/size"}
    gpus = hw.gpus_per_node * hw.nodes
    for stage, spec in (("stage1", cell.stage1), ("stage2", cell.stage2)):
        method = "projector" if stage == "stage1" else spec.method
        if method not in FLOPS_PER_PARAM_TOKEN:
            continue
        params = cell.model.size.params_b
        seconds = _flops(params, method, stage_tokens(cell, stage)) / (
            gpus * hw.peak_tflops_bf16 * 1e12 * eff.get(method, eff["full"])
        )
        out[f"{stage}_gpu_hours"] = seconds / 3600 * gpus / hw.gpus_per_node
    gpu_hours = out.get("stage1_gpu_hours", 0.0) + out.get("stage2_gpu_hours", 0.0)
    out["gpu_usd"] = gpu_hours * hw.usd_per_node_hour
    mem = memory_gb_per_gpu(cell, gpus)
    out["memory_gb_per_gpu"] = mem
    out["oom"] = mem > hw.gpu_memory_gb
    if out["oom"]:
        out["warnings"].append(
            f"needs about {mem:.0f} GB per GPU under ZeRO-{cell.stage2.zero_stage or 0}, "
            f"more than the {hw.gpu_memory_gb:.0f} GB of {hw.name}"
        )
    return out


@dataclass(frozen=True)
class Totals:
    """The plan's estimate summed over its cells."""

    gpu_usd: float
    judge_usd: float | None  # None: some judge has no price, so the sum is unknown
    total_usd: float | None
    table4_gpu_usd: float | None = None  # with a calibration: GPU dollars at Table 4's efficiency

    @property
    def judge_price_unknown(self) -> bool:
        return self.judge_usd is None

    def as_json(self) -> dict[str, Any]:
        """The form `harness plan --json` writes as `total_estimate`."""
        out: dict[str, Any] = {
            "gpu_usd": self.gpu_usd,
            "judge_usd": self.judge_usd,
            "total_usd": self.total_usd,
        }
        if self.table4_gpu_usd is not None:
            out["table4_gpu_usd"] = self.table4_gpu_usd
        if self.judge_price_unknown:
            out["judge_price_unknown"] = True
        return out


@dataclass(frozen=True)
class Estimate:
    """A plan's estimate: each cell's (estimate_cell()'s keys, judge and total dollars added)
    by cell id, and their sum."""

    cells: dict[str, dict[str, Any]]
    total: Totals


def estimate_plan(plan: Plan) -> Estimate:
    """Estimates per cell and their sum, judge dollars included."""
    eff = efficiencies()
    # With a calibration, each cell also shows what the study's Table 4 efficiency would cost:
    # the difference is what this harness's measured throughput saves.
    paper = paper_efficiencies() if measured_efficiencies() else None
    cells: dict[str, dict[str, Any]] = {}
    judge = judge_estimates(plan)
    gpu_usd = judge_usd = total_usd = table4_usd = 0.0
    unknown = False
    for cid, cell in plan.cells.items():
        est = estimate_cell(cell, eff)
        if paper is not None and "gpu_usd" in est:
            table4 = estimate_cell(cell, paper)
            est["table4"] = {k: v for k, v in table4.items() if k.endswith(("_hours", "_usd"))}
            table4_usd += table4["gpu_usd"]
        est["judge_usd"] = judge.get(cid, 0.0)
        if est["judge_usd"] is None:  # a judge with no price: unknown, never a partial sum
            est["judge_price_unknown"] = unknown = True
            est["total_usd"] = None
        else:
            est["total_usd"] = (est.get("gpu_usd") or 0.0) + est["judge_usd"]
        gpu_usd += est.get("gpu_usd") or 0.0
        judge_usd += est["judge_usd"] or 0.0
        total_usd += est["total_usd"] or 0.0
        cells[cid] = est
    total = Totals(
        gpu_usd=gpu_usd,
        judge_usd=None if unknown else judge_usd,
        total_usd=None if unknown else total_usd,
        table4_gpu_usd=table4_usd if paper is not None else None,
    )
    return Estimate(cells=cells, total=total)
