"""bitsandbytes 8-bit (LLM.int8) and 4-bit NF4 through transformers' BitsAndBytesConfig at load time (checkpoints,
tensor by tensor), or in place on a model already built (architecture-only weights), one layer at a time with each
full-precision layer freed as soon as it is replaced. bitsandbytes 0.50 runs both on CPU as well as CUDA; int8's
activations are the device's dtype (fp32 on a CPU, bf16 on CUDA), NF4 computes in bf16."""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _int8(dtype):
    from transformers import BitsAndBytesConfig
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=["lm_head"])


def _int8_no_outliers(dtype):
    from transformers import BitsAndBytesConfig
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=0.0, llm_int8_skip_modules=["lm_head"])


def _4bit(kind: str):
    def config(dtype):
        import torch
        from transformers import BitsAndBytesConfig
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=kind, bnb_4bit_compute_dtype=torch.bfloat16,
                                  llm_int8_skip_modules=["lm_head"])

    return config


_nf4 = _4bit("nf4")


def _in_place(kind: str, threshold: float = 6.0):
    """The same quantisation applied to a model already built (architecture-only weights, created on the device):
    each decoder nn.Linear becomes bitsandbytes' Linear8bitLt / Linear4bit with the settings BitsAndBytesConfig
    gives above (int8: threshold 6.0, no fp16 weights; NF4: bf16 compute, no double quant, lm_head kept), one layer
    at a time, with no checkpoint written to disk and read back."""
    def apply(model, device, dtype):
        import gc

        import bitsandbytes as bnb
        import torch

        output = model.get_output_embeddings()
        # names, not modules: a list of the modules would keep every replaced full-precision layer alive to the end
        names = [n for n, m in model.named_modules() if type(m) is torch.nn.Linear and m is not output]
        del output
        for full in names:
            parent_name, _, name = full.rpartition(".")
            parent = model.get_submodule(parent_name)
            child = getattr(parent, name)
            bias = child.bias is not None
            if kind == "int8":
                new = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=bias,
                                          has_fp16_weights=False, threshold=threshold, device="meta")
                # _quantize: Int8Params.to() quantises only from host memory; this weight may be on the GPU
                new.weight = bnb.nn.Int8Params(child.weight.data, requires_grad=False,
                                               has_fp16_weights=False)._quantize(device)
            else:
                new = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=bias,
                                        compute_dtype=torch.bfloat16, compress_statistics=False, quant_type=kind,
                                        device="meta")
                new.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, compress_statistics=False,
                                               quant_type=kind, module=new).to(device)
            if bias:
                new.bias = torch.nn.Parameter(child.bias.data.to(device), requires_grad=False)
            setattr(parent, name, new)
            child.weight = None  # the full-precision layer goes now, not when the model is freed
            del child
        gc.collect()
        if str(device).startswith("cuda"):
            torch.cuda.empty_cache()  # what the freed layers held goes back to the device, not to torch's cache
        return model

    return apply


_REQ = ("bitsandbytes",)
register(Scheme(name="bnb-int8", bits=8, library="bitsandbytes", devices=("cpu", "cuda"), how="transformers-config",
                dtype="auto", quantization_config=_int8, apply=_in_place("int8"), requires=_REQ,
                notes="checkpoints: BitsAndBytesConfig at load; architecture-only weights: the same, in place"))
register(Scheme(name="bnb-nf4", bits=4, library="bitsandbytes", devices=("cpu", "cuda"), how="transformers-config",
                dtype="bfloat16", quantization_config=_nf4, apply=_in_place("nf4"), requires=_REQ,
                notes="NF4, bf16 compute, no double quant; architecture-only weights quantised in place"))
register(Scheme(name="bnb-fp4", bits=4, library="bitsandbytes", devices=("cpu", "cuda"), how="transformers-config",
                dtype="bfloat16", quantization_config=_4bit("fp4"), apply=_in_place("fp4"), requires=_REQ,
                notes="FP4 (QLoRA's comparison point for NF4), bf16 compute, no double quant"))
register(Scheme(name="bnb-int8-t0", bits=8, library="bitsandbytes", devices=("cpu", "cuda"),
                how="transformers-config", dtype="auto", quantization_config=_int8_no_outliers,
                apply=_in_place("int8", threshold=0.0), requires=_REQ,
                notes="LLM.int8 with outlier threshold 0: no outlier columns kept in 16-bit (the paper's ablation)"))
