"""Where a model's weights go on a machine of several GPUs, planned by accelerate (its `infer_auto_device_map`, the
planner behind `from_pretrained(device_map="auto")`) on a meta-device copy of the architecture: nothing is
allocated, so it runs anywhere, a CPU included. Used to record the planned split, to size cluster jobs (how many GPUs
a checkpoint needs in a precision) and to test placement without GPUs.

The load itself passes `device_map="auto"` and `max_memory` to `from_pretrained`, which runs the same planner with
the quantizer's own sizes (harness/precision/prepare.py)."""
from __future__ import annotations

from typing import Any


def _meta_model(config, dtype: str):
    import copy

    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with init_empty_weights():
        return AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))


def plan_device_map(config, dtype: str, max_memory: dict[Any, Any]) -> dict[str, Any]:
    """accelerate's device map for the architecture in `dtype` under `max_memory` ({0: "40GiB", 1: "40GiB", ...}):
    module name -> device index (or "cpu"/"disk" where the GPUs do not suffice). The GPUs need not exist here
    (accelerate's warning that they do not is silenced: this is a plan)."""
    import logging

    from accelerate import infer_auto_device_map

    model = _meta_model(config, dtype)
    log = logging.getLogger("accelerate.utils.modeling")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return infer_auto_device_map(model, max_memory=max_memory, no_split_module_classes=model._no_split_modules,
                                     dtype=dtype)
    finally:
        log.setLevel(level)


def bytes_per_device(config, dtype: str, device_map: dict[str, Any]) -> dict[str, int]:
    """Bytes of weights the map puts on each device ("cuda:0", "cuda:1", "cpu", "disk")."""
    from accelerate.utils import compute_module_sizes

    sizes = compute_module_sizes(_meta_model(config, dtype), dtype=dtype)
    out: dict[str, int] = {}
    for module, where in device_map.items():
        key = f"cuda:{where}" if isinstance(where, int) else str(where)
        out[key] = out.get(key, 0) + int(sizes[module])
    return out


def gpus_needed(config, dtype: str, gpu_bytes: int, most: int = 8, headroom: float = 0.85) -> int | None:
    """The fewest GPUs of `gpu_bytes` each (a `headroom` share of it for weights, the rest for the KV cache and
    activations) whose planned map keeps every layer on a GPU; None when `most` GPUs do not suffice."""
    budget = int(gpu_bytes * headroom)
    for n in range(1, most + 1):
        where = set(plan_device_map(config, dtype, {i: budget for i in range(n)} | {"cpu": 0}).values())
        if where <= set(range(n)):
            return n
    return None


def checkpoint_config(model_id: str):
    """The transformers config of a hub id (its config.json alone is fetched, or read from the local hub cache) or a
    local folder."""
    from transformers import AutoConfig

    from harness.models.identity import is_local

    if is_local(model_id):
        return AutoConfig.from_pretrained(model_id)
    from huggingface_hub import hf_hub_download

    return AutoConfig.from_pretrained(str(__import__("pathlib").Path(hf_hub_download(model_id, "config.json")).parent))


def weights_gib(config, dtype: str = "bfloat16") -> float:
    from accelerate.utils import compute_module_sizes

    return compute_module_sizes(_meta_model(config, dtype), dtype=dtype)[""] / 2**30


def job_size(model_id: str, gpu_gib: float = 80.0) -> dict[str, int]:
    """What a cluster job for this checkpoint asks for: GPUs for its bf16 weights (the reference and the widest row;
    quantised rows need fewer), host memory for a streamed load (harness/models/stream.py holds a tensor at a time),
    and a timeout covering the download (it happens inside the job) and the sweep of one precision."""
    config = checkpoint_config(model_id)
    size = weights_gib(config)
    gpus = gpus_needed(config, "bfloat16", int(gpu_gib * 2**30)) or 8
    return {"gpus": gpus, "mem_gb": int(max(64, 16 + size * 0.5)), "timeout_min": int(60 + size * 1.0)}
