"""Schemes defined now and gated to CUDA: on a device that cannot run them a run records status=unavailable."""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _gptq():
    from transformers import GPTQConfig
    return {"quantization_config": GPTQConfig(bits=4, dataset="c4", group_size=128)}


def _awq():
    from transformers import AwqConfig
    return {"quantization_config": AwqConfig(bits=4, group_size=128)}


register(Scheme(name="gptq-4bit", bits=4, library="gptqmodel", devices=("cuda",), how="transformers-config",
                dtype="float16", load_kwargs=_gptq, requires=("gptqmodel",), extra="gpu",
                notes="GPTQ needs calibration data and CUDA kernels"))
register(Scheme(name="awq-4bit", bits=4, library="autoawq", devices=("cuda",), how="transformers-config",
                dtype="float16", load_kwargs=_awq, requires=("awq",), extra="gpu",
                notes="AWQ needs a pre-quantised checkpoint or calibration, and CUDA kernels"))
