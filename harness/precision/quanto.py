"""optimum-quanto weight quantisation (int8 / int4 weights, float activations), applied directly with
quantize()+freeze(). qint4 fails under torch.inference_mode(): the engines use torch.no_grad()."""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _quanto(weights: str):
    def apply(model, device):
        from optimum import quanto

        quanto.quantize(model, weights=getattr(quanto, weights), exclude=["lm_head"])
        quanto.freeze(model)
        return model

    return apply


for _name, _bits, _w in (("quanto-int8", 8, "qint8"), ("quanto-int4", 4, "qint4")):
    register(Scheme(name=_name, bits=_bits, library="optimum-quanto", devices=("cpu", "cuda"), how="direct",
                    apply=_quanto(_w), requires=("optimum.quanto",)))
