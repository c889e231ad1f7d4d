"""HQQ (half-quadratic quantisation, calibration-free) through hqq's own API: transformers' HqqConfig raises
NotImplementedError in transformers 5.24."""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _hqq(nbits: int, group_size: int):
    def apply(model, device):
        import torch
        from hqq.core.quantize import BaseQuantizeConfig
        from hqq.models.hf.base import AutoHQQHFModel

        cfg = BaseQuantizeConfig(nbits=nbits, group_size=group_size)
        AutoHQQHFModel.quantize_model(model, quant_config=cfg, compute_dtype=torch.float32, device=device)
        return model

    return apply


for _name, _bits, _group in (("hqq-4bit", 4, 64), ("hqq-8bit", 8, 128)):
    register(Scheme(name=_name, bits=_bits, library="hqq", devices=("cpu", "cuda"), how="direct",
                    apply=_hqq(_bits, _group), requires=("hqq",), notes=f"group size {_group}, fp32 compute"))
