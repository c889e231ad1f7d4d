"""Where the reference model's outputs are cached, under what key, and how they are saved: the quality reference
(top-k log-probs on the WikiText-2 windows, per-question predictions per task) and the capability baseline (full-set
correctness per task). Keys hold the model (its config and, for a checkpoint folder, a fingerprint of its content:
a checkpoint changed in place is a new entry), the reference scheme and what was scored. Written atomically; read by
the run that needs them.

The reference scheme `auto` (the default) is the checkpoint's own dtype: fp32 for the packaged models (their
checkpoint is the GGUF dequantised to fp32), bf16 for a bf16 hub checkpoint (an fp32 copy of a 70B model fits no
GPU); a scheme name asks for that one."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from omegaconf import OmegaConf

from harness.config.schema import section
from harness.models.identity import model_label, path_name
from harness.core.cache_files import cache_write
from harness.core.paths import cache_dir


def _model_key(cfg) -> dict:
    key = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()}
    if cfg.model.get("source") == "hub":
        from harness.models.hub import local_folder
        from harness.models.identity import checkpoint_identity

        key["checkpoint"] = checkpoint_identity(cfg.model, local_folder(cfg.model))
    return key


STORED_AS = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def resolve_reference(model_cfg, asked) -> str:
    """The reference scheme `asked` names: itself, or for `auto` the checkpoint's own dtype (fp32 for weights built
    in memory, which are created in fp32 when they are the reference)."""
    if asked is None or str(asked) != "auto":
        return str(asked)
    if model_cfg.get("source") == "random":
        return "fp32"
    from harness.models.checkpoint import checkpoint_folder
    from harness.models.stream import storage_dtype

    return STORED_AS.get(storage_dtype(checkpoint_folder(model_cfg)), "fp32")


def resolve_references(cfg) -> None:
    """`quality.reference` and `capability.reference` of this run's config resolved in place (see resolve_reference)."""
    for section in ("quality", "capability"):
        node = cfg.get(section)
        if node is not None and node.get("reference") is not None:
            node.reference = resolve_reference(cfg.model, node.reference)


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def atomic_save(obj, path: Path, as_json: bool = False) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with cache_write(path, "the reference's outputs"):
            if as_json:
                tmp.write_text(json.dumps(obj))
            else:
                torch.save(obj, tmp)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- the quality reference ---------------------------------------------------------------------------------------------
def logits_path(cfg, windows) -> Path:
    q = section(cfg, "quality")
    tokens = hashlib.sha256(str(windows).encode()).hexdigest()[:16]
    # the key's field keeps its name from before quality.reference was renamed, so the cached references stay valid
    key = _hash({"model": _model_key(cfg), "baseline": q.reference, "topk": q.topk, "tokens": tokens,
                 **({"full_windows": True} if q.full_windows else {})})
    return cache_dir("reference") / f"{path_name(cfg.model)}-{q.reference}-logits-{key}.pt"


def predictions_path(cfg, task: str) -> Path:
    e = section(cfg, "eval")
    subjects = sorted(e.subjects or [])
    key = _hash({"model": _model_key(cfg), "baseline": section(cfg, "quality").reference, "task": task, "shots": e.shots,
                 "per_subject": e.per_subject, "limit": e.limit, **({"subjects": subjects} if subjects else {})})
    return cache_dir("reference") / f"{path_name(cfg.model)}-{cfg.quality.reference}-{task}-{key}.json"


def reference_label(cfg) -> str:
    q = section(cfg, "quality")
    return (f"{model_label(cfg.model)}/{q.reference}; wikitext-2 test, ctx {q.context}, <= {q.max_tokens} tokens, "
            f"top-{q.topk}" + (", every position of each window (GPTQ's protocol)" if q.full_windows else ""))


def _load(path: Path, as_json: bool):
    """A cache file's content, or None when it is absent; a torn, empty or wrong-typed one is named, removed and
    counted as absent (it is built again)."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text()) if as_json else torch.load(path)
        ok = isinstance(data, list) if as_json else isinstance(data, dict) and {"topk_idx", "topk_logp", "nll",
                                                                                  "top1"} <= set(data)
        if not ok:
            raise ValueError(f"a {type(data).__name__} of the wrong shape")
        return data
    except Exception as exc:  # noqa: BLE001 - any unreadable cache file is rebuilt
        from harness.core.logs import get

        get(__name__).warning(f"cache file {path} is not readable ({type(exc).__name__}: {str(exc)[:120]}): "
                              "removing it and building it again")
        path.unlink(missing_ok=True)
        return None


def reference_missing(cfg, windows) -> bool:
    """Whether any file of the reference is absent or unreadable (an unreadable one is removed)."""
    return _load(logits_path(cfg, windows), False) is None or any(
        _load(predictions_path(cfg, t), True) is None for t in cfg.eval.tasks)


def load_reference(cfg, windows) -> dict | None:
    """The cached reference, or None when any part of it is missing or unreadable."""
    logits = _load(logits_path(cfg, windows), False)
    if logits is None:
        return None
    preds = {}
    for task in cfg.eval.tasks:
        preds[task] = _load(predictions_path(cfg, task), True)
        if preds[task] is None:
            return None
    return {"logits": logits, "predictions": preds}


# -- the capability baseline -------------------------------------------------------------------------------------------
def _task_key(task: str) -> str:
    """The task's spec and the names and sizes of its shipped data files: a changed task is a new cache entry."""
    from harness.evaluate.tasks import load_task
    from harness.core.paths import DATA_DIR

    spec = load_task(task).spec
    data = DATA_DIR / str(spec.get("data", ""))
    files = sorted(data.rglob("*")) if data.is_dir() else [data]
    sizes = [(str(f.relative_to(DATA_DIR)), f.stat().st_size) for f in files if f.is_file()]
    return hashlib.sha256(json.dumps([spec, sizes], sort_keys=True, default=str).encode()).hexdigest()[:16]


def capability_reference_path(cfg, task: str) -> Path:
    key = hashlib.sha256(json.dumps({"model": _model_key(cfg), "baseline": cfg.capability.reference, "task": task,
                                     "data": _task_key(task)}, sort_keys=True, default=str).encode())
    return (cache_dir("capability") /
            f"{path_name(cfg.model)}-{cfg.capability.reference}-{task}-{key.hexdigest()[:16]}.json")


def missing_capability(cfg) -> list[str]:
    return [t for t in cfg.capability.tasks if _load(capability_reference_path(cfg, t), True) is None]


def load_capability(cfg) -> dict[str, list[dict]]:
    return {t: _load(capability_reference_path(cfg, t), True) for t in cfg.capability.tasks}
