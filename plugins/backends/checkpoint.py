"""The `checkpoint` method: evaluate an existing model (ours, llava-hf, or a plain causal LM)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.hookspecs import hookimpl

if TYPE_CHECKING:
    from harness.results import TrainRecord
    from harness.specs import CellSpec, HardwareSpec, ModelSpec, SizeSpec, TrainSpec


class ExistingCheckpoint:
    name = "checkpoint"
    version = "1"
    needs_stage1 = False

    def defaults(self, size: SizeSpec) -> dict[str, Any]:
        return {}

    def train(
        self, cell: CellSpec, stage: str, inputs: dict[str, Path], out_dir: Path, log
    ) -> TrainRecord:
        """Nothing trains: the step records which checkpoint the cell evaluates, and its size."""
        from harness.plan.eval_model import describe
        from harness.results import TrainRecord

        (out_dir / "checkpoint.txt").write_text(str(cell.stage2.checkpoint) + "\n")
        log(f"evaluating existing checkpoint {cell.stage2.checkpoint}")
        params = describe(str(cell.stage2.checkpoint)).params or 0
        return TrainRecord(stage=stage, method=self.name, total_params=params)

    def load_model(self, model: ModelSpec, train: TrainSpec, stage1_dir: Path | None) -> Any:
        from harness.eval import load_model

        return load_model(str(train.checkpoint))

    def prepare(self, bundle: Any, train: TrainSpec) -> Any:
        return bundle

    def deepspeed_config(self, train: TrainSpec, hardware: HardwareSpec, gpus: int) -> dict:
        return {}

    def save(self, bundle: Any, out_dir: Path) -> None:
        """Nothing was trained: nothing to save."""

    def load(self, model: ModelSpec, out_dir: Path) -> Any:
        from harness.eval import load_model

        return load_model((out_dir / "checkpoint.txt").read_text().strip())


@hookimpl
def register_backends(register):
    register(ExistingCheckpoint())
