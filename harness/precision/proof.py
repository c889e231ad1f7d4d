"""Proof that a scheme did what it says: inspect module and tensor types and the bytes stored.

Before a scheme is applied, `linear_inventory` lists the decoder's nn.Linear layers (lm_head excluded: every
scheme keeps it in full precision). After, `prove` looks at what now holds each of those weights. A quantising
scheme that left any of them as a plain float Linear fails the proof: no row is reported for it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.core.errors import ProofError  # noqa: F401 - re-exported
from harness.precision.stored_bytes import module_bytes

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")


@dataclass
class Proof:
    weight_bytes: int
    model_params: int
    linear_params: int
    linear_bytes: int
    quantized_params: int
    types: str

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.weight_bytes / self.model_params

    @property
    def linear_bits_per_weight(self) -> float:
        return 8 * self.linear_bytes / self.linear_params if self.linear_params else float("nan")

    @property
    def quantized_fraction(self) -> float:
        return self.quantized_params / self.model_params


def count_params(model) -> int:
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def linear_inventory(model) -> dict[str, int]:
    """Decoder linear layers (anything with in/out features: nn.Linear and the libraries' quantised linears) and
    their logical weight element counts. A layer a library skipped is still in it, as a plain Linear."""
    return {name: int(m.in_features) * int(m.out_features) for name, m in model.named_modules()
            if isinstance(getattr(m, "in_features", None), int) and isinstance(getattr(m, "out_features", None), int)
            and "lm_head" not in name}


def linear_widths(config) -> dict[str, int]:
    """The input widths of a decoder layer's linears, from the model's config (attention in, attention out, MLP down):
    what a scheme's weight groups must tile, known before anything is loaded."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    inter = getattr(text, "intermediate_size", None) or getattr(text, "ffn_dim", None) or 4 * text.hidden_size
    return {"q/k/v/gate/up": text.hidden_size, "o_proj": text.num_attention_heads * head_dim, "down_proj": inter}


def config_param_count(config) -> int:
    """Parameters of the unquantised architecture (for models quantised at load time, whose packed tensors
    under-count), from a meta-device instance: no memory is allocated."""
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        return count_params(AutoModelForCausalLM.from_config(config))


def _holder_type(module) -> tuple[str, bool]:
    """(description, is_quantised) of what holds a former Linear's weight now."""
    cls = type(module)
    weight = getattr(module, "weight", None)
    if callable(weight):  # torch dynamic quantised Linear exposes weight()
        weight = weight()
    wcls = type(weight).__name__ if weight is not None else "none"
    dtype = str(getattr(weight, "dtype", "")).replace("torch.", "")
    desc = f"{cls.__name__}[{wcls}:{dtype}]"
    quantised = (cls.__module__.split(".")[0] in ("bitsandbytes", "hqq", "optimum")
                 or cls.__module__.startswith("torch.ao.nn.quantized")
                 or (weight is not None and wcls not in ("Parameter", "Tensor"))
                 or (dtype and dtype not in FLOAT_DTYPES))
    return desc, quantised


def prove(model, scheme, inventory: dict[str, int], model_params: int, dtype: str | None = None) -> Proof:
    """`dtype`: the compute dtype a float scheme's parameters must all be in (default the scheme's own)."""
    import torch

    modules = dict(model.named_modules())
    types: Counter[str] = Counter()
    linear_bytes = quantized = 0
    skipped = []
    seen: dict = {}
    for name, numel in inventory.items():
        module = modules.get(name)
        if module is None:
            raise ProofError(f"{scheme.name}: layer {name} disappeared after applying the scheme")
        desc, is_q = _holder_type(module)
        types[desc] += 1
        linear_bytes += module_bytes(module, seen)
        if is_q:
            quantized += numel
        elif scheme.quantizes:
            skipped.append(f"{name} ({desc})")
    if scheme.quantizes and skipped:
        raise ProofError(f"{scheme.name}: {len(skipped)} of {len(inventory)} decoder linear layers were left "
                         f"unquantised, e.g. {skipped[:3]}")
    if not scheme.quantizes:
        dtype = dtype or scheme.dtype
        want = getattr(torch, dtype)
        wrong = [n for n, p in model.named_parameters() if p.dtype != want]
        if wrong:
            raise ProofError(f"{scheme.name}: {len(wrong)} parameters are not {dtype}, e.g. {wrong[:3]}")
    total = module_bytes(model)
    if scheme.quantizes and linear_bytes >= sum(inventory.values()) * 2:
        raise ProofError(f"{scheme.name}: decoder linear layers still occupy {linear_bytes} bytes "
                         f"({8 * linear_bytes / sum(inventory.values()):.1f} bits/weight): not quantised storage")
    summary = "; ".join(f"{k} x{v}" for k, v in types.most_common())
    return Proof(weight_bytes=total, model_params=model_params, linear_params=sum(inventory.values()),
                 linear_bytes=linear_bytes, quantized_params=quantized, types=summary)
