"""Weight sources. Each module loads one kind of source and returns a LoadedModel; `load_model` dispatches on
``model.source`` from the model config (conf/model/*.yaml)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


from harness.errors import ModelLoadError  # noqa: F401 - re-exported for the loaders


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    name: str
    baseline: str
    weights: str = "real"  # or "random"


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


def load_model(model_cfg, device: str = "cpu", load_kwargs: dict | None = None, dtype: str = "float32") -> LoadedModel:
    """Load the model named by `model_cfg`. Real checkpoints load in fp32 on the host (the scheme casts or quantises
    them); architecture-only weights are created on `device` in `dtype` directly."""
    source = model_cfg.source
    if source == "packaged_gguf":
        from harness.models.packaged_gguf import load
    elif source == "random":
        from harness.models.random_arch import load

        return load(model_cfg, device=device, load_kwargs=load_kwargs or {}, dtype=dtype)
    elif source == "hub":
        from harness.models.hub import load
    else:
        raise ModelLoadError(f"unknown model source {source!r} in model config {model_cfg.name!r} "
                             "(expected packaged_gguf, random or hub)")
    return load(model_cfg, device=device, load_kwargs=load_kwargs or {})
