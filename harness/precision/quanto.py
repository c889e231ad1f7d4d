"""optimum-quanto weight quantisation (int8 / int4 weights, activations in the device's dtype): a checkpoint through
transformers' QuantoConfig while it loads (tensor by tensor), a model built in memory with quantize()+freeze() in
place. qint4 fails under torch.inference_mode(): the engines use torch.no_grad()."""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _quanto(weights: str):
    def apply(model, device, dtype):
        import torch
        from optimum import quanto

        model = model.to(getattr(torch, dtype))
        quanto.quantize(model, weights=getattr(quanto, weights), exclude=["lm_head"])
        quanto.freeze(model)
        return model

    return apply


def _config(weights: str):
    def quantization_config(dtype):
        from transformers import QuantoConfig

        return QuantoConfig(weights=weights.removeprefix("q"), modules_to_not_convert=["lm_head"])

    return quantization_config


for _name, _bits, _w in (("quanto-int8", 8, "qint8"), ("quanto-int4", 4, "qint4")):
    register(Scheme(name=_name, bits=_bits, library="optimum-quanto", devices=("cpu", "cuda"), how="transformers-config",
                    dtype="auto", apply=_quanto(_w), quantization_config=_config(_w), requires=("optimum.quanto",),
                    notes="activations in the device's dtype (fp32 on a CPU, bf16 on CUDA)"))
