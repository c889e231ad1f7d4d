"""One look for every figure: a colour per precision family (the same in every PNG), a marker per engine, readable
log axes. The family of a scheme is what it stores: float weights, 8-bit integers, 8-bit floats, 5-6-bit GGUF
types, 4-bit round-to-nearest, 4-bit calibrated (GPTQ/AWQ), 4-bit NormalFloat, 2-3-bit."""
from __future__ import annotations

from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

FAMILIES = {  # name -> colour (colour-blind-safe Okabe-Ito order, then two greys)
    "float (32/16-bit)": "#000000",
    "int8": "#0072B2",
    "fp8": "#56B4E9",
    "5-6 bit (GGUF k-quants)": "#009E73",
    "int4 round-to-nearest": "#E69F00",
    "int4 calibrated (GPTQ/AWQ)": "#D55E00",
    "nf4": "#CC79A7",
    "2-3 bit": "#999999",
}
ENGINE_MARKERS = {"torch": "o", "torchao": "o", "optimum-quanto": "o", "bitsandbytes": "o", "hqq": "o",
                  "compressed-tensors": "P", "llama.cpp": "s", "openvino": "D", "onnxruntime-genai": "^",
                  "onnxruntime": "^", "vllm": "v"}
FALLBACK_MARKERS = "X*hp<>"


def family(precision: str) -> str:
    p = str(precision)
    if p in ("fp32", "bf16", "fp16", "ov-fp32", "ov-fp16", "ort-fp32", "gguf-f16"):
        return "float (32/16-bit)"
    if "fp8" in p:
        return "fp8"
    if p.startswith(("gptq-", "awq-")):
        return "int4 calibrated (GPTQ/AWQ)"
    if "nf4" in p:
        return "nf4"
    if p in ("gguf-q6_k", "gguf-q5_k_m"):
        return "5-6 bit (GGUF k-quants)"
    if p in ("gguf-q3_k_m", "gguf-q2_k"):
        return "2-3 bit"
    if "int4" in p or "4bit" in p or p.startswith("gguf-q4"):
        return "int4 round-to-nearest"
    return "int8"


def colour(precision: str) -> str:
    return FAMILIES[family(precision)]


def engine_marker(engine: str, seen: dict | None = None) -> str:
    if engine in ENGINE_MARKERS:
        return ENGINE_MARKERS[engine]
    seen = {} if seen is None else seen
    return seen.setdefault(engine, FALLBACK_MARKERS[len(seen) % len(FALLBACK_MARKERS)])


PLAIN = FuncFormatter(lambda v, _: f"{v:g}")  # 0.04, 0.1, 200 rather than 4x10^-2


def log_axis(axis, lo: float | None = None, hi: float | None = None) -> None:
    """A log axis labelled in plain numbers at 1, 2, 5 x 10^k (1, 1.5, 2, 3, 5, 7 x 10^k when the data span less than a
    decade, so that at least two labels show; powers of ten alone past three decades), none on the minor ticks:
    labels never crowd."""
    import math

    if lo and hi and 0 < lo < hi and hi / lo < 2.2:  # widen to a factor of 2.2: at least two 1-1.5-2-3-5-7 ticks
        mid = math.sqrt(lo * hi)
        lo, hi = mid / math.sqrt(2.2), mid * math.sqrt(2.2)
        (axis.axes.set_xlim if axis is axis.axes.xaxis else axis.axes.set_ylim)(lo, hi)
    decades = math.log10(hi / lo) if lo and hi and lo > 0 and hi > lo else 2.0
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1 else (1.0, 2.0, 5.0) if decades < 3 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12 if decades < 3 else 6))
    axis.set_major_formatter(PLAIN)
    axis.set_minor_locator(LogLocator(base=10, subs="auto", numticks=12))
    axis.set_minor_formatter(NullFormatter())


def params_label(n: float) -> str:
    """135M, 1.2B."""
    return f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.0f}M"
