"""One resolved configuration per run, and its hash: the key for resume, for the stored config and for the row."""
from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

# keys that change where or how a run is recorded, not what is measured
_NOT_HASHED = ("results", "runner", "force", "progress", "hydra")


def run_config(cfg: DictConfig) -> dict:
    data = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in data.items() if k not in _NOT_HASHED}


def config_hash(cfg: DictConfig | dict) -> str:
    data = cfg if isinstance(cfg, dict) else run_config(cfg)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
