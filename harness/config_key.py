"""One resolved configuration per run, and its hash: the key for resume, for the stored config and for the row."""
from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

# keys that change where or how a run is recorded, not what is measured
_NOT_HASHED = ("results", "runner", "force", "progress", "log_level", "hydra")


def run_config(cfg: DictConfig) -> dict:
    data = OmegaConf.to_container(cfg, resolve=True)
    out = {k: v for k, v in data.items() if k not in _NOT_HASHED}
    cap = out.get("capability")
    if isinstance(cap, dict) and not cap.get("enabled") and all(v is None for k, v in cap.items() if k != "enabled"):
        out["capability"] = {"enabled": False}  # capability=none's empty keys (there for the error message) hash as before
    return out


def config_hash(cfg: DictConfig | dict) -> str:
    data = cfg if isinstance(cfg, dict) else run_config(cfg)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
