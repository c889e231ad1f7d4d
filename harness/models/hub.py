"""Any Hugging Face id or local folder, as a user with hub access has it: reachability and downloads through
huggingface_hub (its proxies, `HF_ENDPOINT`, `HF_TOKEN` for gated models, `HF_HUB_OFFLINE`), `model.revision`, and
`model.trust_remote_code` (off unless asked for). The download happens in the sweep's own process before the run's
child starts, with huggingface_hub's progress bars: its time is the row's `download_s`, not load time, and it does
not count against `runner.timeout_s`. The child then reads the local snapshot only."""
from __future__ import annotations

import os
import time
from pathlib import Path

from harness.core.errors import ModelLoadError
from harness.models.identity import is_local  # noqa: F401 - re-exported

LOCAL_HINT = "download the checkpoint where there is network and point at its folder: model.id=/path/to/folder"
# what a causal LM needs from a repository: configs, safetensors weights, tokenizer files (not the original
# consolidated weights some repositories ship beside them, nor other frameworks' files)
ALLOW = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "tokenizer*", "*.jinja"]
IGNORE = ["original/*", "consolidated*", "*.pth", "*.gguf", "*.onnx", "*.onnx_data", "*.msgpack", "*.h5", "*.ot"]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _revision(model_cfg) -> str | None:
    rev = model_cfg.get("revision")
    return str(rev) if rev else None


def check_local(model_id: str) -> Path:
    folder = Path(model_id).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(f"model.id={model_id}: no such local folder")
    if not (folder / "config.json").exists():
        raise ModelLoadError(f"model.id={model_id}: the folder has no config.json (not a transformers checkpoint)")
    return folder


def cached_snapshot(model_id: str, revision: str | None) -> Path | None:
    """The local hub cache's snapshot of this id and revision, or None."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_id, revision=revision, local_files_only=True, allow_patterns=ALLOW,
                                      ignore_patterns=IGNORE))
    except Exception:  # noqa: BLE001 - not cached (or incompletely): the caller says what to do
        return None


def explain(model_id: str, revision: str | None, exc: BaseException) -> str:
    """One line for what the hub answered."""
    from huggingface_hub.errors import (GatedRepoError, OfflineModeIsEnabled, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    at = f" at revision {revision}" if revision else ""
    if isinstance(exc, GatedRepoError):
        token = "HF_TOKEN is set but its account has no access" if os.environ.get("HF_TOKEN") else "HF_TOKEN is not set"
        return (f"model.id={model_id} is a gated model ({token}): accept its licence on huggingface.co and "
                "export HF_TOKEN=<a read token of that account>")
    if isinstance(exc, RevisionNotFoundError):
        return f"model.id={model_id}: the hub has no revision {revision!r} (model.revision: a branch, tag or commit)"
    if isinstance(exc, RepositoryNotFoundError):
        hint = "" if os.environ.get("HF_TOKEN") else " (a private model needs HF_TOKEN)"
        return f"model.id={model_id}: no such model on the hub{hint}"
    if isinstance(exc, OfflineModeIsEnabled) or _offline():
        return (f"model.id={model_id}{at} is not in the local hub cache and HF_HUB_OFFLINE is set; unset it to "
                f"download, or {LOCAL_HINT}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return (f"model.id={model_id}{at}: the hub ({endpoint}) could not be reached ({type(exc).__name__}: {first[:200]})"
            f" and the model is not in the local hub cache; {LOCAL_HINT}")


def check_source(model_cfg) -> None:
    """Before anything is loaded: a missing local folder, a gated model without a token, an unknown id or revision,
    an unreachable hub, each in one line. A model already in the local hub cache needs no network."""
    model_id = str(model_cfg.get("id") or "")
    if not model_id:
        raise ModelLoadError("model=hf needs model.id=<hub id or local folder>")
    if is_local(model_id):
        check_local(model_id)
        return
    revision = _revision(model_cfg)
    if cached_snapshot(model_id, revision) is not None:
        return
    if _offline():
        raise ModelLoadError(explain(model_id, revision, RuntimeError("offline")))
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(model_id, revision=revision, timeout=10)
    except Exception as exc:  # noqa: BLE001 - every answer becomes one line
        raise ModelLoadError(explain(model_id, revision, exc)) from None


def fetch(model_cfg, progress: bool = True) -> tuple[Path, float | None]:
    """The checkpoint's local folder, downloading it first when it is a hub id not yet cached (its progress shown
    unless `progress` is false). Returns (folder, seconds the download took, or None when nothing was fetched)."""
    model_id = str(model_cfg.get("id") or "")
    if is_local(model_id):
        return check_local(model_id), None
    revision = _revision(model_cfg)
    cached = cached_snapshot(model_id, revision)
    if cached is not None:
        return cached, None
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    print(f"[harness] downloading {model_id}{'@' + revision if revision else ''} from the hub (before the run: "
          "not load time, not under runner.timeout_s) ...", flush=True)
    (enable_progress_bars if progress else disable_progress_bars)()
    t0 = time.perf_counter()
    try:
        folder = Path(snapshot_download(model_id, revision=revision, allow_patterns=ALLOW, ignore_patterns=IGNORE))
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(explain(model_id, revision, exc)) from None
    return folder, time.perf_counter() - t0


def local_folder(model_cfg) -> Path:
    """Inside a run: the checkpoint folder, which `fetch` made local before the run started."""
    model_id = str(model_cfg.get("id") or "")
    if not model_id:
        raise ModelLoadError("model=hf needs model.id=<hub id or local folder>")
    if is_local(model_id):
        return check_local(model_id)
    folder = cached_snapshot(model_id, _revision(model_cfg))
    if folder is None:
        raise ModelLoadError(f"model.id={model_id} is not in the local hub cache ({LOCAL_HINT})")
    return folder
