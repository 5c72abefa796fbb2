"""`harness eval --model`: a plan whose cells evaluate an existing checkpoint, untrained.

The cells and the results describe the checkpoint itself: its name (the folder's, or the hub id),
its own parameter count (read from its weight files' headers, nothing loaded), method
"checkpoint", and an experiment record of what the evaluation used — never the registry size
that only served to build the cell, nor the default experiment's training settings.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.plan.build import Options, build_plan

# Axes that describe an evaluation; the others (data mix, ranks, learning rates...) train
EVAL_AXES = ("size", "method", "beam", "runs", "judge", "control", "hardware")
# Experiment fields that describe an evaluation (the rest are training settings)
EVAL_FIELDS = ("judge", "hardware", "executor", "budget_usd", "seed")


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint is, as far as reports need it."""

    ref: str  # the folder (resolved) or hub id
    name: str
    params: int | None  # None when no weight file could be read
    hidden_size: int | None
    multimodal: bool | None
    # a LLaVA's image side: image_size, patch_size, hidden_size (of the tower), projector
    vision: dict[str, Any] | None = None
    # where its files are read: the folder, or a hub id's folder in the local hub cache
    files: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "params": self.params,
            "hidden_size": self.hidden_size,
            "multimodal": self.multimodal,
            "vision": self.vision,
        }


def _read_config(model_ref: str) -> dict[str, Any] | None:
    config = Path(model_ref) / "config.json"
    if not config.is_file():
        return None
    try:
        return json.loads(config.read_text())
    except ValueError as exc:
        raise UserError(f"{config} is not valid JSON: {exc}") from None


def is_multimodal(model_ref: str) -> bool | None:
    """True for a LLaVA checkpoint folder, False for a plain LM, None when it cannot be told."""
    body = _read_config(model_ref)
    if body is None:
        return None
    return body.get("model_type") == "llava" or "vision_config" in body


def _hidden_size(config: dict[str, Any] | None) -> int | None:
    if not config:
        return None
    text = config.get("text_config") or config
    value = text.get("hidden_size") or text.get("n_embd") or text.get("d_model")
    return int(value) if value else None


# The harness saves a one-layer (`linear`) projector with an identity second layer that its
# loader folds away (harness.model.projector): not one of the model's parameters.
IDENTITY_LAYER = "multi_modal_projector.linear_2."


def _vision(config: dict[str, Any] | None, folded: bool) -> dict[str, Any] | None:
    """A LLaVA config's image side; the projector is `linear` when it is one layer."""
    tower = (config or {}).get("vision_config")
    if not tower or not tower.get("image_size") or not tower.get("patch_size"):
        return None
    linear = folded or config.get("projector_hidden_act") == "linear"
    return {
        "image_size": int(tower["image_size"]),
        "patch_size": int(tower["patch_size"]),
        "hidden_size": int(tower.get("hidden_size") or 0),
        "projector": "linear" if linear else "mlp2x_gelu",
    }


def safetensors_params(path: Path, skip: tuple[str, ...] = ()) -> int:
    """Elements of every tensor in a safetensors file (names containing `skip` left out), from
    its JSON header alone."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(min(length, 1 << 30)))
        if not isinstance(header, dict):
            raise ValueError("its header is not a JSON object")
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable safetensors file ({exc})") from None
    total = 0
    for name, entry in header.items():
        if name != "__metadata__" and not any(part in name for part in skip):
            count = 1
            for dim in entry["shape"]:
                count *= int(dim)
            total += count
    return total


def folder_params(folder: Path, skip: tuple[str, ...] = ()) -> int | None:
    """The parameters stored in a checkpoint folder's weight files (safetensors, else .bin)."""
    files = sorted(folder.glob("*.safetensors"))
    if files:
        return sum(safetensors_params(f, skip) for f in files)
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if not bins:
        return None
    import torch

    total = 0
    for path in bins:
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        total += sum(
            t.numel()
            for name, t in state.items()
            if hasattr(t, "numel") and not any(part in name for part in skip)
        )
    return total


def _folded_away(folder: Path) -> tuple[str, ...]:
    """Stored tensors that loading a harness-saved model with a linear projector drops."""
    from harness.model.assemble import SPEC_FILE

    spec = folder / SPEC_FILE
    try:
        linear = spec.is_file() and json.loads(spec.read_text()).get("projector") == "linear"
    except ValueError:
        return ()
    return (IDENTITY_LAYER,) if linear else ()


def _hub_params(repo: str) -> int | None:
    """A hub model's parameters from its safetensors metadata (None offline or without it)."""
    try:
        from huggingface_hub import get_safetensors_metadata

        counts = get_safetensors_metadata(repo).parameter_count
    except Exception:  # noqa: BLE001 - offline, gated, no safetensors: the count is unknown
        return None
    return int(sum(counts.values()))


def _cached_params(snapshot: Path) -> int | None:
    """A hub id's parameters from weight files already in the local hub cache, when all of
    them are there (a first run downloads them; planning fetches only the small files)."""
    index = snapshot / "model.safetensors.index.json"
    if index.is_file():
        shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        if not shards or not all((snapshot / shard).is_file() for shard in shards):
            return None
    elif not (snapshot / "model.safetensors").is_file():
        return None
    return folder_params(snapshot)


def _describe_training_output(folder: Path) -> CheckpointInfo | None:
    """A stage-2 adapter folder (LoRA, QLoRA, a plugin's PEFT method) described by the model
    spec it was trained from: its weights are the base model's, not in the folder."""
    from harness.model.assemble import SPEC_FILE
    from harness.train.adapters import META_FILE

    if not (folder / META_FILE).is_file() or not (folder / SPEC_FILE).is_file():
        return None
    from harness.model.persist import read_spec

    spec = read_spec(folder)
    vision = {
        "image_size": spec.resolution,
        "patch_size": spec.tower.patch_size,
        "hidden_size": spec.tower.hidden_size,
        "projector": spec.projector,
    }
    params = round(spec.size.params_b * 1e9)
    return CheckpointInfo(str(folder), folder.name, params, spec.size.hidden_size, True, vision)


def describe(ref: str) -> CheckpointInfo:
    """Name, parameter count, width and kind of the checkpoint at `ref` (folder or hub id)."""
    local = Path(ref)
    if local.is_dir() and (trained := _describe_training_output(local)):
        return trained
    if local.is_dir():
        config = _read_config(ref)
        folded = _folded_away(local)
        params = folder_params(local, folded)
        name = local.name
    else:  # a hub id: its config from the local hub cache, fetched there first
        from harness.eval.checkpoint_files import hub_snapshot

        local = hub_snapshot(ref)
        params = _hub_params(ref) or _cached_params(local)
        config, name, folded = _read_config(str(local)), ref, ()
    vision = _vision(config, bool(folded))
    multimodal = is_multimodal(str(local))
    return CheckpointInfo(ref, name, params, _hidden_size(config), multimodal, vision, files=local)


def _cell_id(name: str, old_id: str, old_size: str) -> str:
    """The cell id with the checkpoint's name in place of the size that built the cell."""
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "-", name).strip("-") or "model"
    return safe + old_id[len(old_size) :] if old_id.startswith(old_size) else f"{safe}_{old_id}"


def _describe_cell(cell: Any, info: CheckpointInfo, evals: list[Any]) -> Any:
    """The cell with the checkpoint as its model: its name, parameters and width."""
    old = cell.model.size
    size = old.model_copy(
        update={
            "name": info.name,
            "llm": info.ref,
            "hidden_size": info.hidden_size or old.hidden_size,
            # unknown (a hub id offline): the building size's stands in; the record says None
            "params_b": info.params / 1e9 if info.params else old.params_b,
            "placeholder": False,
            "tiny": None,
        }
    )
    model = cell.model.model_copy(update={"size": size})
    if info.vision:  # the checkpoint's own tower and projector, not the registry size's
        vision = info.vision
        tower = model.tower.model_copy(
            update={
                "name": f"{info.name}-vision",
                "checkpoints": {},
                "hidden_size": vision["hidden_size"] or model.tower.hidden_size,
                "resolutions": [vision["image_size"]],
                "patch_size": vision["patch_size"],
                "tiny": None,
            }
        )
        model = model.model_copy(
            update={
                "tower": tower,
                "resolution": vision["image_size"],
                "projector": vision["projector"],
            }
        )
    axes = {k: v for k, v in cell.axes.items() if k in EVAL_AXES}
    axes.update({"size": info.name, "method": "checkpoint"})
    return cell.model_copy(
        update={
            "id": _cell_id(info.name, cell.id, str(cell.axes.get("size", old.name))),
            "axes": axes,
            "model": model,
            "stage2": cell.stage2.model_copy(update={"checkpoint": info.ref}),
            "evals": evals,
        }
    )


def _experiment_record(plan: Any, info: CheckpointInfo) -> dict[str, Any]:
    """What the evaluation used: the model, each benchmark's settings as run, the judge."""
    exp = plan.experiment
    evals = {e.benchmark: e for c in plan.cells.values() for e in c.evals}
    record = {
        "name": f"eval-{info.name}",
        "kind": "eval",
        "method": "checkpoint",
        "model": info.to_json(),
        "benchmarks": sorted(evals),
        "evals": {name: evals[name].model_dump(mode="json") for name in sorted(evals)},
        **{k: exp[k] for k in EVAL_FIELDS if k in exp},
    }
    matrix = {k: v for k, v in exp.get("matrix", {}).items() if k not in ("size", "method")}
    if matrix:
        record["matrix"] = matrix
    return record


def checkpoint_plan(opts: Options, plugins: Any, model_ref: str, prompt: str | None = None):
    """The plan of `harness eval --model`: one cell per checkpoint, its files checked and its
    prompt chosen before any step, its steps keyed by its content."""
    from harness.eval.prompt_choice import choose_prompts, modality, prompt_record, warn_if_differ
    from harness.eval.prompts import PROMPTS, default_prompt

    if prompt == "llava":
        prompt = "llava_v1"
    if prompt is not None and prompt not in PROMPTS:
        raise UserError(f"--prompt {prompt}: not one of {', '.join(PROMPTS)} (or llava)")
    local = Path(model_ref)
    if (local.exists() or model_ref.startswith((".", "/"))) and not local.is_dir():
        raise UserError(f"--model {model_ref}: no such checkpoint folder")
    ref = str(local.resolve()) if local.is_dir() else model_ref
    # one cell per checkpoint: the size only builds the cell (hardware, a tower for the spec);
    # the checkpoint's own description replaces it below
    from harness.config.matrix import parse_matrix

    sizes = parse_matrix(opts.matrix).get("size")
    opts.matrix = [
        m for m in opts.matrix if not m.startswith(("methods=", "method=", "sizes=", "size="))
    ]
    opts.matrix += ["methods=checkpoint", f"sizes={sizes[0]}" if sizes else "sizes=tiny-1m"]
    info = describe(ref)
    if opts.out is None:
        opts.out = Path("runs") / f"eval-{Path(ref).name}"
    plan = build_plan(opts, plugins)
    if info.multimodal is False:
        for cid, cell in plan.cells.items():
            language = [e for e in cell.evals if modality(plugins, e.benchmark) == "language"]
            plan.cells[cid] = cell.model_copy(update={"evals": language})
    if not any(c.evals for c in plan.cells.values()):
        raise UserError(f"--model {model_ref}: no selected benchmark can evaluate this model")
    from harness.plan.preflight import check_checkpoint

    asked = prompt or next(
        (e.prompt for c in plan.cells.values() for e in c.evals if e.prompt == "checkpoint"), None
    )
    tokenizer = check_checkpoint(str(info.files or ref), plan, plugins, asked)  # before any step
    has_template = bool(tokenizer is not None and getattr(tokenizer, "chat_template", None))
    chosen = choose_prompts(plan.cells, plugins, prompt, default_prompt(has_template))
    warn_if_differ(info.name, tokenizer, chosen, plugins)
    cells = {}
    for cell in plan.cells.values():
        described = _describe_cell(cell, info, list(cell.evals))
        cells[described.id] = described
    plan.cells = cells
    from harness.plan.dag import build_dag

    plan.steps = build_dag(list(plan.cells.values()), plugins, plan.assets)
    plan.experiment = _experiment_record(plan, info)
    plan.experiment["prompt"] = prompt_record(tokenizer, chosen)
    return plan
