"""A model in its scheme, ready for an engine: the scheme's load plan carried out (harness/precision/plan.py), placed
on the devices, proven. The torch engine opens what this returns; it does not branch on how the model was made.

Placement: on a CPU the host; on CUDA `device_map="auto"` with `engine.max_memory` (per GPU, e.g.
`{0: 70GiB, 1: 70GiB}`; default accelerate's: the free memory of every visible GPU), so a model that does not fit
one GPU is spread over the others by accelerate's planner. A model that would need the host or the disk as well is
unavailable, with the reason, rather than measured at offloading speed. The row records the devices used and the
bytes on each."""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Any

from harness.core.errors import Unavailable
from harness.precision.plan import LoadPlan, plan_for
from harness.precision.stored_bytes import bytes_per_device


@dataclass
class Prepared:
    model: Any
    tokenizer: Any
    proof: Any  # harness.precision.proof.Proof
    source_weights: str  # what the full-precision weights every scheme starts from are
    weights: str  # real | random
    load_s: float  # load + scheme + proof, synchronised on CUDA
    plan: LoadPlan
    convert_s: float | None = None
    placement: dict[str, int] = field(default_factory=dict)  # device -> bytes of weights there
    architecture: str = ""


def max_memory_of(knobs) -> dict | None:
    """`engine.max_memory` with GPU indices as integers (YAML keys are strings), or None."""
    raw = knobs.max_memory
    if not raw:
        return None
    return {int(k) if str(k).isdigit() else str(k): v for k, v in dict(raw).items()}


def _synchronise(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _free_device_cache(device: str) -> None:
    """What the load freed goes back to the device (torch's cache would otherwise hold bf16-sized blocks for a
    quantised model, and reserved/NVML figures would read the unquantised size)."""
    gc.collect()
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def _check_no_offload(model, device: str, label: str) -> None:
    where = set(getattr(model, "hf_device_map", {}).values())
    off = sorted(str(w) for w in where if str(w) in ("cpu", "disk"))
    if str(device).startswith("cuda") and off:
        raise Unavailable(f"{label} does not fit the visible GPUs under engine.max_memory: accelerate placed part of "
                          f"it on {' and '.join(off)}; give more GPUs (CUDA_VISIBLE_DEVICES) or a smaller scheme")


def prepare(cfg, scheme, device: str) -> Prepared:
    """Load cfg.model for `scheme` on `device` as the scheme's plan says, apply what comes after the load, prove it."""
    import torch

    from harness.models import warm_imports
    from harness.models.identity import model_label
    from harness.precision.proof import config_param_count, count_params, linear_inventory, prove

    warm_imports(cfg.model, scheme.requires)
    label = model_label(cfg.model)
    from harness.config.schema import engine_knobs, section

    knobs, model_cfg = engine_knobs(cfg, "torch"), section(cfg, "model")
    if scheme.how in ("calibrated", "shipped"):  # a compressed-tensors checkpoint, as shipped (precision/calibrated.py)
        from harness.precision.calibrated import calibration_of, torch_model

        model, tok, proof, source_weights, weights, convert_s, load_s = torch_model(cfg.model, scheme, device,
                                                                              calibration_of(cfg))
        return Prepared(model, tok, proof, source_weights, weights, load_s, plan_for(scheme, device, cfg.model.source),
                        convert_s=convert_s, placement=bytes_per_device(model))
    source = cfg.model.source
    if source == "random":
        from harness.models.random_arch import build_config

        config, folder, stored, ckpt = build_config(cfg.model), None, None, None
    else:
        from transformers import AutoConfig

        from harness.models.checkpoint import checkpoint
        from harness.models.stream import storage_dtype

        ckpt = checkpoint(cfg.model)
        folder = ckpt.folder
        stored = storage_dtype(folder)
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=model_cfg.trust_remote_code)
    plan = plan_for(scheme, device, source, stored)
    if scheme.fits and (why := scheme.fits(config)):
        raise Unavailable(f"{scheme.name}: {why}")
    t0 = time.perf_counter()
    if source == "random":
        from harness.models.random_arch import load

        loaded = load(cfg.model, device=device, dtype=plan.load_dtype)
        model, tok, source_weights, weights = loaded.model, loaded.tokenizer, loaded.source_weights, loaded.weights
    else:
        from harness.models.stream import load_folder

        device_map = knobs.device_map if device == "cuda" else None
        model = load_folder(folder, plan.load_dtype, plan.quantization_config, device_map, max_memory_of(knobs),
                            trust_remote_code=model_cfg.trust_remote_code)
        _check_no_offload(model, device, label)
        tok, source_weights, weights = ckpt.tokenizer, ckpt.source_weights, ckpt.weights
    params = config_param_count(model.config) if plan.quantization_config is not None else count_params(model)
    inventory = linear_inventory(model)
    if plan.transform is not None:
        model = plan.transform(model, device, plan.compute_dtype)
    model.eval()
    _free_device_cache(device)
    proof = prove(model, scheme, inventory, params, plan.compute_dtype)
    _synchronise(device)
    load_s = time.perf_counter() - t0
    torch.manual_seed(int(cfg.seed))
    from harness.models.identity import architecture

    arch = architecture(folder) if folder is not None else str((config.architectures or [config.model_type])[0])
    return Prepared(model, tok, proof, source_weights, weights, load_s, plan, placement=bytes_per_device(model),
                    architecture=arch)
