"""Calibrated schemes made by llm-compressor (GPTQ, AWQ, SmoothQuant + GPTQ W8A8, FP8 dynamic), saved as
compressed-tensors checkpoints and served by the `vllm` engine.

Each is produced once per model by llm-compressor's `oneshot` (llmcompressor_oneshot.py beside this file) in the
calibrating environment (`make llmcompressor` builds .venv-llmcompressor from llmcompressor-requirements.txt:
llm-compressor needs transformers <= 5.17, this project pins 5.24), from the model's full-precision checkpoint folder,
on a stated calibration set (`calibration=` in the config: by default OpenBookQA train, 64 windows of 256 tokens,
CalibrationConfig in harness/config/schema.py; any text or JSONL file of yours by path), loaded in bf16 (the unquantised tensors are saved in
bf16), and cached like every conversion (files verified, rebuilt when torn: harness/precision/conversion.py). The proof is read from the checkpoint's own tensors: packed
weight dtypes and bytes, scales, group size (`ct_proof`)."""
from __future__ import annotations

import json
import os
import struct
import time
from collections import Counter
from pathlib import Path

from harness.core.errors import ProofError, Unavailable
from harness.precision.proof import Proof, linear_widths
from harness.precision.registry import Scheme, register

REQUIREMENTS = Path(__file__).with_name("llmcompressor-requirements.txt")
ONESHOT = Path(__file__).with_name("llmcompressor_oneshot.py")
SHIPPED_TEXT = {"openbookqa-train": "harness/evaluate/data/openbookqa/train.jsonl"}


def calibration_of(cfg) -> dict:
    """The calibration set a config asks for (`calibration.text`, `.samples`, `.seq_len`, `.seed`), defaults filled;
    `text` is a shipped set's name (openbookqa-train) or a path to a text or JSONL file."""
    import dataclasses

    from harness.config.schema import CalibrationConfig, section

    return dataclasses.asdict(section(cfg, "calibration") if cfg is not None else CalibrationConfig())


def calibration_label(calibration: dict, scheme: str) -> str:
    if scheme in NO_DATA:
        return f"none ({scheme} needs no calibration data)"
    return (f"{calibration['text']}: {calibration['samples']} windows of {calibration['seq_len']} tokens, seed "
            f"{calibration['seed']}")


def calibration_file(calibration: dict) -> Path:
    text = calibration["text"]
    root = Path(__file__).resolve().parents[2]
    path = root / SHIPPED_TEXT[text] if text in SHIPPED_TEXT else Path(text).expanduser()
    if not path.is_file():
        raise Unavailable(f"calibration.text={text!r}: no such file (a shipped set: {', '.join(SHIPPED_TEXT)}, or the "
                          "path of a text or JSONL file)")
    return path
# scheme -> (nominal bits of the decoder's linear weights, what it is)
CALIBRATED = {
    "gptq-w4a16-g128": (4.25, "GPTQ, int4 weights (symmetric, group 128), 16-bit activations"),
    "awq-w4a16-g128": (4.25, "AWQ scaling, then int4 weights (asymmetric, group 128), 16-bit activations"),
    # group 64: for models whose linear widths are not multiples of 128 (SmolLM2-135M's hidden size is 576 = 9 x 64)
    "gptq-w4a16-g64": (4.5, "GPTQ, int4 weights (symmetric, group 64), 16-bit activations"),
    "awq-w4a16-g64": (4.5, "AWQ scaling, then int4 weights (asymmetric, group 64), 16-bit activations"),
    "w8a8-int8": (8.0, "SmoothQuant (0.8) + GPTQ, int8 weights per channel, int8 activations per token (dynamic)"),
    "fp8-dynamic": (8.0, "FP8 e4m3 weights per channel, FP8 activations per token (dynamic); no calibration data"),
    # round-to-nearest on the very grids GPTQ and AWQ use (llm-compressor's QuantizationModifier, no data): the
    # baselines the papers compare them with, so that a comparison changes one thing only
    "rtn-w4a16-g64": (4.5, "round-to-nearest, int4 weights (symmetric, group 64: GPTQ's grid), no calibration data"),
    "rtn-w4a16-g128": (4.25, "round-to-nearest, int4 weights (symmetric, group 128: GPTQ's grid), no calibration "
                             "data"),
    "rtn-w4a16-asym-g64": (4.5, "round-to-nearest, int4 weights (asymmetric, group 64: AWQ's grid), no calibration "
                                "data"),
    # W8A8 without SmoothQuant and with static per-tensor activation scales (calibrated): the naive W8A8 of the
    # SmoothQuant paper's comparison
    "w8a8-int8-naive": (8.0, "int8 weights per tensor, int8 activations per tensor (static, calibrated), no "
                             "SmoothQuant"),
}
NO_DATA = ("fp8-dynamic", "rtn-w4a16-g64", "rtn-w4a16-g128", "rtn-w4a16-asym-g64")  # schemes that calibrate on no data

for _name, (_bits, _what) in CALIBRATED.items():
    register(Scheme(name=_name, bits=_bits, library="llmcompressor", devices=("cpu", "cuda"), how="calibrated",
                    dtype="bfloat16", engines=("vllm", "torch"), notes=f"llm-compressor oneshot: {_what}"))

# A compressed-tensors checkpoint published already quantised (model=hf model.id=...): its scheme is read from its
# config.json (`declared`), proven from its tensors as the calibrated ones are, and run as shipped.
SHIPPED = "as-shipped"
register(Scheme(name=SHIPPED, bits=float("nan"), library="compressed-tensors", devices=("cpu", "cuda"), how="shipped",
                dtype="bfloat16", engines=("vllm", "torch"),
                notes="a compressed-tensors checkpoint as published: bits and group read from its config.json, "
                      "proven from its tensors"))

# bits of one stored weight value: a group (or row, per channel) of a decoder linear holds at most 2**bits values
GRID_BITS = {name: 4 if "-w4" in name else 8 for name in CALIBRATED}


def declared(folder: Path) -> dict:
    """The quantisation a checkpoint's config.json declares (compressed-tensors): weight bits, float or integer
    values, and whether activations are quantised too. A checkpoint that declares none, or mixes weight bits, is
    unavailable to as-shipped with the reason."""
    try:
        qc = json.loads((folder / "config.json").read_text()).get("quantization_config") or {}
    except (OSError, ValueError) as exc:
        raise Unavailable(f"{SHIPPED}: the checkpoint's config.json is not readable ({type(exc).__name__})") from None
    if qc.get("quant_method") != "compressed-tensors":
        raise Unavailable(f"{SHIPPED}: the checkpoint declares no compressed-tensors quantization (quant_method "
                          f"{qc.get('quant_method')!r}); it reads checkpoints published quantised by llm-compressor "
                          "(compressed-tensors), e.g. for vLLM")
    groups = [g for g in (qc.get("config_groups") or {}).values() if isinstance(g, dict)]
    weights = [g.get("weights") or {} for g in groups]
    bits = {w.get("num_bits") for w in weights}
    if len(bits) != 1 or not isinstance(next(iter(bits)), int):
        raise Unavailable(f"{SHIPPED}: the checkpoint's config_groups declare weight bits {sorted(map(str, bits))}; "
                          "one integer bit width is read")
    return {"bits": bits.pop(), "float": any(w.get("type") == "float" for w in weights),
            "activations": any(g.get("input_activations") for g in groups)}


def group_size(scheme: str) -> int | None:
    """The weight group size a scheme's name ends with (`-g128`), or None (per channel)."""
    tail = scheme.rsplit("-g", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else None


def group_fits(scheme: str, config) -> str:
    """Why `scheme`'s weight groups cannot tile this model's linears ('' when they can): llm-compressor refuses a
    layer whose input width is not a multiple of the group size."""
    g = group_size(scheme)
    if not g:
        return ""
    bad = {k: w for k, w in linear_widths(config).items() if w % g}
    if not bad:
        return ""
    fits = [n for n in CALIBRATED if n.startswith(scheme.rsplit("-g", 1)[0] + "-g")
            and group_size(n) and all(w % group_size(n) == 0 for w in linear_widths(config).values())]
    return (f"{scheme} quantises weights in groups of {g}, and this model's linear input widths ("
            + ", ".join(f"{k} {w}" for k, w in bad.items())
            + f") are not multiples of {g} (llm-compressor refuses such layers)"
            + (f"; {fits[0]} fits" if fits else ""))


def calibrator_python() -> Path:
    """The calibrating environment's interpreter: $HARNESS_LLMCOMPRESSOR_PYTHON, else .venv-llmcompressor."""
    given = os.environ.get("HARNESS_LLMCOMPRESSOR_PYTHON")
    return Path(given) if given else Path(__file__).resolve().parents[2] / ".venv-llmcompressor" / "bin" / "python"


def calibrator_versions(calibration: dict | None = None) -> dict:
    pins = [ln.split("#")[0].strip() for ln in REQUIREMENTS.read_text().splitlines()]
    return {**dict(p.split("==") for p in pins if "==" in p), "calibration": calibration or calibration_of(None),
            "oneshot": ONESHOT.read_text()}


def calibrate(source: Path, scheme: str, out: Path, calibration: dict | None = None) -> None:
    """llm-compressor's oneshot for `scheme` on the checkpoint folder `source`, written to `out`."""
    from harness.precision.conversion import run_converter

    python = calibrator_python()
    if not python.exists():
        raise Unavailable(f"{scheme} is made by llm-compressor, which needs transformers <= 5.17 and so runs in its "
                          f"own environment: `make llmcompressor` builds it ({python} is missing)")
    c = calibration or calibration_of(None)
    # -P: the script's folder is not put on sys.path (its neighbours torchao.py, gguf.py would shadow the libraries)
    cmd = [str(python), "-P", str(ONESHOT), scheme, str(source), str(out), str(calibration_file(c)),
           str(c["samples"]), str(c["seq_len"]), str(c["seed"])]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_HOME=str(out / ".hf"), TMPDIR=str(out))
    run_converter(cmd, out, f"llm-compressor oneshot ({scheme})", env)
    import shutil

    shutil.rmtree(out / ".hf", ignore_errors=True)


def calibrated(ckpt_folder: Path, scheme: str, calibration: dict | None = None):
    """The cached calibrated checkpoint of this model, scheme and calibration set (made once)."""
    from transformers import AutoConfig

    from harness.precision.conversion import converted

    if why := group_fits(scheme, AutoConfig.from_pretrained(str(ckpt_folder))):
        raise Unavailable(why)
    c = calibration or calibration_of(None)
    return converted("calibrated", ckpt_folder, scheme, calibrator_versions(c),
                     lambda src, out: calibrate(src, scheme, out, c))


_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "I8": 1, "U8": 1, "F8_E4M3": 1, "I16": 2, "BOOL": 1}


def safetensors_headers(folder: Path) -> dict[str, dict]:
    """Every tensor's dtype, shape and stored bytes, from the headers of the folder's .safetensors files."""
    out = {}
    for path in sorted(folder.glob("*.safetensors")):
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        for name, t in header.items():
            if name != "__metadata__":
                out[name] = {"dtype": t["dtype"], "shape": t["shape"],
                             "bytes": t["data_offsets"][1] - t["data_offsets"][0]}
    return out


def ct_proof(folder: Path, scheme: str, model_params: int, bits: int | None = None,
             is_float: bool | None = None) -> Proof:
    """What the compressed-tensors checkpoint stores: each decoder linear's weight as packed int32 (4-bit, 8 to a
    word), int8 or fp8, with its scales (and zero points), and the group size its config declares. A decoder linear
    left in float, or a config that does not declare the scheme's quantisation, fails the proof."""
    tensors = safetensors_headers(folder)
    config = json.loads((folder / "config.json").read_text())
    qc = config.get("quantization_config") or {}
    if qc.get("quant_method") != "compressed-tensors":
        raise ProofError(f"{scheme}: config.json declares no compressed-tensors quantization ({qc.get('quant_method')})")
    groups = [g.get("weights", {}) for g in (qc.get("config_groups") or {}).values()]
    linears = {n.rsplit(".", 1)[0] for n in tensors if n.endswith((".weight_packed", ".weight_scale"))}
    kinds: Counter[str] = Counter()
    lin_params = lin_bytes = quantised = 0
    floats = []
    for name, t in tensors.items():
        module, _, leaf = name.rpartition(".")
        if "layers." not in name or not module.endswith(("proj", "fc1", "fc2")):
            continue
        if leaf in ("weight", "weight_packed") and module not in linears:
            floats.append(module)
        if module in linears:
            lin_bytes += t["bytes"]
            if leaf == "weight_packed":  # int4 packed 8 to an int32 along the input dimension
                params = t["shape"][0] * t["shape"][1] * 8
            elif leaf == "weight":
                params = t["shape"][0] * t["shape"][1]
            else:
                kinds[f"{leaf} {t['dtype']}"] += 1
                continue
            kinds[f"{leaf} {t['dtype']}"] += 1
            lin_params += params
            quantised += params
    if floats:
        raise ProofError(f"{scheme}: {len(floats)} decoder linear layers keep float weights, e.g. {floats[:3]}")
    if not lin_params:
        raise ProofError(f"{scheme}: no quantised decoder linear layer in the checkpoint")
    bits = GRID_BITS[scheme] if bits is None else bits  # as-shipped: what the config declares
    is_float = scheme.startswith("fp8") if is_float is None else is_float
    want = "I32" if bits == 4 else "F8_E4M3" if is_float else "I8"
    stored = {k.split()[1] for k in kinds if k.startswith(("weight ", "weight_packed "))}
    if stored != {want}:
        raise ProofError(f"{scheme}: decoder linear weights are stored as {sorted(stored)}, expected {want}")
    group = sorted({g.get("group_size") for g in groups if g.get("group_size")})
    weight_bytes = sum(t["bytes"] for t in tensors.values())
    summary = "; ".join([f"compressed-tensors {k} x{v}" for k, v in kinds.most_common()] +
                        [f"format {qc.get('format')}", f"group size {group[0] if group else 'none (per channel)'}",
                         f"bits {sorted({g.get('num_bits') for g in groups})}"])
    return Proof(weight_bytes=weight_bytes, model_params=model_params, linear_params=lin_params,
                 linear_bytes=lin_bytes, quantized_params=quantised, types=summary)


def grid_check(model, scheme: str, bits: int | None = None) -> tuple[int, int, int, str]:
    """The decompressed weights still hold the scheme's values: every group of every quantised decoder linear (its
    weight_scale's columns say the group size; one column is per channel) holds at most 2**bits distinct values.
    A float weight (hundreds of distinct values per row) fails it. Returns (linears, their params, the most distinct
    values seen in one group, the group sizes)."""
    import torch

    bits = GRID_BITS[scheme] if bits is None else bits
    linears = params = most = 0
    groups = set()
    for name, module in model.named_modules():
        scale = getattr(module, "weight_scale", None)
        weight = getattr(module, "weight", None)
        if scale is None or weight is None or weight.dim() != 2 or "layers." not in name:
            continue
        out, inn = weight.shape
        n_groups = scale.shape[-1] if scale.dim() == 2 else 1
        w = weight.detach().reshape(out, n_groups, inn // n_groups)
        distinct = int(((w.sort(dim=-1).values.diff(dim=-1) != 0).sum(-1) + 1).max())
        if distinct > 2 ** bits:
            raise ProofError(f"{scheme}: {name} holds {distinct} distinct values in one group of "
                             f"{inn // n_groups}: not {bits}-bit weights")
        linears, params, most = linears + 1, params + weight.numel(), max(most, distinct)
        groups.add("row (per channel)" if n_groups == 1 else f"group of {inn // n_groups}")
        del w
    if not linears:
        raise ProofError(f"{scheme}: no decoder linear with a weight scale after loading the checkpoint")
    return linears, params, most, ", ".join(sorted(groups))


def torch_model(model_cfg, scheme, device: str, calibration: dict | None = None):
    """The calibrated checkpoint loaded by transformers for the torch engine: compressed-tensors decompresses its
    weights to bf16 (no integer kernel in transformers on this engine) and quantises activations on the fly where the
    scheme does (w8a8-int8, fp8-dynamic: per token). Decompressed here, before anything is timed, and proven twice:
    the checkpoint's packed tensors (`ct_proof`) and the weights in memory (`grid_check`).
    Returns (model, tokenizer, proof, source_weights, weights, convert_s, load_s); load_s starts after the checkpoint exists
    (a first calibration is convert_s, not load time)."""
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM

    from harness.models.checkpoint import checkpoint
    from harness.precision.proof import config_param_count
    from harness.precision.stored_bytes import module_bytes

    if importlib.util.find_spec("compressed_tensors") is None:
        raise Unavailable(f"{scheme.name} on the torch engine needs the compressed-tensors package "
                          "(pyproject.toml pins it: reinstall the project)")
    ckpt = checkpoint(model_cfg)
    if scheme.how == "shipped":  # published quantised: nothing to calibrate, its scheme read from its config
        folder, convert_s, grid = ckpt.folder, None, declared(ckpt.folder)
        source_weights = f"{ckpt.source_weights}, quantised as published (compressed-tensors)"
    else:
        conv = calibrated(ckpt.folder, scheme.name, calibration)
        folder, convert_s = conv.folder, conv.convert_s
        grid = {"bits": GRID_BITS[scheme.name], "float": scheme.name.startswith("fp8"),
                "activations": scheme.name in ("w8a8-int8", "fp8-dynamic")}
        source_weights = f"{ckpt.source_weights}, calibrated by llm-compressor"
    t0 = time.perf_counter()
    try:
        placement = {"device_map": device} if device != "cpu" else {}
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16, **placement).eval()
    except RuntimeError as exc:
        zero_points = {n: t["shape"] for n, t in safetensors_headers(folder).items()
                       if n.endswith("weight_zero_point")}
        if "mismatched" not in str(exc) or not zero_points:
            raise
        name, shape = next(iter(sorted(zero_points.items())))
        raise Unavailable(f"{scheme.name} on the torch engine: transformers cannot load this asymmetric checkpoint's "
                          f"zero points, which compressed-tensors stores packed 8 to an int32 word (e.g. {name} "
                          f"{shape}) where the model it builds expects one per row (size mismatch on every layer); "
                          "the vllm engine serves it") from None
    with torch.no_grad():  # compressed-tensors decompresses on the first forward: do it now, outside timed regions
        model(input_ids=torch.tensor([[0]], device=model.device))
    params = config_param_count(model.config)
    stored = ct_proof(folder, scheme.name, params, grid["bits"], grid["float"])
    linears, lin_params, most, groups = grid_check(model, scheme.name, grid["bits"])
    lin_bytes = sum(m.weight.numel() * m.weight.element_size() for n, m in model.named_modules()
                    if getattr(m, "weight_scale", None) is not None and "layers." in n)
    acts = "activations quantised on the fly" if grid["activations"] else "16-bit activations"
    types = (f"in memory: {linears} decoder linears decompressed by compressed-tensors to bf16, at most {most} "
             f"distinct values per {groups} (<= 2^{grid['bits']}), {acts}; no integer kernel on this "
             f"engine, so speed and memory are bf16's; checkpoint: {stored.types}, {stored.weight_bytes} bytes")
    proof = Proof(weight_bytes=module_bytes(model), model_params=params, linear_params=lin_params,
                  linear_bytes=lin_bytes, quantized_params=lin_params, types=types)
    return model, ckpt.tokenizer, proof, source_weights, ckpt.weights, convert_s, time.perf_counter() - t0
