"""One resolved configuration per run, and its hash: the key for resume, for the stored config and for the row."""
from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

# keys that change where or how a run is recorded, not what is measured
_NOT_HASHED = ("results", "runner", "force", "progress", "log_level", "hydra")


def checkpoint_fingerprint(model_cfg) -> str | None:
    """The content fingerprint of a hub or local checkpoint that is on this machine (harness/models/identity.py), or
    None (packaged and architecture-only models are named by their config; a hub id not downloaded yet has none)."""
    if model_cfg.get("source") != "hub" or not model_cfg.get("id"):
        return None
    from harness.core.errors import ModelLoadError
    from harness.models.hub import local_folder
    from harness.models.identity import content_fingerprint

    try:
        return content_fingerprint(local_folder(model_cfg))
    except (ModelLoadError, OSError):
        return None


def run_config(cfg: DictConfig) -> dict:
    """What a run measures, as a plain dict: the resolved config less where and how it is recorded, plus the content
    fingerprint of a hub or local checkpoint (a checkpoint changed in place is another configuration)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    out = {k: v for k, v in data.items() if k not in _NOT_HASHED}
    from harness.precision.calibrated import CALIBRATED
    from harness.precision.openvino import DATA_AWARE

    if (out.get("precision") or {}).get("name") not in (*CALIBRATED, *DATA_AWARE):
        out.pop("calibration", None)  # only llm-compressor's schemes and NNCF's data-aware one calibrate
    fingerprint = checkpoint_fingerprint(cfg.model) if isinstance(cfg, DictConfig) else None
    if fingerprint:
        out["model"] = {**out["model"], "checkpoint": fingerprint}
    cap = out.get("capability")
    if isinstance(cap, dict) and not cap.get("enabled") and all(v is None for k, v in cap.items() if k != "enabled"):
        out["capability"] = {"enabled": False}  # capability=none's empty keys (there for the error message) hash as before
    return out


# keys renamed since rows were recorded (harness/config/schema.py RENAMED_KEYS), hashed under the names of their day:
# a recorded row keeps resuming, and its conversions and references keep their cache keys
_HASHED_AS = {("model", "source_weights"): "baseline", ("quality", "reference"): "baseline",
              ("capability", "reference"): "baseline"}


def _as_hashed(data: dict) -> dict:
    out = dict(data)
    for (section, new), old in _HASHED_AS.items():
        node = out.get(section)
        if isinstance(node, dict) and new in node:
            out[section] = {(old if k == new else k): v for k, v in node.items()}
    return out


def config_hash(cfg: DictConfig | dict) -> str:
    data = _as_hashed(cfg if isinstance(cfg, dict) else run_config(cfg))
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
