"""The `base` method: no training; evaluates the untouched LLM on the language-only benchmarks.

The study's Table 5 compares each LLaVA with its base LLM; `methods=base` puts that row in a
matrix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.hookspecs import hookimpl

if TYPE_CHECKING:
    from harness.results import TrainRecord
    from harness.specs import CellSpec, HardwareSpec, ModelSpec, SizeSpec, TrainSpec


class BaseLLM:
    name = "base"
    version = "1"
    needs_stage1 = False
    language_only = True

    def defaults(self, size: SizeSpec) -> dict[str, Any]:
        return {}

    def train(
        self, cell: CellSpec, stage: str, inputs: dict[str, Path], out_dir: Path, log
    ) -> TrainRecord:
        from harness.results import TrainRecord

        log("base: nothing to train")
        return TrainRecord(stage=stage, method=self.name)

    def load_model(self, model: ModelSpec, train: TrainSpec, stage1_dir: Path | None) -> Any:
        return self.load(model, Path())

    def prepare(self, bundle: Any, train: TrainSpec) -> Any:
        return bundle

    def deepspeed_config(self, train: TrainSpec, hardware: HardwareSpec, gpus: int) -> dict:
        return {}

    def save(self, bundle: Any, out_dir: Path) -> None:
        """Nothing was trained: nothing to save."""

    def load(self, model: ModelSpec, out_dir: Path) -> Any:
        from harness.eval import load_base_llm

        return load_base_llm(model)


@hookimpl
def register_backends(register):
    register(BaseLLM())
