"""The full-precision baseline's reference outputs, computed once per (model, baseline, token set) and cached:
top-k log-probs, next-token NLL and argmax on the quality windows, and per-question predictions per task.

A run that is itself the baseline writes the reference from what it just computed. Any other run whose reference
is missing builds it first in a child process (`python -m harness.evaluate.reference job.json`), so the run's own
peak memory stays its own and the sweep order does not matter."""
from __future__ import annotations

from harness.logs import get

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf

from harness.paths import cache_dir


def _model_key(cfg) -> dict:
    return {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()}


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def logits_path(cfg, windows) -> Path:
    q = cfg.quality
    tokens = hashlib.sha256(str(windows).encode()).hexdigest()[:16]
    key = _hash({"model": _model_key(cfg), "baseline": q.baseline, "topk": int(q.topk), "tokens": tokens})
    return cache_dir("reference") / f"{cfg.model.name}-{q.baseline}-logits-{key}.pt"


def predictions_path(cfg, task: str) -> Path:
    e = cfg.eval
    subjects = sorted(e.get("subjects") or [])
    key = _hash({"model": _model_key(cfg), "baseline": cfg.quality.baseline, "task": task, "shots": int(e.shots),
                 "per_subject": e.per_subject, "limit": e.get("limit"), **({"subjects": subjects} if subjects else {})})
    return cache_dir("reference") / f"{cfg.model.name}-{cfg.quality.baseline}-{task}-{key}.json"


def reference_label(cfg) -> str:
    q = cfg.quality
    return f"{cfg.model.name}/{q.baseline}; wikitext-2 test, ctx {q.context}, <= {q.max_tokens} tokens, top-{q.topk}"


def atomic_save(obj, path: Path, as_json: bool = False) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    if as_json:
        tmp.write_text(json.dumps(obj))
    else:
        torch.save(obj, tmp)
    os.replace(tmp, path)


def _load(cfg, windows) -> dict | None:
    lp = logits_path(cfg, windows)
    if not lp.exists():
        return None
    preds = {}
    for task in cfg.eval.tasks:
        pp = predictions_path(cfg, task)
        if not pp.exists():
            return None
        preds[task] = json.loads(pp.read_text())
    return {"logits": torch.load(lp), "predictions": preds}


def write_reference(cfg, engine, tokenizer, windows, predictions: dict) -> None:
    from harness.evaluate.windows import reference_from

    atomic_save(reference_from(engine, windows, int(cfg.quality.topk)), logits_path(cfg, windows))
    for task, preds in predictions.items():
        atomic_save(preds, predictions_path(cfg, task), as_json=True)


def ensure_reference(cfg, windows, engine=None, tokenizer=None, predictions: dict | None = None) -> dict:
    if cfg.precision.name == cfg.quality.baseline and engine is not None:
        write_reference(cfg, engine, tokenizer, windows, predictions or {})  # the baseline run is the authority
    elif _load(cfg, windows) is None:
        build_baseline_in_child(cfg, cfg.quality.baseline, "harness.evaluate.reference",
                                f"building the {cfg.quality.baseline} baseline reference for {cfg.model.name} (once)")
    ref = _load(cfg, windows)
    if ref is None:
        raise RuntimeError(f"baseline reference for {reference_label(cfg)} could not be built")
    return ref


def build_baseline_in_child(cfg, precision: str, module: str, what: str) -> None:
    """Run `python -m <module> job.json` with this run's config at the baseline `precision` on that scheme's own
    engine: the baseline is built in its own process, so the run's peak memory and time stay its own."""
    base = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    base.precision = {"name": precision}
    base.engine = {"name": "auto"}  # the baseline scheme's own engine
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(OmegaConf.to_container(base), f)
    get(__name__).info(f"{what} ...")
    try:
        subprocess.run([sys.executable, "-m", module, f.name], check=True)
    finally:
        os.unlink(f.name)


def main(job: str) -> None:
    """Build the baseline's reference with whichever engine runs the baseline scheme (engine=auto in the job)."""
    from harness.engines.base import build_engine, resolve_engine
    from harness.environment import resolve_device
    from harness.evaluate.run_tasks import evaluate_tasks
    from harness.evaluate.windows import corpus_windows
    from harness.precision.registry import get_scheme

    cfg = OmegaConf.create(json.loads(Path(job).read_text()))
    scheme = get_scheme(cfg.precision.name)
    built = build_engine(cfg, scheme, resolve_device(cfg.device), resolve_engine(str(cfg.engine.name), scheme))
    try:
        _, predictions = evaluate_tasks(cfg, built.engine, built.tokenizer, None, "") if cfg.eval.tasks else ({}, {})
        windows = corpus_windows(built.tokenizer, int(cfg.quality.context), int(cfg.quality.max_tokens))
        write_reference(cfg, built.engine, built.tokenizer, windows, predictions)
    finally:
        built.engine.close()


if __name__ == "__main__":
    main(sys.argv[1])
