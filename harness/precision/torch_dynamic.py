"""torch's dynamic int8 quantisation of nn.Linear (int8 weights, activations quantised per batch at run time, fp32
compute), one linear at a time after the load: a bf16 checkpoint is widened to fp32 a layer at a time, never whole."""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _apply(model, device, dtype):
    import warnings

    import torch

    from harness.precision.plan import per_linear

    def convert(linear):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the torch.ao.quantization API is deprecated but works
            return torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(linear), {torch.nn.Linear},
                                                          dtype=torch.qint8, inplace=False)[0]

    per_linear(model, convert, dtype, keep=lambda module, name: False)
    return model


register(Scheme(name="int8-dynamic", bits=8, library="torch", devices=("cpu",), how="direct", apply=_apply,
                notes="torch.ao.quantization.quantize_dynamic, one linear at a time; lm_head included (it is an "
                      "nn.Linear)"))
