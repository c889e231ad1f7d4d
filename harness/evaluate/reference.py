"""The full-precision baseline's reference outputs for the quality columns: top-k log-probs, next-token NLL and
argmax on the quality windows, and per-question predictions per task, computed once per (model, baseline, token set)
and cached (harness/evaluate/reference_cache.py).

A run that is itself the reference writes it from what it just computed. Any other run has it built before its own
model is loaded, in the reference's own process (harness/evaluate/reference_process.py, started by harness/run.py),
together with the capability baseline when that is missing too; here it is only read."""
from __future__ import annotations

from harness.config.schema import section
from harness.evaluate.reference_cache import (atomic_save, load_reference, logits_path, predictions_path,  # noqa: F401
                                             reference_label, reference_missing)


def write_reference(cfg, engine, tokenizer, windows, predictions: dict) -> None:
    from harness.evaluate.windows import reference_from

    quality = section(cfg, "quality")
    atomic_save(reference_from(engine, windows, quality.topk, quality.full_windows),
                logits_path(cfg, windows))
    for task, preds in predictions.items():
        atomic_save(preds, predictions_path(cfg, task), as_json=True)


def ensure_reference(cfg, windows, engine=None, tokenizer=None, predictions: dict | None = None) -> dict:
    if cfg.precision.name == cfg.quality.reference and engine is not None:
        write_reference(cfg, engine, tokenizer, windows, predictions or {})  # the reference run is the authority
    ref = load_reference(cfg, windows)
    if ref is None:
        raise RuntimeError(f"the reference {reference_label(cfg)} is not in the cache (it is built before the run's "
                           "model loads: harness/run.py)")
    return ref
