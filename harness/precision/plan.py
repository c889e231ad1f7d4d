"""How a model reaches its scheme: the quantise step's seam between loading (harness/models) and the engines.

A `LoadPlan` says what the loader reads the checkpoint as and what happens to it:

- `cast`: a float scheme (fp32, bf16, fp16): the checkpoint read in that dtype, nothing after;
- `load-time config`: a transformers quantization config (BitsAndBytesConfig, TorchAoConfig, QuantoConfig) applied
  by `from_pretrained` tensor by tensor while it loads, in the compute dtype: no full-precision copy is ever held;
- `transform after load`: a library with no working transformers config (torch's dynamic int8, HQQ: transformers
  5.24's HqqConfig raises NotImplementedError) quantises after the load, one linear at a time. The checkpoint is read
  in the compute dtype, or in its own 16-bit dtype when the compute dtype is fp32 (a bf16 checkpoint is never
  widened whole to fp32: each linear is widened only as it is quantised, the rest afterwards);
- `built in place`: architecture-only weights are created on the device in the compute dtype, and a quantising
  scheme converts them in place (its `apply`), as there is no checkpoint to load through a config;
- `as shipped`: a calibrated (compressed-tensors) checkpoint, loaded as its config declares.

The compute (activation) dtype follows the device for schemes that declare "auto" (bf16 on CUDA, fp32 on a CPU) and
is the row's `compute_dtype` column."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

SIXTEEN_BIT = ("bfloat16", "float16")


@dataclass(frozen=True)
class LoadPlan:
    how: str  # cast | load-time config | transform after load | built in place | as shipped
    load_dtype: str  # what the floating tensors are read (or created) in
    compute_dtype: str  # activations and unquantised tensors when the model runs
    quantization_config: Any = None  # handed to from_pretrained
    transform: Callable[[Any, str, str], Any] | None = None  # (model, device, compute dtype) -> model, after the load

    def describe(self) -> str:
        config = f" ({type(self.quantization_config).__name__})" if self.quantization_config is not None else ""
        read = f"read in {self.load_dtype}" if self.how != "built in place" else f"created in {self.load_dtype}"
        return f"{self.how}{config}, {read}, compute in {self.compute_dtype}"


def plan_for(scheme, device: str, source: str, stored: str | None = None) -> LoadPlan:
    """The plan of `scheme` on `device` for a model from `source` (packaged_gguf | hub | random) whose checkpoint
    stores its floats as `stored` (None: not known, or no checkpoint)."""
    compute = scheme.compute_dtype(device)
    if scheme.how in ("calibrated", "shipped"):
        return LoadPlan("as shipped", "bfloat16", "bfloat16")
    if source == "random":
        return LoadPlan("built in place", compute, compute, transform=scheme.apply if scheme.quantizes else None)
    if scheme.how == "dtype":
        return LoadPlan("cast", compute, compute)
    if scheme.quantization_config is not None:
        return LoadPlan("load-time config", compute, compute, quantization_config=scheme.quantization_config(compute))
    load = stored if compute == "float32" and stored in SIXTEEN_BIT else compute
    return LoadPlan("transform after load", load, compute, transform=scheme.apply)


def cast_unquantised(model, dtype: str) -> None:
    """Every plain floating parameter not yet in `dtype` (embeddings, norms, biases, a kept lm_head) cast to it,
    module by module; quantised weights (tensor subclasses, integer storage) and buffers (rotary frequencies) are
    left as they are."""
    import torch

    want = getattr(torch, dtype)
    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if type(param.data) is torch.Tensor and param.is_floating_point() and param.dtype != want:
                param.data = param.data.to(want)


def per_linear(model, convert: Callable[[Any], Any], dtype: str, keep: Callable[[Any, str], bool]) -> int:
    """Replace each nn.Linear that `keep(module, name)` does not protect by `convert(linear in dtype)`, one at a time
    (the widened copy of one layer at most), then cast the rest of the model's parameters to `dtype`. Returns how
    many linears were converted."""
    import torch

    done = 0
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            full = f"{parent_name}.{name}" if parent_name else name
            if type(child) is not torch.nn.Linear or keep(child, full):
                continue
            setattr(parent, name, convert(child.to(getattr(torch, dtype))))
            done += 1
    cast_unquantised(model, dtype)
    return done
