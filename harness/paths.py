"""Where the harness keeps things outside the repository (converted models, reference logits, bandwidth)."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "evaluate" / "data"


def cache_dir(*parts: str) -> Path:
    """``$HARNESS_CACHE`` or ``$XDG_CACHE_HOME/quant-harness`` (default ``~/.cache/quant-harness``)."""
    root = os.environ.get("HARNESS_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "quant-harness"
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
