"""A model as a checkpoint folder on disk (config.json + safetensors) with its tokenizer, for engines whose
converters read a Hugging Face folder, not a loaded model (ONNX Runtime GenAI's model builder, OpenVINO's exporter):
the fp32 folder dequantised from a packaged GGUF, the seeded random model saved once, or a local hub folder. The
tokenizer is the one the torch engine uses, so every engine is fed the same token ids."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config.schema import ModelConfig
from harness.core.errors import ModelLoadError


@dataclass
class Checkpoint:
    folder: Path
    tokenizer: Any
    source_weights: str  # what the full-precision weights every scheme starts from are
    weights: str  # real | random


def checkpoint(model_cfg) -> Checkpoint:
    from transformers import AutoTokenizer

    source = model_cfg.source
    if source == "packaged_gguf":
        from harness.models.packaged_gguf import dequantised_folder

        folder = dequantised_folder(model_cfg)
        return Checkpoint(folder, AutoTokenizer.from_pretrained(str(folder)), model_cfg.source_weights, "real")
    if source == "random":
        from harness.models.local_tokenizer import local_tokenizer
        from harness.models.random_arch import build_config, materialised

        m = ModelConfig.of(model_cfg)
        folder, tok = materialised(build_config(model_cfg), m.seed), local_tokenizer(m.tokenizer_vocab)
        if not (folder / "tokenizer.json").exists():  # converters copy the folder's tokenizer files
            tok.save_pretrained(str(folder))
        return Checkpoint(folder, tok, f"fp32 seeded random weights (seed {m.seed})", m.weights)
    if source == "hub":
        from harness.models.hub import local_folder
        from harness.models.identity import model_label
        from harness.models.stream import storage_dtype

        folder = local_folder(model_cfg)
        trust = ModelConfig.of(model_cfg).trust_remote_code
        try:
            tok = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust)
        except Exception as exc:  # noqa: BLE001 - re-raised with the folder named
            raise ModelLoadError(f"{model_label(model_cfg)}: its tokenizer could not be loaded: "
                                 f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        stored = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}.get(storage_dtype(folder), "float")
        return Checkpoint(folder, tok, model_cfg.get("source_weights") or f"{stored} checkpoint {model_label(model_cfg)}",
                          "real")
    raise ModelLoadError(f"unknown model source {source!r} in model config {model_cfg.name!r}")


def checkpoint_folder(model_cfg) -> Path:
    """The checkpoint folder of a packaged or hub model, without loading its tokenizer."""
    if model_cfg.source == "packaged_gguf":
        from harness.models.packaged_gguf import dequantised_folder

        return dequantised_folder(model_cfg)
    if model_cfg.source == "hub":
        from harness.models.hub import local_folder

        return local_folder(model_cfg)
    raise ModelLoadError(f"model config {model_cfg.name!r} ({model_cfg.source}) has no checkpoint folder")


def tokenizer_of(model_cfg):
    """The tokenizer every engine is fed by, without loading (or saving) the weights: for the quality windows and the
    reference, which are settled before the measured model loads."""
    if model_cfg.source == "random":
        from harness.models.local_tokenizer import local_tokenizer

        return local_tokenizer(ModelConfig.of(model_cfg).tokenizer_vocab)
    return checkpoint(model_cfg).tokenizer


def fingerprint(folder: Path) -> dict:
    """What identifies a checkpoint folder's content cheaply: its name, config and weight files' sizes and times."""
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".json", ".bin"))
    return {"folder": folder.name, "files": [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]}
