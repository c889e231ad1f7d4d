"""GGUF quant types run by llama.cpp (llama-cpp-python, the `llamacpp` extra). Each file is produced from the
model's shipped GGUF with llama.cpp's own quantize function and cached. The embedded models ship as Q4_1 / Q4_K_M,
so every file here is requantised from a 4-bit source and cannot be better than that source."""
from __future__ import annotations

from harness.precision.registry import Scheme, register

# name -> (llama_ftype value, nominal bits of the main tensor type)
GGUF_TYPES = {
    "gguf-f16": (1, 16.0),
    "gguf-q8_0": (7, 8.5),
    "gguf-q6_k": (18, 6.5625),
    "gguf-q5_k_m": (17, 5.5),
    "gguf-q4_k_m": (15, 4.5),
    "gguf-q4_0": (2, 4.5),
    "gguf-q3_k_m": (12, 3.4375),
    "gguf-q2_k": (10, 2.625),
}

for _name, (_ftype, _bits) in GGUF_TYPES.items():
    register(Scheme(name=_name, bits=_bits, library="llama-cpp-python", devices=("cpu",), how="gguf",
                    quantizes=_name != "gguf-f16", dtype="float16" if _name == "gguf-f16" else "float32",
                    requires=("llama_cpp",), extra="llamacpp", gguf_type=_name.removeprefix("gguf-"),
                    backend="llamacpp", notes=f"llama_ftype {_ftype}"))
