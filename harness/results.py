"""The typed results schema: what a run writes to RUN_DIR/results.json and reports read.

Metric names are stable (see METRICS) so that reports can lay out the study's tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

# Stable metric names per built-in benchmark (third-party ones choose their own).
METRICS: dict[str, tuple[str, ...]] = {
    "llava-bench": ("overall", "conv", "detail", "complex"),
    "mm-vet": ("total", "rec", "ocr", "know", "gen", "spat", "math"),
    "mmbench": ("overall", "LR", "AR", "RR", "FP-S", "FP-C", "CP"),  # + "leaf/<category>"
    "vicuna-80": ("overall",),  # + "<category>"
    "mmlu": ("micro", "macro"),  # + "subject/<name>"
}


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BenchmarkResult(Model):
    """One benchmark's scores in one cell, with everything needed to judge comparability."""

    benchmark: str
    version: str
    primary: str  # the headline metric, e.g. "overall" or "total"
    metrics: dict[str, float]  # means over judging runs
    std: dict[str, float] = Field(default_factory=dict)  # population std over runs (runs > 1)
    runs: list[dict[str, float]] = Field(default_factory=list)  # per-run metrics
    n_items: int
    n_failed: int = 0  # items excluded from the score (judge errors, parse failures, no output)
    failures: dict[str, int] = Field(default_factory=dict)  # reason -> count
    protocol: dict[str, Any] = Field(default_factory=dict)  # includes "official": bool
    judge: dict[str, Any] | None = None  # {"name", "snapshot", "official"}
    extra: dict[str, Any] = Field(default_factory=dict)  # e.g. a submission file path
    # metric -> column label for the benchmark's own report table (its `report_columns`)
    columns: dict[str, str] = Field(default_factory=dict)


class TrainRecord(Model):
    """What one training stage did and cost."""

    stage: str
    method: str
    steps: int = 0
    samples: int = 0
    tokens: int = 0
    wall_s: float = 0.0
    gpus: int = 0  # 0 = CPU
    gpu_hours_per_node: float = 0.0  # wall hours x GPUs / GPUs per node (the paper's unit)
    tokens_per_s: float = 0.0
    samples_per_s: float = 0.0
    peak_mem_mb: float = 0.0
    mfu: float | None = None
    trainable_params: int = 0
    total_params: int = 0
    first_loss: float | None = None
    last_loss: float | None = None
    launch_command: list[str] | None = None
    # After the first steps (harness.train.measure.STEADY_SKIP_*): what a longer stage tends to.
    steady_tokens_per_s: float | None = None
    steady_mfu: float | None = None
    # How the stage was tuned for its device (harness.train.tuning); None in older records.
    attention: str | None = None
    loader_workers: int | None = None
    gradient_checkpointing: bool | None = None
    compiled: bool | None = None


class CostRecord(Model):
    """A cell's cost: GPU-hours per node by phase, dollars, judge dollars."""

    stage1_gpu_hours: float = 0.0
    stage2_gpu_hours: float = 0.0
    eval_gpu_hours: float = 0.0
    gpu_usd: float = 0.0
    judge_usd: float = 0.0  # paid: answers served from the judge cache are not spend
    judge_usd_saved: float = 0.0  # what the cached answers would have cost at the price
    judge_price_unknown: bool = False  # a judge snapshot with no price: judge_usd is not all
    judge_prompt_tokens: int = 0
    judge_completion_tokens: int = 0
    total_usd: float = 0.0
    estimated: bool = False  # True when these are the planner's estimates, not measurements


class CellResult(Model):
    id: str
    axes: dict[str, Any]
    spec_sha256: str
    model: dict[str, Any] = Field(default_factory=dict)
    # what each stage trained on, by role: source, and a local file's sha256 (its manifest's)
    data: dict[str, dict[str, Any]] = Field(default_factory=dict)
    train: dict[str, TrainRecord] = Field(default_factory=dict)  # "stage1", "stage2"
    benchmarks: dict[str, BenchmarkResult] = Field(default_factory=dict)
    cost: CostRecord = Field(default_factory=CostRecord)
    failed_steps: list[dict[str, str]] = Field(default_factory=list)  # {"step", "error", "log"}


class RunResults(Model):
    schema_version: int = SCHEMA_VERSION
    harness_version: str
    git: str | None = None
    created: str
    experiment: dict[str, Any]
    hardware: dict[str, Any] = Field(default_factory=dict)
    cells: list[CellResult]

    def write(self, path: Path) -> None:
        from harness.support.atomic import write_atomic

        write_atomic(path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> RunResults:
        return cls.model_validate(json.loads(Path(path).read_text()))
