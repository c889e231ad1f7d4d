"""HQQ (half-quadratic quantisation, calibration-free) through hqq's own API, after the load: transformers' HqqConfig
raises NotImplementedError in transformers 5.24. hqq quantises one linear at a time; compute in the device's dtype
(fp32 on a CPU, bf16 on CUDA)."""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _hqq(nbits: int, group_size: int):
    def apply(model, device, dtype):
        import torch
        from hqq.core.quantize import BaseQuantizeConfig
        from hqq.models.hf.base import AutoHQQHFModel

        from harness.precision.plan import cast_unquantised

        cfg = BaseQuantizeConfig(nbits=nbits, group_size=group_size)
        AutoHQQHFModel.quantize_model(model, quant_config=cfg, compute_dtype=getattr(torch, dtype), device=device)
        cast_unquantised(model, dtype)
        return model

    return apply


for _name, _bits, _group in (("hqq-4bit", 4, 64), ("hqq-8bit", 8, 128)):
    register(Scheme(name=_name, bits=_bits, library="hqq", devices=("cpu", "cuda"), how="direct", dtype="auto",
                    apply=_hqq(_bits, _group), requires=("hqq",),
                    notes=f"group size {_group}, compute in the device's dtype (fp32 on a CPU, bf16 on CUDA)"))
