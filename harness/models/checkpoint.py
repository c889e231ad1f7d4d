"""A model as a checkpoint folder on disk (config.json + safetensors) with its tokenizer, for engines whose
converters read a Hugging Face folder, not a loaded model (ONNX Runtime GenAI's model builder, OpenVINO's exporter):
the fp32 folder dequantised from a packaged GGUF, the seeded random model saved once, or a local hub folder. The
tokenizer is the one the torch engine uses, so every engine is fed the same token ids."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.models import ModelLoadError


@dataclass
class Checkpoint:
    folder: Path
    tokenizer: Any
    baseline: str  # where the full-precision weights came from
    weights: str  # real | random


def checkpoint(model_cfg) -> Checkpoint:
    from transformers import AutoTokenizer

    source = model_cfg.source
    if source == "packaged_gguf":
        from harness.models.packaged_gguf import dequantised_folder

        folder = dequantised_folder(model_cfg)
        return Checkpoint(folder, AutoTokenizer.from_pretrained(str(folder)), model_cfg.baseline, "real")
    if source == "random":
        from harness.models.local_tokenizer import local_tokenizer
        from harness.models.random_arch import build_config, materialised

        seed = int(model_cfg.get("seed", 0))
        folder, tok = materialised(build_config(model_cfg), seed), local_tokenizer(int(model_cfg.get("tokenizer_vocab", 1024)))
        if not (folder / "tokenizer.json").exists():  # converters copy the folder's tokenizer files
            tok.save_pretrained(str(folder))
        return Checkpoint(folder, tok, f"fp32 seeded random weights (seed {seed})", model_cfg.get("weights", "random"))
    if source == "hub":
        from harness.models.hub import LOCAL_HINT, is_local

        if not model_cfg.get("id"):
            raise ModelLoadError("model=hf needs model.id=<hub id or local folder>")
        if is_local(str(model_cfg.id)):
            folder = Path(model_cfg.id).expanduser()
        else:
            from huggingface_hub import snapshot_download

            try:
                folder = Path(snapshot_download(str(model_cfg.id), local_files_only=True))
            except Exception as exc:  # noqa: BLE001 - re-raised with the id named
                raise ModelLoadError(f"{model_cfg.id!r} is not in the local hub cache ({LOCAL_HINT})") from exc
        return Checkpoint(folder, AutoTokenizer.from_pretrained(str(folder)),
                          model_cfg.get("baseline") or f"fp32 from {model_cfg.id}", "real")
    raise ModelLoadError(f"unknown model source {source!r} in model config {model_cfg.name!r}")


def fingerprint(folder: Path) -> dict:
    """What identifies a checkpoint folder's content cheaply: its name, config and weight files' sizes and times."""
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".json", ".bin"))
    return {"folder": folder.name, "files": [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]}
