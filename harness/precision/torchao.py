"""torchao quantisation: int8 weight-only, int8 dynamic activations + int8 weights, int4 weight-only (the CPU's
opaque layout, or tinygemm's tile-packed layout on CUDA) and float8. A checkpoint is quantised while it loads, through
transformers' TorchAoConfig (tensor by tensor: no full-precision copy); a model built in memory (architecture-only
weights) goes through torchao's quantize_() in place. torchao's default Int4WeightOnlyConfig needs a CUDA-only
package, so the CPU int4 scheme uses the prototype config that packs for CPU kernels; it runs with bf16 activations.
"""
from __future__ import annotations

from harness.precision.registry import Scheme, register


def _ao(config_factory):
    def apply(model, device, dtype):
        import torch
        from torchao.quantization import quantize_

        model = model.to(getattr(torch, dtype))
        quantize_(model, config_factory(), filter_fn=_decoder_linear)
        return model

    return apply


def _ao_config(config_factory):
    def quantization_config(dtype):
        from transformers import TorchAoConfig

        return TorchAoConfig(config_factory(), modules_to_not_convert=["lm_head"])

    return quantization_config


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
    def fits(config) -> str | None:
        from harness.precision.proof import linear_widths

        bad = sorted({w for w in linear_widths(config).values() if w % group_size})
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


def _scheme(name: str, bits: float, factory, devices=("cpu", "cuda"), dtype: str = "auto", **kw) -> None:
    register(Scheme(name=name, bits=bits, library="torchao", devices=devices, how="transformers-config", dtype=dtype,
                    apply=_ao(factory), quantization_config=_ao_config(factory), requires=("torchao",), **kw))


_scheme("torchao-int8wo", 8, _int8wo, notes="activations in the device's dtype (fp32 on a CPU, bf16 on CUDA)")
_scheme("torchao-int8wo-bf16", 8, _int8wo, dtype="bfloat16", notes="bf16 activations")
_scheme("torchao-int8dq", 8, _int8dq, notes="activations in the device's dtype (fp32 on a CPU, bf16 on CUDA)")
_scheme("torchao-int4wo", 4, _int4wo_cpu(128), devices=("cpu",), dtype="bfloat16",
        fits=_group_divides(128, "precision=torchao-int4wo-g64"),
        notes="PrototypeInt4WeightOnlyConfig(group_size=128), CPU opaque layout, bf16 activations; torchao "
              "silently skips layers whose input size is not a multiple of 128 (SmolLM2's 576): such a "
              "model is unavailable for it (and the proof would refuse the run)")
_scheme("torchao-int4wo-g64", 4, _int4wo_cpu(64), devices=("cpu",), dtype="bfloat16",
        fits=_group_divides(64, "another scheme"),
        notes="as torchao-int4wo with group size 64, which divides SmolLM2-135M's 576 and 1536")
_scheme("torchao-int4wo-cuda", 4, _int4wo_cuda, devices=("cuda",), dtype="bfloat16",
        fits=_group_divides(128, "another scheme"),
        notes="Int4WeightOnlyConfig(group_size=128), tinygemm's tile-packed layout (torch's own "
              "_weight_int4pack_mm CUDA kernel, no extra package), bf16 activations")
_scheme("torchao-fp8", 8, _fp8, devices=("cuda",), dtype="bfloat16", min_cuda_capability=(8, 9),
        notes="float8 dynamic activations + float8 weights (Ada/Hopper)")
