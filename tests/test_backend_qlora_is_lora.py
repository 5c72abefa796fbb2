"""QLoRA is the LoRA backend given a quantization spec: the registered `qlora` differs from
`lora` in its data (name, version, quantization, ZeRO stage), not in code."""

from __future__ import annotations

import pytest
from harness_plugins.backends.lora import LoRA
from harness_plugins.backends.qlora import QLoRA

from harness.errors import UserError
from harness.plugins import load_plugins
from harness.specs import HardwareSpec, QuantSpec, TrainSpec


def test_the_registered_qlora_is_a_lora_backend_with_a_quantization_spec():
    backends = load_plugins().objects["backend"]
    lora, qlora = backends["lora"], backends["qlora"]
    assert type(lora) is type(qlora) is LoRA
    assert (lora.name, lora.version, lora.zero_stage, lora.quantized) == ("lora", "1", 3, None)
    assert (qlora.name, qlora.version, qlora.zero_stage) == ("qlora", "2", 2)
    assert qlora.quantized == QuantSpec()


def test_the_cells_quantization_table_applies_to_qlora_only():
    own = QuantSpec(bits=8, norms_fp32=False)
    assert QLoRA().quantization(TrainSpec(method="qlora")) == QuantSpec()
    assert QLoRA().quantization(TrainSpec(method="qlora", quantization=own)) == own
    assert LoRA().quantization(TrainSpec(method="lora", quantization=own)) is None


def test_qlora_trains_under_zero2_and_only_it_refuses_zero3():
    hardware = HardwareSpec(name="a100")
    stage = QLoRA().deepspeed_config(TrainSpec(method="qlora"), hardware, 8)["zero_optimization"]
    assert stage["stage"] == 2
    zero3 = TrainSpec(method="lora", zero_stage=3)
    assert LoRA().deepspeed_config(zero3, hardware, 8)["zero_optimization"]["stage"] == 3
    with pytest.raises(UserError, match="qlora: ZeRO-3 does not work with 4-bit weights"):
        QLoRA().deepspeed_config(zero3, hardware, 8)
