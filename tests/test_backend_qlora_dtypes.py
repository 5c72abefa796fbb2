"""QLoRA's parameter dtypes in a bf16 run follow LLaVA's recipe, and such a model trains."""

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
def prepared(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    open_world(tmp_path_factory.mktemp("qlora-dtypes"), mp)
    bundle = build_llava(model_spec(), quantization=QuantSpec(), dtype=torch.bfloat16)
    bundle = QLoRA().prepare(bundle, train_spec("qlora", precision="bf16"))
    yield bundle
    mp.undo()


def test_tower_projector_adapters_and_embeddings_keep_the_load_dtype_norms_are_fp32(prepared):
    seen: dict[str, set] = {}
    for name, param in prepared.model.named_parameters():
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
    assert seen == {
        "norm": {torch.float32},
        "lora": {torch.bfloat16},
        "embeddings": {torch.bfloat16},
        "tower": {torch.bfloat16},
        "projector": {torch.bfloat16},
    }


def test_a_bf16_step_under_autocast_trains_the_adapters(prepared):
    model = prepared.model
    ids = torch.randint(3, 100, (2, 12))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and g.dtype == torch.bfloat16 for g in grads)
