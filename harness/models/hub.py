"""Any Hugging Face id or local folder (for users who have a hub or a downloaded checkpoint). Loaded in fp32 so
that the precision scheme, not the checkpoint's dtype, decides what runs."""
from __future__ import annotations

from harness.models import LoadedModel, ModelLoadError


def load(model_cfg, device: str = "cpu", load_kwargs: dict | None = None) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not model_cfg.get("id"):
        raise ModelLoadError("model=hf needs model.id=<hub id or local folder>")
    try:
        tok = AutoTokenizer.from_pretrained(model_cfg.id)
        model = AutoModelForCausalLM.from_pretrained(model_cfg.id, **{"dtype": torch.float32, **(load_kwargs or {})})
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"could not load {model_cfg.id!r} (no hub access here? a local folder works): "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    return LoadedModel(model=model, tokenizer=tok, name=model_cfg.name,
                       baseline=model_cfg.get("baseline") or f"fp32 from {model_cfg.id}",
                       family=getattr(model.config, "model_type", ""))
