"""torchao quantisation through quantize_(): int8 weight-only, int8 dynamic activations + int8 weights, and int4
weight-only with the CPU (opaque, group 128) layout. torchao's default Int4WeightOnlyConfig needs a CUDA-only
package, so the CPU int4 scheme uses the prototype config that packs for CPU kernels; it runs with bf16 activations.
"""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _ao(config_factory, dtype: str | None = None):
    def apply(model, device):
        import torch
        from torchao.quantization import quantize_

        if dtype:
            model = model.to(getattr(torch, dtype))
        quantize_(model, config_factory(), filter_fn=_decoder_linear)
        return model

    return apply


def _decoder_linear(module, fqn: str) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear) and "lm_head" not in fqn


def _int8wo():
    from torchao.quantization import Int8WeightOnlyConfig
    return Int8WeightOnlyConfig()


def _int8dq():
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig
    return Int8DynamicActivationInt8WeightConfig()


def _int4wo_cpu(group_size: int = 128):
    def config():
        from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig
        return PrototypeInt4WeightOnlyConfig(group_size=group_size, set_inductor_config=False)

    return config


def _group_divides(group_size: int, alternative: str):
    def fits(model) -> str | None:
        bad = sorted({m.in_features for n, m in model.named_modules()
                      if _decoder_linear(m, n) and m.in_features % group_size})
        if not bad:
            return None
        return (f"group size {group_size} does not divide the input size {bad} of this model's linear layers "
                f"(torchao would silently leave them unquantised); try {alternative}")

    return fits


def _int4wo_cuda():
    from torchao.quantization import Int4WeightOnlyConfig
    return Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d", set_inductor_config=False)


def _fp8():
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig
    return Float8DynamicActivationFloat8WeightConfig()


_REQ = ("torchao",)
register(Scheme(name="torchao-int8wo", bits=8, library="torchao", devices=("cpu", "cuda"), how="direct",
                apply=_ao(_int8wo), requires=_REQ, notes="fp32 activations"))
register(Scheme(name="torchao-int8wo-bf16", bits=8, library="torchao", devices=("cpu", "cuda"), how="direct",
                dtype="bfloat16", apply=_ao(_int8wo, "bfloat16"), requires=_REQ, notes="bf16 activations"))
register(Scheme(name="torchao-int8dq", bits=8, library="torchao", devices=("cpu", "cuda"), how="direct",
                apply=_ao(_int8dq), requires=_REQ))
register(Scheme(name="torchao-int4wo", bits=4, library="torchao", devices=("cpu",), how="direct", dtype="bfloat16",
                apply=_ao(_int4wo_cpu(128), "bfloat16"), requires=_REQ,
                fits=_group_divides(128, "precision=torchao-int4wo-g64"),
                notes="PrototypeInt4WeightOnlyConfig(group_size=128), CPU opaque layout, bf16 activations; torchao "
                      "silently skips layers whose input size is not a multiple of 128 (SmolLM2's 576): such a "
                      "model is unavailable for it (and the proof would refuse the run)"))
register(Scheme(name="torchao-int4wo-g64", bits=4, library="torchao", devices=("cpu",), how="direct",
                dtype="bfloat16", apply=_ao(_int4wo_cpu(64), "bfloat16"), requires=_REQ,
                fits=_group_divides(64, "another scheme"),
                notes="as torchao-int4wo with group size 64, which divides SmolLM2-135M's 576 and 1536"))
register(Scheme(name="torchao-int4wo-cuda", bits=4, library="torchao", devices=("cuda",), how="direct",
                dtype="bfloat16", apply=_ao(_int4wo_cuda, "bfloat16"), requires=_REQ,
                fits=_group_divides(128, "another scheme"),
                notes="Int4WeightOnlyConfig(group_size=128), tinygemm's tile-packed layout (torch's own "
                      "_weight_int4pack_mm CUDA kernel, no extra package), bf16 activations"))
register(Scheme(name="torchao-fp8", bits=8, library="torchao", devices=("cuda",), how="direct", dtype="bfloat16",
                apply=_ao(_fp8, "bfloat16"), requires=_REQ, min_cuda_capability=(8, 9),
                notes="float8 dynamic activations + float8 weights (Ada/Hopper)"))
