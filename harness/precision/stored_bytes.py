"""The bytes the weights really occupy: quantised storage as stored, scales and zero points included, tied tensors
once. Part of the proof (a scheme must store fewer bytes, not only claim to)."""
from __future__ import annotations

from typing import Iterable


def tensor_bytes(t) -> int:
    """Stored bytes of a tensor; tensor subclasses (torchao, quanto) are summed over their inner tensors."""
    if t is None:
        return 0
    flatten = getattr(type(t), "__tensor_flatten__", None)
    if flatten is not None:
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names)
    return t.numel() * t.element_size()


def _tensors_in(obj, depth: int = 0) -> Iterable:
    """Tensors held in plain attributes/dicts (bnb quant_state, hqq meta): stored but not registered as buffers."""
    import torch

    if depth > 3 or obj is None:
        return
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors_in(v, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors_in(v, depth + 1)
    elif hasattr(obj, "__dict__") and type(obj).__module__.split(".")[0] in ("bitsandbytes", "hqq"):
        for v in vars(obj).values():
            yield from _tensors_in(v, depth + 1)


def _unregistered_tensors(module) -> Iterable:
    name = type(module).__module__
    if name.startswith("torch.ao.nn.quantized") and callable(getattr(module, "weight", None)):
        # dynamic quantised Linear: int8 weight and its scales live in packed params, not in buffers
        import torch

        weight = module.weight()
        yield weight.int_repr()
        if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            yield weight.q_per_channel_scales()
            yield weight.q_per_channel_zero_points()
        if module.bias() is not None:
            yield module.bias()
    if name.startswith("bitsandbytes"):
        w = getattr(module, "weight", None)
        for attr in ("SCB", "quant_state"):
            yield from _tensors_in(getattr(w, attr, None))
    if name.startswith("hqq"):
        yield from _tensors_in(getattr(module, "meta", None))


def stored_tensors(module, seen: dict | None = None) -> Iterable:
    """Every tensor a module tree stores (parameters, buffers, and what libraries keep outside them), each once
    (tied embeddings, shared scales). `seen` maps id to the tensor itself, keeping temporaries alive so that their ids
    cannot be reused within one walk."""
    seen = {} if seen is None else seen
    for sub in module.modules():
        tensors = [t for _, t in sub.named_parameters(recurse=False)]
        tensors += [t for _, t in sub.named_buffers(recurse=False)]
        tensors += list(_unregistered_tensors(sub))
        for t in tensors:
            if id(t) in seen:
                continue
            seen[id(t)] = t
            yield t


def module_bytes(module, seen: dict | None = None) -> int:
    """Bytes stored by a module tree, each tensor once."""
    return sum(tensor_bytes(t) for t in stored_tensors(module, seen))


def bytes_per_device(module) -> dict[str, int]:
    """Bytes stored by a module tree per device ("cpu", "cuda:0", ...), each tensor once."""
    out: dict[str, int] = {}
    for t in stored_tensors(module):
        where = str(t.device)
        out[where] = out.get(where, 0) + tensor_bytes(t)
    return out
