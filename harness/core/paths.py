"""Where the harness keeps things: the cache outside the repository (converted models, reference logits, bandwidth)
and the shipped data inside the package. Writing and trusting cache files is harness/core/cache_files.py's job."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # harness/
DATA_DIR = PACKAGE_DIR / "evaluate" / "data"


def cache_dir(*parts: str) -> Path:
    """``$HARNESS_CACHE`` or ``$XDG_CACHE_HOME/quant-harness`` (default ``~/.cache/quant-harness``)."""
    xdg = os.environ.get("XDG_CACHE_HOME") or ""  # empty is unset (the XDG spec): never ./quant-harness
    root = os.environ.get("HARNESS_CACHE") or Path(xdg if os.path.isabs(xdg) else Path.home() / ".cache") / \
        "quant-harness"
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
