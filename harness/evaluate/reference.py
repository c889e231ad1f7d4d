"""The full-precision baseline's reference outputs for the quality columns: top-k log-probs, next-token NLL and
argmax on the quality windows, and per-question predictions per task, computed once per (model, baseline, token set)
and cached (harness/evaluate/baseline_cache.py).

A run that is itself the baseline writes the reference from what it just computed. Any other run whose reference is
missing has it built first in the baseline's own child process (harness/evaluate/baseline_child.py), together with
the capability baseline when that is missing too."""
from __future__ import annotations

from harness.evaluate.baseline_cache import (atomic_save, load_reference, logits_path, predictions_path,  # noqa: F401
                                             reference_label, reference_missing)


def write_reference(cfg, engine, tokenizer, windows, predictions: dict) -> None:
    from harness.evaluate.windows import reference_from

    atomic_save(reference_from(engine, windows, int(cfg.quality.topk)), logits_path(cfg, windows))
    for task, preds in predictions.items():
        atomic_save(preds, predictions_path(cfg, task), as_json=True)


def ensure_reference(cfg, windows, engine=None, tokenizer=None, predictions: dict | None = None) -> dict:
    from harness.evaluate.baseline_child import build

    if cfg.precision.name == cfg.quality.baseline and engine is not None:
        write_reference(cfg, engine, tokenizer, windows, predictions or {})  # the baseline run is the authority
    elif reference_missing(cfg, windows):
        build(cfg, str(cfg.quality.baseline), ["reference"])
    ref = load_reference(cfg, windows)
    if ref is None:
        raise RuntimeError(f"baseline reference for {reference_label(cfg)} could not be built")
    return ref
