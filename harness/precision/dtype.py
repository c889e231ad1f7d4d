"""Plain float precisions: fp32 (the baseline), bf16, fp16. Not quantisation, but the same registry and proof."""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _cast(dtype_name: str):
    def apply(model, device, dtype=dtype_name):
        import torch

        return model.to(getattr(torch, dtype_name))

    return apply


for _name, _bits, _dtype in (("fp32", 32, "float32"), ("bf16", 16, "bfloat16"), ("fp16", 16, "float16")):
    register(Scheme(name=_name, bits=_bits, library="torch", devices=("cpu", "cuda"), how="dtype", quantizes=False,
                    dtype=_dtype, apply=_cast(_dtype), engines=("torch", "vllm")))
