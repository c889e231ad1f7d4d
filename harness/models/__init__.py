"""Weight sources. A packaged GGUF (dequantised once to an fp32 folder), a hub id or a local folder are checkpoint
folders (harness/models/checkpoint.py), read by `load_model` through transformers with their tensors streamed
(harness/models/stream.py); architecture-only models are created in memory (harness/models/random_arch.py).
``model.source`` in the model config (conf/model/*.yaml) says which."""
from __future__ import annotations

from typing import Any

from harness.config.schema import ModelConfig
from harness.core.errors import ModelLoadError  # noqa: F401 - re-exported for the loaders
from harness.models.loaded import LoadedModel  # noqa: F401 - re-exported


def warm_imports(model_cfg, modules=()) -> None:
    """Import the model family's transformers module (and the scheme's libraries) before a load is timed: about 2 s of
    imports per process here, which says nothing about the weights. `run_s` still counts them."""
    import importlib

    family = model_cfg.get("family") or ""
    names = [f"transformers.models.{family}.modeling_{family}"] if family else []
    for name in [*names, *modules]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a warm-up only; the timed load reports any real failure
            pass


def check_source(model_cfg) -> None:
    """Before anything is loaded: a source that cannot work (a missing folder, an unreachable hub) fails in one line."""
    if model_cfg.get("source") == "hub":
        from harness.models.hub import check_source as check_hub

        check_hub(model_cfg)


def load_model(model_cfg, device: str = "cpu", dtype: str = "float32", quantization_config: Any = None,
               device_map: Any = None, max_memory: dict | None = None) -> LoadedModel:
    """Load the model named by `model_cfg` with its floating tensors in `dtype` (or quantised while loading by
    `quantization_config`), placed by `device_map` (None: `device`). Architecture-only weights are created on
    `device` in `dtype` directly."""
    source = model_cfg.source
    if source == "random":
        from harness.models.random_arch import load

        if quantization_config is not None:
            raise ModelLoadError(f"{model_cfg.name}: architecture-only weights take no load-time config "
                                 f"({type(quantization_config).__name__}); the scheme quantises them in place")
        return load(model_cfg, device=device, dtype=dtype)
    if source not in ("packaged_gguf", "hub"):
        raise ModelLoadError(f"unknown model source {source!r} in model config {model_cfg.name!r} "
                             "(expected packaged_gguf, random or hub)")
    from harness.models.checkpoint import checkpoint
    from harness.models.identity import model_label
    from harness.models.stream import load_folder

    ckpt = checkpoint(model_cfg)
    if device_map is None and device != "cpu":
        device_map = device
    model = load_folder(ckpt.folder, dtype, quantization_config, device_map, max_memory,
                        trust_remote_code=ModelConfig.of(model_cfg).trust_remote_code)
    return LoadedModel(model=model, tokenizer=ckpt.tokenizer, name=model_label(model_cfg), source_weights=ckpt.source_weights,
                       weights=ckpt.weights, folder=ckpt.folder)
