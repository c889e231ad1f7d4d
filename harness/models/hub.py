"""Any Hugging Face id or local folder (for users who have a hub or a downloaded checkpoint). Loaded in fp32 so
that the precision scheme, not the checkpoint's dtype, decides what runs."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from harness.models import LoadedModel, ModelLoadError

LOCAL_HINT = "download the checkpoint where there is network and point at its folder: model.id=/path/to/folder"


def is_local(model_id: str) -> bool:
    """A path, not a hub id (hub ids are `name` or `org/name`)."""
    return model_id.startswith(("/", ".", "~")) or model_id.count("/") > 1 or Path(model_id).expanduser().exists()


def check_source(model_cfg) -> None:
    """A missing local folder says so; a hub id that is not cached fails at once when the hub cannot be reached
    (no network, or HF_HUB_OFFLINE=1) instead of retrying for a minute."""
    model_id = str(model_cfg.get("id") or "")
    if not model_id:
        raise ModelLoadError("model=hf needs model.id=<hub id or local folder>")
    if is_local(model_id):
        folder = Path(model_id).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(f"model.id={model_id}: no such local folder")
        if not (folder / "config.json").exists():
            raise ModelLoadError(f"model.id={model_id}: the folder has no config.json (not a transformers checkpoint)")
        return
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return  # in the local hub cache: transformers loads it without the network
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "no network"
        raise ModelLoadError(f"model.id={model_id}: the Hugging Face hub cannot be reached ({why}) and the model is "
                             f"not in the local hub cache; {LOCAL_HINT}")


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def load(model_cfg, device: str = "cpu", load_kwargs: dict | None = None) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not model_cfg.get("id"):
        raise ModelLoadError("model=hf needs model.id=<hub id or local folder>")
    source = str(Path(model_cfg.id).expanduser()) if is_local(str(model_cfg.id)) else str(model_cfg.id)
    try:
        tok = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, **{"dtype": torch.float32, **(load_kwargs or {})})
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"could not load {model_cfg.id!r} ({LOCAL_HINT}): "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    return LoadedModel(model=model, tokenizer=tok, name=model_cfg.name,
                       baseline=model_cfg.get("baseline") or f"fp32 from {model_cfg.id}")
