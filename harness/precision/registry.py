"""The precision axis: one registered Scheme per precision, each a small unit in this package.

A scheme declares its name, nominal bits, library, the devices it runs on, the engines that run it, and how a
model reaches it: its `LoadPlan` (harness/precision/plan.py) says the dtype the checkpoint is read in, a transformers
`quantization_config` applied while loading (BitsAndBytesConfig, TorchAoConfig, QuantoConfig) or a transform after
the load (`apply`), and the compute (activation) dtype, which may follow the device. After applying,
`harness.precision.proof.prove` inspects the model and refuses to report a row for a model that was not in fact
quantised.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Callable


from harness.core.errors import UnknownScheme  # noqa: F401 - re-exported
from harness.core.registry import Registry


HOWS = {  # how a scheme is applied -> what that means (harness/precision/plan.py turns each into a load plan)
    "dtype": "a plain float cast: loaded in that dtype",
    "direct": "a transform after a load in the compute dtype, one linear at a time (apply)",
    "transformers-config": "a transformers quantization_config applied while loading (quantization_config)",
    "gguf": "a llama.cpp GGUF file of gguf_type, converted and requantised once, run by llama.cpp",
    "calibrated": "an llm-compressor checkpoint made with the calibration set, loaded as shipped",
    "shipped": "a checkpoint published already quantised (compressed-tensors), its scheme read from its config",
    "openvino": "an OpenVINO IR exported once (optimum-intel / NNCF), run by the openvino runtime",
    "onnx": "an ONNX Runtime GenAI model built once, run by its generator",
}


@dataclass(frozen=True)
class Scheme:
    name: str
    bits: float
    library: str  # pip distribution that does the work, e.g. "optimum-quanto"
    devices: tuple[str, ...]
    how: str  # one of HOWS: which of the load plans in harness/precision/plan.py applies
    quantizes: bool = True  # False for plain float casts (fp32, bf16, fp16)
    # dtype of the non-quantised tensors and the activations; "auto": float32 on a CPU, bfloat16 on a GPU (what each
    # is run in there); see compute_dtype
    dtype: str = "float32"
    # (model, device, compute dtype) -> model: the transform after a load (how "direct"), or the same
    # quantisation applied in place to a model built in memory (architecture-only weights)
    apply: Callable[[Any, str, str], Any] | None = None
    # compute dtype -> the transformers quantization config applied while loading a checkpoint
    quantization_config: Callable[[str], Any] | None = None
    fits: Callable[[Any], str | None] | None = None  # (model config) -> why this scheme cannot quantise it, or None
    requires: tuple[str, ...] = ()  # importable modules the scheme needs
    extra: str = ""  # pip extra of this project that installs them
    min_cuda_capability: tuple[int, int] | None = None
    notes: str = ""
    gguf_type: str = ""  # llama.cpp file type, for how == "gguf"
    engines: tuple[str, ...] = ("torch",)  # engines that can run it; the first is engine=auto's choice

    def __post_init__(self) -> None:
        if self.how not in HOWS:
            raise ValueError(f"scheme {self.name!r}: how={self.how!r} is not one of {', '.join(HOWS)}")

    def compute_dtype(self, device: str) -> str:
        """The dtype activations and unquantised tensors run in on `device`: the scheme's own, or for "auto" the
        device's usual one (bf16 on CUDA, where fp32 activations are what nobody deploys; fp32 on a CPU)."""
        if self.dtype != "auto":
            return self.dtype
        return "bfloat16" if str(device).startswith("cuda") else "float32"


MODULES = ("dtype", "torch_dynamic", "quanto", "torchao", "bnb", "hqq", "gguf", "ort_genai", "openvino", "calibrated")


def _load_all() -> None:
    for module in MODULES:
        importlib.import_module(f"harness.precision.{module}")


SCHEMES: Registry[Scheme] = Registry("precision scheme", UnknownScheme, _load_all)


def register(scheme: Scheme) -> Scheme:
    return SCHEMES.register(scheme.name, scheme)


def all_schemes() -> dict[str, Scheme]:
    return SCHEMES.items()


def get_scheme(name: str) -> Scheme:
    return SCHEMES.get(name)


def unavailable_reason(scheme: Scheme, device: str) -> str | None:
    """Why this scheme cannot run here, in one line, or None when it can."""
    if device not in scheme.devices:
        return f"{scheme.name} runs on {'/'.join(scheme.devices)} only; this run's device is {device}"
    for module in scheme.requires:
        if importlib.util.find_spec(module) is None:
            hint = f"pip install -e '.[{scheme.extra}]'" if scheme.extra else f"install {scheme.library}"
            return f"{scheme.name} needs the Python module {module!r} ({scheme.library}), not installed: {hint}"
    if scheme.min_cuda_capability and device == "cuda":
        import torch

        cap = torch.cuda.get_device_capability()
        if cap < scheme.min_cuda_capability:
            return f"{scheme.name} needs CUDA compute capability >= {scheme.min_cuda_capability}, this GPU has {cap}"
    return None
