"""OpenVINO schemes, converted by optimum-intel's exporter (`optimum-cli export openvino`, the official route from a
Hugging Face folder to a stateful OpenVINO model: the KV cache lives inside the compiled model), with NNCF weight
compression for the int schemes, and run by the `openvino` engine with the openvino runtime alone.

optimum-intel 2.2.0 requires transformers < 5.6 (<= 5.0 to export Gemma 3) and this project pins transformers 5.24, so the exporter runs in an
environment of its own (`make openvino` builds `.venv-openvino` from `openvino-export.txt` beside this file); the
converted model is read by the runtime in the project's environment. The conversion is cached
(harness/precision/conversion.py)."""
from __future__ import annotations

import os
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from harness.core.errors import ProofError, Unavailable
from harness.precision.proof import Proof
from harness.precision.registry import Scheme, register

EXPORT_REQUIREMENTS = Path(__file__).with_name("openvino-export.txt")
# scheme -> (exporter arguments, nominal bits of the decoder's linear weights)
OV_SCHEMES = {
    "ov-fp32": (["--weight-format", "fp32"], 32.0),
    "ov-fp16": (["--weight-format", "fp16"], 16.0),
    "ov-int8": (["--weight-format", "int8"], 8.0),  # NNCF: asymmetric, per output channel
    "ov-int4": (["--weight-format", "int4", "--sym", "--group-size", "64", "--ratio", "1.0"], 4.25),
    "ov-int4-ch": (["--weight-format", "int4", "--sym", "--group-size", "-1", "--ratio", "1.0"], 4.0),
    # ov-int4's grid (symmetric, group 64, every decoder linear in int4), compressed data-aware: NNCF's AWQ, then
    # its scale estimation, on the calibration set (`calibration=`); by optimum-intel's Python API
    # (openvino_data_aware.py), as optimum-cli downloads its calibration datasets
    "ov-int4-awq": (["--weight-format", "int4", "--sym", "--group-size", "64", "--ratio", "1.0", "--awq",
                     "--scale-estimation", "--dataset", "<calibration=>"], 4.25),
}
DATA_AWARE = ("ov-int4-awq",)  # schemes whose conversion reads the calibration set
DATA_AWARE_SCRIPT = Path(__file__).with_name("openvino_data_aware.py")

for _name, (_args, _bits) in OV_SCHEMES.items():
    register(Scheme(name=_name, bits=_bits, library="openvino", devices=("cpu",), how="openvino",
                    quantizes=_name not in ("ov-fp32", "ov-fp16"), dtype="float16" if _name == "ov-fp16" else "float32",
                    requires=("openvino",), extra="openvino", engines=("openvino",),
                    notes=f"optimum-cli export openvino --task text-generation-with-past {' '.join(_args)}"
                          + (" (its equivalent in optimum-intel's Python API, on the shipped calibration text)"
                             if _name in DATA_AWARE else "")))


def exporter_python() -> Path:
    """The exporter environment's interpreter: $HARNESS_OPENVINO_EXPORTER, else .venv-openvino in the project."""
    given = os.environ.get("HARNESS_OPENVINO_EXPORTER")
    return Path(given) if given else Path(__file__).resolve().parents[2] / ".venv-openvino" / "bin" / "python"


def exporter_versions(scheme: str = "", calibration: dict | None = None) -> dict:
    """Versions of the exporter's libraries, pinned in openvino-export.txt (part of the conversion cache key); for a
    data-aware scheme also its calibration set and the script that applies it."""
    pins = [ln.split("#")[0].strip() for ln in EXPORT_REQUIREMENTS.read_text().splitlines()]
    versions = {**dict(p.split("==") for p in pins if "==" in p), "openvino runtime": version("openvino")}
    if scheme in DATA_AWARE:
        from harness.precision.calibrated import ONESHOT, calibration_of

        versions.update(calibration=calibration or calibration_of(None), script=DATA_AWARE_SCRIPT.read_text(),
                        windows=ONESHOT.read_text())  # the windows are cut by llmcompressor_oneshot.windows
    return versions


def check_exporter() -> Path:
    python = exporter_python()
    if not python.exists():
        raise Unavailable(f"the ov-* schemes are converted by optimum-intel's exporter, which needs transformers < 5.6 "
                          f"and so runs in its own environment: `make openvino` builds it ({python} is missing)")
    return python


def export(source: Path, scheme, out: Path, calibration: dict | None = None) -> None:
    """`optimum-cli export openvino` on the checkpoint folder, in the exporter's environment (a data-aware scheme:
    openvino_data_aware.py on the calibration set)."""
    from harness.precision.conversion import run_converter

    python = check_exporter()
    args, _ = OV_SCHEMES[scheme.name]
    if scheme.name in DATA_AWARE:
        from harness.precision.calibrated import calibration_file, calibration_of

        c = calibration or calibration_of(None)
        # -P: the script's folder is not put on sys.path (its neighbours torchao.py, gguf.py would shadow libraries)
        cmd = [str(python), "-P", str(DATA_AWARE_SCRIPT), str(source), str(out), str(calibration_file(c)),
               str(c["samples"]), str(c["seq_len"]), args[args.index("--group-size") + 1]]
    else:
        cmd = [str(python), "-m", "optimum.commands.optimum_cli", "export", "openvino", "-m", str(source),
               "--task", "text-generation-with-past", *args, str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    run_converter(cmd, out, f"optimum-intel exporter ({scheme.name})", env)


_DECOMPRESSION = ("Convert", "Subtract", "Multiply", "Reshape", "Transpose")


def _weight_constants(output) -> tuple[object | None, list]:
    """Walk a MatMul's weight input back through weight decompression (Convert, Subtract zero point, Multiply scale,
    Reshape): (the stored weight Constant or None, every Constant met on the way)."""
    node, seen = output.get_node(), []
    stack, weight = [node], None
    while stack:
        n = stack.pop()
        kind = n.get_type_name()
        if kind == "Constant":
            seen.append(n)
            if weight is None or n.get_byte_size() > weight.get_byte_size():
                weight = n
        elif kind in _DECOMPRESSION:
            stack.extend(v.get_node() for v in n.input_values())
        else:
            return None, []
    return weight, seen


def linear_weights(model) -> list[tuple[str, object, int]]:
    """(MatMul name, stored weight Constant, bytes with its scales and zero points) for every MatMul on a 2-D
    constant weight."""
    out = []
    for op in model.get_ops():
        if op.get_type_name() != "MatMul":
            continue
        weight, consts = _weight_constants(op.input_value(1))
        if weight is not None and len(weight.get_output_shape(0)) >= 2:  # 3-D: [rows, groups, group size]
            out.append((op.get_friendly_name(), weight, sum(c.get_byte_size() for c in consts)))
    return out


def lookup_only_bytes(model) -> int:
    """Bytes of an embedding table that only Gather reads (not shared with the output projection)."""
    matmul = {w.get_name() for _, w, _ in linear_weights(model)}
    total = 0
    for op in model.get_ops():
        if op.get_type_name() == "Gather":
            weight, consts = _weight_constants(op.input_value(0))
            if weight is not None and len(weight.get_output_shape(0)) >= 2 and weight.get_name() not in matmul:
                total += sum(c.get_byte_size() for c in consts)
    return total


def ov_proof(model, scheme, model_params: int, runtime: str) -> Proof:
    """Element types and bytes of the weights the runtime holds, read from the OpenVINO model itself."""
    types: Counter[str] = Counter()
    lin_params = lin_bytes = quantised = 0
    float_linear = []
    for name, weight, nbytes in linear_weights(model):
        kind = str(weight.get_element_type().get_type_name())
        shape = [int(d) for d in weight.get_output_shape(0)]
        where = "lm_head" if "lm_head" in name else "decoder"
        types[f"{where} {kind}"] += 1
        params = 1
        for d in shape:
            params *= d
        if kind not in ("f32", "f16", "bf16"):
            quantised += params
        if where == "decoder":
            lin_params += params
            lin_bytes += nbytes
            if kind in ("f32", "f16", "bf16"):
                float_linear.append(name)
    if not lin_params:
        raise ProofError(f"{scheme.name}: no linear layer with a constant weight in the OpenVINO model")
    if scheme.quantizes and float_linear:
        raise ProofError(f"{scheme.name}: {len(float_linear)} decoder linear layers keep float weights, "
                         f"e.g. {float_linear[:3]}")
    if not scheme.quantizes:
        want = {"float32": "f32", "float16": "f16"}[scheme.dtype]
        wrong = [n for n, w, _ in linear_weights(model) if str(w.get_element_type().get_type_name()) != want]
        if wrong:
            raise ProofError(f"{scheme.name}: {len(wrong)} linear weights are not {want}, e.g. {wrong[:3]}")
    total = sum(op.get_byte_size() for op in model.get_ops() if op.get_type_name() == "Constant")
    summary = "; ".join([f"OpenVINO {k} x{v}" for k, v in types.most_common()] + [runtime])
    return Proof(weight_bytes=total, model_params=model_params, linear_params=lin_params, linear_bytes=lin_bytes,
                 quantized_params=quantised, types=summary)
