"""Stage 1 (feature alignment) as a backend: only the projector trains, and only it is saved."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.hookspecs import hookimpl

if TYPE_CHECKING:
    from harness.specs import CellSpec, HardwareSpec, ModelSpec, SizeSpec, TrainSpec


class ProjectorAlignment:
    name = "projector"
    version = "1"
    needs_stage1 = False

    def defaults(self, size: SizeSpec) -> dict[str, Any]:
        return {}

    def train(self, cell: CellSpec, stage: str, inputs: dict[str, Path], out_dir: Path, log):
        from harness.train import run_stage1

        return run_stage1(cell, out_dir, log)

    def load_model(self, model: ModelSpec, train: TrainSpec, stage1_dir: Path | None) -> Any:
        from harness.model import build_llava

        return build_llava(model)

    def prepare(self, bundle: Any, train: TrainSpec) -> Any:
        for name, param in bundle.model.named_parameters():
            param.requires_grad = "multi_modal_projector" in name
        return bundle

    def deepspeed_config(self, train: TrainSpec, hardware: HardwareSpec, gpus: int) -> dict:
        return {}

    def save(self, bundle: Any, out_dir: Path) -> None:
        from harness.model import save_projector

        save_projector(bundle.model, out_dir / "projector.safetensors")

    def load(self, model: ModelSpec, out_dir: Path) -> Any:
        from harness.model import build_llava

        return build_llava(model, projector_path=out_dir / "projector.safetensors")


@hookimpl
def register_backends(register):
    register(ProjectorAlignment())
