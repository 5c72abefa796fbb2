"""What a training stage did and cost: samples, tokens, wall time, memory, losses, MFU.

Counts survive a resume: the meter's totals are written into every checkpoint and read back,
so that a stage interrupted and resumed reports the cost of the whole stage.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.results import TrainRecord
from harness.specs import CellSpec, HardwareSpec
from harness.train.params import count_params, params_of, trainable_parts
from harness.train.tuning import Tuning

METER_FILE = "harness_meter.json"
# The steady state leaves out a stage's first steps (optimizer creation, first allocations,
# compilation, loader start-up): a tenth of the steps, at least one, at most ten.
STEADY_SKIP_SHARE, STEADY_SKIP_MAX = 0.1, 10


@dataclass
class Totals:
    samples: int = 0
    tokens: int = 0
    images: int = 0
    wall_s: float = 0.0
    losses: list[float] = field(default_factory=list)


class Meter:
    """Counted by the trainer per micro batch; timed per stage run; saved with checkpoints."""

    def __init__(self) -> None:
        self.totals = Totals()
        self._started: float | None = None
        self._marks: list[tuple[float, int]] = []  # (time, tokens so far) after each step

    def mark(self, step: int) -> None:
        """Step `step` has finished (its loss is on the host)."""
        self._marks.append((time.perf_counter(), self.totals.tokens))

    def steady(self) -> tuple[int, float] | None:
        """(tokens, seconds) of the steps this process ran after the skipped first ones; None
        when too few ran to tell."""
        skip = max(1, min(STEADY_SKIP_MAX, int(len(self._marks) * STEADY_SKIP_SHARE)))
        if len(self._marks) < skip + 2:
            return None
        (t0, tokens0), (t1, tokens1) = self._marks[skip], self._marks[-1]
        return (tokens1 - tokens0, t1 - t0) if t1 > t0 else None

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self) -> None:
        if self._started is not None:
            self.totals.wall_s += time.perf_counter() - self._started
            self._started = None

    def elapsed(self) -> float:
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self.totals.wall_s + running

    def count(self, batch: dict[str, Any], packed_lengths: Any = None) -> None:
        """One micro batch; a packed one's samples and tokens are its `packed_lengths`."""
        mask = batch.get("attention_mask")
        ids = batch["input_ids"]
        if packed_lengths is not None:
            self.totals.samples += len(packed_lengths)
            self.totals.tokens += int(packed_lengths.sum())
        else:
            self.totals.samples += int(ids.shape[0])
            self.totals.tokens += int(mask.sum()) if mask is not None else int(ids.numel())
        pixels = batch.get("pixel_values")
        self.totals.images += int(pixels.shape[0]) if pixels is not None else 0

    def save(self, folder: Path) -> None:
        state = asdict(self.totals)
        state["wall_s"] = self.elapsed()
        (Path(folder) / METER_FILE).write_text(json.dumps(state))

    def restore(self, folder: Path) -> bool:
        path = Path(folder) / METER_FILE
        if not path.is_file():
            return False
        self.totals = Totals(**json.loads(path.read_text()))
        return True


def peak_memory_mb(gpus: int) -> float:
    """Peak CUDA memory allocated, or the process's peak resident memory on CPU."""
    if gpus > 0:
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def model_flops(
    llm_params: int, tower_params: int, tokens: int, images: int, patches: int, llm_trains: bool
) -> float:
    """Model FLOPs of the work done: 2N per token forward, 2N more for activation gradients,
    2N more when the LLM's own weights get gradients; the frozen tower runs forward only."""
    per_token = (6 if llm_trains else 4) * llm_params
    return per_token * tokens + 2 * tower_params * images * (patches + 1)


def build_record(
    *,
    stage: str,
    method: str,
    meter: Meter,
    steps: int,
    gpus: int,
    hardware: HardwareSpec,
    trainable: int,
    total: int,
    flops: float,
    launch_command: list[str] | None = None,
    tuning: Tuning | None = None,
) -> TrainRecord:
    t = meter.totals
    wall = max(meter.elapsed(), 1e-9)
    devices = max(1, gpus)  # the CPU counts as one device
    peak = hardware.peak_tflops_bf16
    mfu = flops / (wall * devices * peak * 1e12) if (peak and gpus > 0) else None
    steady = meter.steady()
    steady_rate = steady[0] / steady[1] if steady else None
    steady_mfu = None
    if steady_rate is not None and mfu is not None and t.tokens:
        steady_mfu = flops / t.tokens * steady_rate / (devices * peak * 1e12)
    return TrainRecord(
        stage=stage,
        method=method,
        steps=steps,
        samples=t.samples,
        tokens=t.tokens,
        wall_s=round(wall, 3),
        gpus=gpus,
        gpu_hours_per_node=wall / 3600 * devices / max(1, hardware.gpus_per_node),
        tokens_per_s=t.tokens / wall,
        samples_per_s=t.samples / wall,
        peak_mem_mb=round(peak_memory_mb(gpus), 1),
        mfu=mfu,
        trainable_params=trainable,
        total_params=total,
        first_loss=t.losses[0] if t.losses else None,
        last_loss=t.losses[-1] if t.losses else None,
        launch_command=launch_command,
        steady_tokens_per_s=steady_rate,
        steady_mfu=steady_mfu,
        attention=tuning.attention if tuning else None,
        loader_workers=tuning.loader_workers if tuning else None,
        gradient_checkpointing=tuning.gradient_checkpointing if tuning else None,
        compiled=tuning.compiled if tuning else None,
    )


def measured(bundle: Any, outcome: Any) -> tuple[int, int, float]:
    """(trainable, total, FLOPs) of the model as it trained: taken before the backend's `save`,
    which may merge or unload what trained (a merged adapter has no trainable parameters)."""
    model, totals = bundle.model, outcome.meter.totals
    trainable, total = count_params(model)
    flops = model_flops(
        params_of(model, "llm"),
        params_of(model, "tower"),
        totals.tokens,
        totals.images,
        bundle.image_tokens,
        llm_trains="llm" in trainable_parts(model),
    )
    return trainable, total, flops


def stage_record(
    stage: str,
    method: str,
    outcome: Any,
    figures: tuple[int, int, float],
    cell: CellSpec,
    gpus: int,
) -> TrainRecord:
    """A finished stage's TrainRecord; `figures` are `measured`'s."""
    trainable, total, flops = figures
    hardware = cell.hardware
    if hardware.accelerator == "cpu":  # CPU ranks share one machine: its hours are the wall's
        hardware = hardware.model_copy(update={"gpus_per_node": 1})
    return build_record(
        stage=stage,
        method=method,
        meter=outcome.meter,
        steps=outcome.steps,
        gpus=gpus,
        hardware=hardware,
        trainable=trainable,
        total=total,
        flops=flops,
        tuning=outcome.tuning,
    )
