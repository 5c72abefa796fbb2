"""QLoRA: the LoRA backend over a 4-bit NF4 double-quantized LLM, trained under ZeRO-2.

Only the quantization spec differs from `lora`; what a quantized base changes in training
(the bitsandbytes check, ZeRO-3 refused, LLaVA's parameter dtypes) is in kbit.py.
"""

from __future__ import annotations

from harness_plugins.backends.lora import LoRA

from harness.hookspecs import hookimpl


def QLoRA() -> LoRA:
    """The `qlora` backend: LoRA with the LLM quantized (QuantSpec's defaults unless the cell's
    `quantization` table says otherwise). Named like a class, as it was one: callers build it
    the same way as FullFineTune() and LoRA()."""
    # version 2: LLaVA's parameter dtypes in bf16/fp16 runs (1 kept all of them fp32);
    # {}: QuantSpec's defaults (4-bit NF4, double quantization), checked when first used
    return LoRA(name="qlora", version="2", quantized={})


@hookimpl
def register_backends(register):
    register(QLoRA())
