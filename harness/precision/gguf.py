"""GGUF quant types run by llama.cpp (llama-cpp-python, the `llamacpp` extra). Each file is produced from the
model's shipped GGUF with llama.cpp's own quantize function and cached. The embedded models ship as Q4_1 / Q4_K_M,
so every file here is requantised from a 4-bit source and cannot be better than that source."""
from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

from harness.core.errors import ProofError
from harness.core.paths import cache_dir
from harness.core.cache_files import atomic_write_text, cache_write, cached_file_ok, discard, read_json_cache, \
    record_size
from harness.precision.proof import Proof
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
                    engines=("llamacpp",), notes=f"llama_ftype {_ftype}"))


LINEAR_SUFFIXES = ("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "ffn_gate.weight",
                   "ffn_up.weight", "ffn_down.weight")


F32_FTYPE = 0  # LLAMA_FTYPE_ALL_F32: the source dequantised, llama-perplexity's base for the reference's own weights


def requantise(source: Path, scheme, threads: int) -> Path:
    """The scheme's GGUF file, produced once from `source` by llama.cpp's quantize function."""
    return requantise_to(source, scheme.gguf_type, GGUF_TYPES[scheme.name][0], threads)


def requantise_to(source: Path, gguf_type: str, ftype: int, threads: int) -> Path:
    """`source` written as llama_ftype `ftype` (named `gguf_type` in the file name), once, under the cache."""
    import llama_cpp

    target = cache_dir("gguf") / f"{source.stem}.{gguf_type}.gguf"
    if cached_file_ok(target):
        return target
    discard(target, "has no recorded size or another size (truncated?)")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    params.allow_requantize = True
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        with cache_write(target, f"the {gguf_type} GGUF file"):
            rc = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), params)
            if rc != 0 or not tmp.exists():  # llama.cpp says only its code: the free space may be why
                free = shutil.disk_usage(target.parent).free / 2**20
                raise RuntimeError(f"llama_model_quantize({source.name} -> {gguf_type}) failed with code {rc} "
                                   f"({free:,.0f} MiB free under the cache, {source.stat().st_size / 2**20:,.0f} MiB "
                                   "source)")
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    record_size(target)
    return target


def tensor_inventory(path: Path) -> list[tuple[str, int, int, str]]:
    """(name, elements, stored bytes, type) of every tensor in the file. Reading a GGUF header with gguf's reader
    walks every metadata string (Gemma 3's 262k-token vocabulary: ~10 s), so the inventory is cached beside the file
    and keyed by its size and modification time."""
    import json

    stat = path.stat()
    key = f"{stat.st_size}:{stat.st_mtime_ns}"
    cached = path.with_name(path.name + ".tensors.json")
    data = read_json_cache(cached, lambda k, v: True)  # torn, empty or not an object: named, then read again
    tensors = data.get("tensors")
    if data.get("key") == key and isinstance(tensors, list) and all(
            isinstance(t, list) and len(t) == 4 for t in tensors):
        return [tuple(t) for t in tensors]
    from gguf import GGUFReader

    tensors = [(t.name, int(t.n_elements), int(t.n_bytes), t.tensor_type.name) for t in GGUFReader(str(path)).tensors]
    atomic_write_text(cached, json.dumps({"key": key, "tensors": tensors}), "the GGUF tensor inventory")
    return tensors


def gguf_proof(path: Path, scheme) -> Proof:
    """Tensor types and stored bytes read from the file itself."""
    types: Counter[str] = Counter()
    total = params = lin_params = lin_bytes = quantised = 0
    float_linear = []
    for name, n, b, kind in tensor_inventory(path):
        total += b
        params += n
        if kind not in ("F32", "F16", "BF16"):
            quantised += n
        if name.endswith(LINEAR_SUFFIXES):
            lin_params += n
            lin_bytes += b
            types[kind] += 1
            if kind in ("F32", "F16", "BF16"):
                float_linear.append(name)
    if scheme.quantizes and float_linear:
        raise ProofError(f"{scheme.name}: {len(float_linear)} linear tensors stored as float, e.g. {float_linear[:3]}")
    summary = "; ".join(f"GGUF {k} x{v}" for k, v in types.most_common())
    return Proof(weight_bytes=total, model_params=params, linear_params=lin_params, linear_bytes=lin_bytes,
                 quantized_params=quantised, types=summary)

