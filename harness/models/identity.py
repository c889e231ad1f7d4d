"""What a model is, as a row and a cache key name it: for a hub id or a local folder, the checkpoint itself (its id or
folder name, its revision) and a fingerprint of its content, so that a checkpoint changed in place is a new model to
every cache and to resume; for the packaged and architecture-only models, their config's name."""
from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
SAMPLES = 16  # blocks read per weight file for its content fingerprint
BLOCK = 1 << 16


def is_local(model_id: str) -> bool:
    """A path, not a hub id (hub ids are `name` or `org/name`)."""
    return model_id.startswith(("/", ".", "~")) or model_id.count("/") > 1 or Path(model_id).expanduser().exists()


def hub_cache_label(folder: Path) -> str | None:
    """`org/name@<commit[:12]>` for a folder of the Hugging Face cache (models--org--name/snapshots/<commit>)."""
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        repo = folder.parent.parent.name.removeprefix("models--").replace("--", "/")
        return f"{repo}@{folder.name[:12]}"
    return None


def model_label(model_cfg) -> str:
    """The `model` column: a hub id (with `@revision` when one is asked for), a local folder's name (a hub-cache
    snapshot folder as its repo id and commit), or the model config's name."""
    model_id = str(model_cfg.get("id") or "") if model_cfg.get("source") == "hub" else ""
    if not model_id:
        return str(model_cfg.name)
    if is_local(model_id):
        folder = Path(model_id).expanduser().resolve()
        label = hub_cache_label(folder) or folder.name
    else:
        label = model_id
    revision = model_cfg.get("revision")
    return f"{label}@{revision}" if revision and "@" not in label else label


def path_name(model_cfg) -> str:
    """The model's label as a plain file-name part (`org/name@rev` -> `org--name@rev`)."""
    return _UNSAFE.sub("--", model_label(model_cfg)).strip("-.") or "model"


def content_fingerprint(folder: Path) -> str:
    """A fingerprint of a checkpoint folder's content: its config and tokenizer files whole, and each weight file's
    size and SAMPLES blocks spread over it (its safetensors header among them; new weights of the same shapes change
    the blocks). Reads about 1 MiB per weight file, whatever its size; remembered per process while the files' sizes
    and times stay the same."""
    files = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file())
    return _fingerprint(str(folder), files)


@lru_cache(maxsize=64)
def _fingerprint(folder_name: str, files: tuple) -> str:
    folder = Path(folder_name)
    h = hashlib.sha256()
    for path in (folder / name for name, _, _ in files):
        if path.suffix == ".json" or path.name.startswith("tokenizer"):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
        elif path.suffix in (".safetensors", ".bin", ".pt", ".gguf"):
            size = path.stat().st_size
            h.update(f"{path.name}\0{size}\0".encode())
            with open(path, "rb") as f:
                for i in range(SAMPLES):
                    f.seek(max(0, (size - BLOCK) * i // max(1, SAMPLES - 1)))
                    h.update(f.read(BLOCK))
    return h.hexdigest()[:16]


def checkpoint_identity(model_cfg, folder: Path | None) -> dict:
    """What a cache key or the resume key holds for this model: its label, and for a checkpoint folder its content
    fingerprint."""
    out = {"model": model_label(model_cfg)}
    if folder is not None and folder.is_dir():
        out["content"] = content_fingerprint(folder)
    return out


def architecture(folder: Path) -> str:
    """The checkpoint's architecture class as its config names it, e.g. LlamaForCausalLM."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    names = config.get("architectures") or []
    return str(names[0]) if names else str(config.get("model_type") or "")
