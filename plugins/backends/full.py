"""Full fine-tuning: the LLM and the projector train, the vision tower stays frozen."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.backends._shared import Stage2Backend

from harness.hookspecs import hookimpl

if TYPE_CHECKING:
    from harness.specs import ModelSpec, TrainSpec


class FullFineTune(Stage2Backend):
    name = "full"
    version = "1"
    zero_stage = 3

    def prepare(self, bundle: Any, train: TrainSpec) -> Any:
        from harness.train.params import part_of, set_trainable

        set_trainable(bundle.model, lambda name: part_of(name) in ("llm", "projector"))
        return bundle

    def save(self, bundle: Any, out_dir: Path) -> None:
        """A plain transformers folder (model, tokenizer, image processor) plus the spec."""
        from harness.model import save_bundle

        save_bundle(bundle, out_dir)

    def load(self, model: ModelSpec, out_dir: Path) -> Any:
        from harness.model import load_bundle

        return load_bundle(out_dir)


@hookimpl
def register_backends(register):
    register(FullFineTune())
