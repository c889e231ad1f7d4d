"""torch's dynamic int8 quantisation of nn.Linear (int8 weights, activations quantised per batch at run time)."""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _apply(model, device):
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the torch.ao.quantization API is deprecated but works
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False)


register(Scheme(name="int8-dynamic", bits=8, library="torch", devices=("cpu",), how="direct", apply=_apply,
                notes="torch.ao.quantization.quantize_dynamic; lm_head included (it is an nn.Linear)"))
