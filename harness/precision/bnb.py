"""bitsandbytes 8-bit (LLM.int8) and 4-bit NF4 through transformers' BitsAndBytesConfig at load time (checkpoints),
or in place on a model already built (architecture-only weights).
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


def _in_place(kind: str):
    """The same quantisation applied to a model already built (architecture-only weights, created on the device):
    each decoder nn.Linear becomes bitsandbytes' Linear8bitLt / Linear4bit with the settings BitsAndBytesConfig
    gives above (int8: threshold 6.0, no fp16 weights; NF4: bf16 compute, no double quant, lm_head kept), one layer
    at a time, with no checkpoint written to disk and read back."""
    def apply(model, device):
        import bitsandbytes as bnb
        import torch

        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is not torch.nn.Linear or child is model.get_output_embeddings():
                    continue
                bias = child.bias is not None
                if kind == "int8":
                    new = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=bias,
                                              has_fp16_weights=False, threshold=6.0, device="meta")
                    # _quantize: Int8Params.to() quantises only from host memory; this weight may be on the GPU
                    new.weight = bnb.nn.Int8Params(child.weight.data, requires_grad=False,
                                                   has_fp16_weights=False)._quantize(device)
                else:
                    new = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=bias,
                                            compute_dtype=torch.bfloat16, compress_statistics=False, quant_type="nf4",
                                            device="meta")
                    new.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, compress_statistics=False,
                                                   quant_type="nf4", module=new).to(device)
                if bias:
                    new.bias = torch.nn.Parameter(child.bias.data.to(device), requires_grad=False)
                setattr(parent, name, new)
                del child
        return model

    return apply


_REQ = ("bitsandbytes",)
register(Scheme(name="bnb-int8", bits=8, library="bitsandbytes", devices=("cpu", "cuda"), how="transformers-config",
                load_kwargs=_int8, apply=_in_place("int8"), requires=_REQ,
                notes="checkpoints: BitsAndBytesConfig at load; architecture-only weights: the same, in place"))
register(Scheme(name="bnb-nf4", bits=4, library="bitsandbytes", devices=("cpu", "cuda"), how="transformers-config",
                dtype="bfloat16", load_kwargs=_nf4, apply=_in_place("nf4"), requires=_REQ,
                notes="NF4, bf16 compute, no double quant; architecture-only weights quantised in place"))
