"""The vision-language projector: `linear` (the paper) or `mlp2x_gelu` (LLaVA-1.5).

transformers' LlavaMultiModalProjector is always two layers. `mlp2x_gelu` is exactly that
module. `linear` is one Linear layer here (the paper's parameter count: 1024x6656 + 6656 for
33B), named `linear_1`; its state dict carries an identity `linear_2` and the config says
`projector_hidden_act = "linear"`, so plain `transformers` reloads a saved model as
linear_2(linear_1(x)) = linear_1(x) exactly. Loading folds a two-layer linear projector back
into one layer.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from harness.errors import UserError
from harness.support.atomic import atomic_path

PROJECTOR_FILE = "mm_projector.safetensors"


class LinearProjector(nn.Module):
    """One Linear layer, saved in LlavaMultiModalProjector's two-layer layout."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, out_features, bias=bias)
        self.register_state_dict_post_hook(_add_identity_second_layer)
        self.register_load_state_dict_pre_hook(_drop_identity_second_layer)

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.linear_1(image_features)


def _add_identity_second_layer(module, state_dict, prefix, local_metadata) -> None:
    weight = module.linear_1.weight
    eye = torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device)
    state_dict[prefix + "linear_2.weight"] = eye
    if module.linear_1.bias is not None:
        state_dict[prefix + "linear_2.bias"] = torch.zeros_like(module.linear_1.bias)


def _drop_identity_second_layer(module, state_dict, prefix, *args) -> None:
    """Loading a state dict the hook above wrote (a DeepSpeed or Trainer checkpoint being
    resumed): its identity linear_2 has no parameter here. Any other linear_2 stays, and a
    strict load refuses it."""
    weight = state_dict.get(prefix + "linear_2.weight")
    bias = state_dict.get(prefix + "linear_2.bias")
    if weight is None:
        return
    eye = torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device)
    if weight.shape == eye.shape and torch.equal(weight, eye) and _zero(bias):
        state_dict.pop(prefix + "linear_2.weight")
        state_dict.pop(prefix + "linear_2.bias", None)


def fold_linear(two_layer: nn.Module) -> LinearProjector:
    """A LinearProjector equal to linear_2(linear_1(x)) (exact when linear_2 is the identity)."""
    l1, l2 = two_layer.linear_1, two_layer.linear_2
    out = LinearProjector(l1.in_features, l2.out_features, bias=l1.bias is not None)
    with torch.no_grad():
        w2 = l2.weight.float()
        if torch.equal(w2, torch.eye(w2.shape[0], device=w2.device)) and _zero(l2.bias):
            weight, bias = l1.weight.float(), None if l1.bias is None else l1.bias.float()
        else:
            weight = w2 @ l1.weight.float()
            bias = None if l1.bias is None else w2 @ l1.bias.float() + l2.bias.float()
        out = out.to(device=l1.weight.device, dtype=l1.weight.dtype)
        out.linear_1.weight.copy_(weight)
        if bias is not None:
            out.linear_1.bias.copy_(bias)
    return out


def _zero(bias: torch.Tensor | None) -> bool:
    return bias is None or not bool(bias.detach().float().abs().max() > 0)


def projector_of(model: nn.Module) -> nn.Module:
    """The projector module of a LlavaForConditionalGeneration (also inside a PEFT wrapper)."""
    for name, module in model.named_modules():
        if name.endswith("multi_modal_projector") and hasattr(module, "linear_1"):
            inner = getattr(module, "modules_to_save", None)  # peft ModulesToSaveWrapper
            return module if inner is None else next(iter(inner.values()))
    raise ValueError("the model has no multi_modal_projector")


def save_projector(model: nn.Module, path: Path) -> Path:
    """Stage 1's output: only the projector's own weights, as safetensors."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / PROJECTOR_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in projector_of(model).named_parameters()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    return path


def _read(path: Path) -> dict[str, torch.Tensor]:
    if path.is_dir():
        path = path / PROJECTOR_FILE
    if not path.is_file():
        raise UserError(f"projector file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a bad file
        raise UserError(f"projector file {path} is corrupt: {type(exc).__name__}: {exc}") from None


def _from_llava_names(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """LLaVA's own mm_projector.bin names (mm_projector.weight, mm_projector.0/2.*) -> ours."""
    out = {}
    for key, value in tensors.items():
        tail = key.split("mm_projector.", 1)[-1] if "mm_projector." in key else key
        tail = {"weight": "linear_1.weight", "bias": "linear_1.bias"}.get(tail, tail)
        tail = tail.replace("0.", "linear_1.", 1) if tail.startswith("0.") else tail
        tail = tail.replace("2.", "linear_2.", 1) if tail.startswith("2.") else tail
        out[tail] = value
    return out


def load_projector(model: nn.Module, path: Path) -> None:
    """Load a stage-1 projector (ours or LLaVA's mm_projector.bin) into `model`, checking shapes."""
    path = Path(path)
    tensors = _from_llava_names(_read(path))
    module = projector_of(model)
    own = dict(module.named_parameters())
    if set(tensors) != set(own):
        raise UserError(
            f"projector file {path} holds {sorted(tensors)}, the model's projector needs "
            f"{sorted(own)} (linear vs mlp2x_gelu?)"
        )
    for name, param in own.items():
        if tuple(tensors[name].shape) != tuple(param.shape):
            raise UserError(
                f"projector file {path}: {name} has shape {tuple(tensors[name].shape)}, "
                f"the model needs {tuple(param.shape)} (another size or tower?)"
            )
    with torch.no_grad():
        for name, param in own.items():
            param.copy_(tensors[name].to(param.dtype))
