"""ONNX Runtime schemes, converted by ONNX Runtime GenAI's model builder (its official route from a Hugging Face
folder to an ONNX model with the KV cache inside, for CPU) and run by the `onnxruntime` engine. int8 and int4 are the
builder's weight-only MatMulNBits (block 32, scales per block, symmetric); accuracy_level 4 lets the CPU kernels
quantise activations to int8 for the multiply, as the builder does by default for CPU. The conversion is cached
(harness/precision/conversion.py)."""
from __future__ import annotations

import os
import sys
from importlib.metadata import version
from pathlib import Path

from harness.precision.registry import Scheme, register

BUILDER = "onnxruntime_genai.models.builder"
# scheme -> (builder precision, nominal bits of the decoder's linear weights, builder extra options)
ORT_SCHEMES = {
    "ort-fp32": ("fp32", 32.0, []),
    "ort-int8": ("int8", 9.0, ["block_size=32", "accuracy_level=4"]),  # 8 bits + an fp32 scale per 32 weights
    "ort-int4": ("int4", 5.0, ["block_size=32", "accuracy_level=4"]),  # 4 bits + an fp32 scale per 32 weights
}

for _name, (_precision, _bits, _options) in ORT_SCHEMES.items():
    register(Scheme(name=_name, bits=_bits, library="onnxruntime-genai", devices=("cpu",), how="onnx",
                    quantizes=_precision != "fp32", requires=("onnxruntime_genai", "onnx_ir"), extra="onnxruntime",
                    engines=("onnxruntime",), notes=f"model builder -p {_precision} -e cpu {' '.join(_options)}"))


def versions() -> dict[str, str]:
    return {lib: version(lib) for lib in ("onnxruntime-genai", "onnxruntime", "transformers", "torch")}


def build_onnx(source: Path, scheme, out: Path) -> None:
    """`python -m onnxruntime_genai.models.builder` on the checkpoint folder, in its own process."""
    from harness.precision.conversion import run_converter

    precision, _, options = ORT_SCHEMES[scheme.name]
    cmd = [sys.executable, "-m", BUILDER, "-i", str(source), "-o", str(out), "-p", precision, "-e", "cpu",
           "-c", str(out / "builder-cache")]
    cmd += ["--extra_options", "hf_token=false", *options]  # a local folder: no hub login, nothing fetched
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run_converter(cmd, out, f"onnxruntime-genai {version('onnxruntime-genai')} model builder ({scheme.name})", env)
    import shutil

    shutil.rmtree(out / "builder-cache", ignore_errors=True)
