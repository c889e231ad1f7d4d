"""bitsandbytes 8-bit (LLM.int8) and 4-bit NF4 through transformers' BitsAndBytesConfig at load time.
bitsandbytes 0.50 runs both on CPU as well as CUDA."""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _int8():
    from transformers import BitsAndBytesConfig
    return {"quantization_config": BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=["lm_head"])}


def _nf4():
    import torch
    from transformers import BitsAndBytesConfig
    return {"quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                      bnb_4bit_compute_dtype=torch.bfloat16,
                                                      llm_int8_skip_modules=["lm_head"])}


_REQ = ("bitsandbytes",)
register(Scheme(name="bnb-int8", bits=8, library="bitsandbytes", devices=("cpu", "cuda"), how="transformers-config",
                load_kwargs=_int8, requires=_REQ))
register(Scheme(name="bnb-nf4", bits=4, library="bitsandbytes", devices=("cpu", "cuda"), how="transformers-config",
                dtype="bfloat16", load_kwargs=_nf4, requires=_REQ, notes="NF4, bf16 compute, no double quant"))
