"""QLoRA's parameter dtypes in a bf16 run follow LLaVA's recipe, and such a model trains;
`norms_fp32 = false` keeps the norms in bf16 and so keeps fewer activation bytes."""

from __future__ import annotations

import pytest
import torch
from _train_fixtures import model_spec, open_world, train_spec
from harness_plugins.backends.qlora import QLoRA

from harness.model.assemble import build_llava
from harness.specs import QuantSpec
from harness.train.params import part_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    open_world(tmp_path_factory.mktemp("qlora-dtypes"), mp)
    out = {}
    for name, quant in (("qlora", QuantSpec()), ("qlora-bf16-norms", QuantSpec(norms_fp32=False))):
        bundle = build_llava(model_spec(), quantization=quant, dtype=torch.bfloat16)
        spec = train_spec("qlora", precision="bf16", quantization=quant)
        out[name] = QLoRA().prepare(bundle, spec).model
    yield out
    mp.undo()


def dtypes_by_part(model) -> dict[str, set]:
    seen: dict[str, set] = {}
    for name, param in model.named_parameters():
        if param.dtype == torch.uint8:  # 4-bit storage
            continue
        leaf = name.rsplit(".", 2)[-2]
        if "norm" in leaf:
            kind = "norm"
        elif "lora_" in name:
            kind = "lora"
        elif "embed_tokens" in name or "lm_head" in name:
            kind = "embeddings"
        else:
            kind = part_of(name)
        seen.setdefault(kind, set()).add(param.dtype)
    return seen


def saved_for_backward(model) -> int:
    """Bytes of activations autograd keeps from one bf16 forward (each tensor once; the
    parameters it keeps a reference to are not counted)."""
    sizes: dict[tuple, int] = {}
    params = {p.data_ptr() for p in model.parameters()}

    def keep(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in params:
            sizes[(t.data_ptr(), t.dtype, tuple(t.shape))] = t.numel() * t.element_size()
        return t

    ids = torch.randint(3, 100, (4, 64), generator=torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(input_ids=ids, labels=ids)
    return sum(sizes.values())


def test_tower_projector_adapters_and_embeddings_keep_the_load_dtype_norms_are_fp32(models):
    bf16, fp32 = torch.bfloat16, torch.float32
    expected = {"lora": {bf16}, "embeddings": {bf16}, "tower": {bf16}, "projector": {bf16}}
    assert dtypes_by_part(models["qlora"]) == {**expected, "norm": {fp32}}
    assert dtypes_by_part(models["qlora-bf16-norms"]) == {**expected, "norm": {bf16}}


def test_a_bf16_step_under_autocast_trains_the_adapters(models):
    model = models["qlora"]
    ids = torch.randint(3, 100, (2, 12))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.dtype == torch.bfloat16 for g in grads)


def test_bf16_norms_keep_fewer_activations_than_the_recipes_fp32_norms(models):
    saved = {name: saved_for_backward(model) for name, model in models.items()}
    assert saved["qlora-bf16-norms"] < saved["qlora"], saved
