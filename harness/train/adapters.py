"""PEFT training outputs: adapters + projector in adapter/, and how the base was loaded.

A stage-2 adapter folder holds `adapter/` (PEFT: the adapters and, as a modules_to_save module,
the projector), the model spec, and the manifest harness_adapter.json (method, quantization).
Loading rebuilds the base with `build_llava` and applies the adapter; merging folds the
adapters into the weights and gives a plain transformers LLaVA folder (`harness merge`). Any
PEFT method whose adapter peft can load and merge (LoRA, QLoRA, DoRA, ...) works the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.specs import ModelSpec, QuantSpec

ADAPTER_DIR = "adapter"
META_FILE = "harness_adapter.json"
MANIFEST_FILE = META_FILE


def write_manifest(out_dir: Path, method: str, quantization: QuantSpec | None = None) -> Path:
    """harness_adapter.json: the method that trained and the base's quantization (None: the
    base loads unquantized). `harness merge` and `harness eval --model` read it."""
    meta = {"method": method, "quantization": quantization.model_dump() if quantization else None}
    path = Path(out_dir) / META_FILE
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return path


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The manifest as written, its quantization a QuantSpec; one line when it is not there."""
    path = Path(out_dir) / META_FILE
    if not path.is_file() or not (Path(out_dir) / ADAPTER_DIR).is_dir():
        raise UserError(f"{out_dir} is not a LoRA/QLoRA training output: {path.name} is missing")
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        quant = meta.get("quantization")
        meta["quantization"] = QuantSpec.model_validate(quant) if quant else None
    except ValueError as exc:
        raise UserError(f"{path} is corrupt: {exc}") from None
    return meta


def save_adapter(
    bundle: Any, out_dir: Path, method: str, quantization: QuantSpec | None = None
) -> None:
    """The PEFT model's adapter (and modules_to_save) in adapter/, the spec, the manifest."""
    from harness.model.assemble import SPEC_FILE

    out_dir = Path(out_dir)
    bundle.model.save_pretrained(str(out_dir / ADAPTER_DIR))
    (out_dir / SPEC_FILE).write_text(bundle.spec.canonical() + "\n")
    write_manifest(out_dir, method, quantization)


def adapter_quantization(out_dir: Path) -> QuantSpec | None:
    return read_manifest(out_dir)["quantization"]


def load_adapter(model: ModelSpec, out_dir: Path, *, merge: bool) -> Any:
    """The base rebuilt fresh (quantized as trained unless merging), the adapter applied."""
    from peft import PeftModel

    from harness.model import build_llava

    quant = adapter_quantization(out_dir)
    bundle = build_llava(model, quantization=None if merge else quant)
    bundle.model = PeftModel.from_pretrained(bundle.model, str(Path(out_dir) / ADAPTER_DIR))
    if merge:
        bundle.model = bundle.model.merge_and_unload()
    bundle.model.eval()
    return bundle


def merge_adapter(ckpt: Path, out: Path) -> Path:
    """Fold an adapter output into a plain transformers LLaVA folder at `out`.

    A QLoRA adapter is merged into the unquantized base weights: the merged model differs from
    the trained 4-bit one by the quantization error of the base.
    """
    from harness.model import save_bundle
    from harness.model.persist import read_spec

    ckpt = Path(ckpt)
    adapter_quantization(ckpt)  # a clear error before anything loads
    bundle = load_adapter(read_spec(ckpt), ckpt, merge=True)
    return save_bundle(bundle, Path(out))
