"""Where the harness keeps things: the cache outside the repository (converted models, reference logits, bandwidth)
and the shipped data inside the package. Writing and trusting cache files is harness/core/cache_files.py's job."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # harness/
DATA_DIR = PACKAGE_DIR / "evaluate" / "data"


def cache_root() -> Path:
    """``$HARNESS_CACHE`` or ``$XDG_CACHE_HOME/quant-harness`` (default ``~/.cache/quant-harness``), not created."""
    xdg = os.environ.get("XDG_CACHE_HOME") or ""  # empty is unset (the XDG spec): never ./quant-harness
    return Path(os.environ.get("HARNESS_CACHE") or Path(xdg if os.path.isabs(xdg) else Path.home() / ".cache") /
                "quant-harness")


def in_cache(path: str | Path) -> str:
    """A path under the cache as logs show it: `<cache>/...`, so that a committed log names no machine's folders."""
    try:
        return str(Path("<cache>") / Path(path).relative_to(cache_root()))
    except ValueError:
        return str(path)


def cache_dir(*parts: str) -> Path:
    """A folder under the cache (cache_root), created when missing."""
    path = Path(cache_root(), *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def unwritable(folder: str | Path) -> str | None:
    """Why files could not be created in `folder`, or None. Tried, not inferred from modes (root writes through them,
    a read-only mount refuses its owner): a temporary file is created and removed in the folder, or, while it does
    not exist yet, in its nearest existing parent (nothing is left behind either way)."""
    import tempfile

    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".write-test-"):
            pass
    except OSError as exc:
        return f"{probe} cannot be written ({exc.strerror or type(exc).__name__})"
    return None
