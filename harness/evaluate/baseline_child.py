"""The fp32 baseline built in a child process of its own (`python -m harness.evaluate.baseline_child job.json`), so a
run's peak memory and time stay its own and the sweep's order does not matter. One child builds everything the run
needs from that baseline scheme: the quality reference and the capability baseline, with one load of the model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from harness.evaluate import baseline_cache as cache
from harness.logs import get
from harness.paths import cache_dir, die_with_parent_preexec


def needs(cfg, windows) -> dict[str, list[str]]:
    """Baseline scheme -> what is missing for this run: 'reference' (quality) and/or 'capability'."""
    out: dict[str, list[str]] = {}
    if cfg.quality.get("enabled") and cache.reference_missing(cfg, windows):
        out.setdefault(str(cfg.quality.baseline), []).append("reference")
    if cfg.get("capability", {}).get("enabled") and cache.missing_capability(cfg):
        out.setdefault(str(cfg.capability.baseline), []).append("capability")
    return out


def build(cfg, precision: str, parts: list[str]) -> None:
    """Build `parts` of the `precision` baseline of this run's model in one child, on that scheme's own engine."""
    base = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    base.precision = {"name": precision}
    base.engine = {"name": "auto"}  # the baseline scheme's own engine
    job = cache_dir("jobs") / f"baseline-{os.getpid()}.json"
    job.write_text(json.dumps({"config": OmegaConf.to_container(base), "parts": parts}))
    get(__name__).info(f"building the {precision} baseline of {cfg.model.name} once ({' and '.join(parts)}; cached)")
    try:
        subprocess.run([sys.executable, "-m", "harness.evaluate.baseline_child", str(job)], check=True,
                       preexec_fn=die_with_parent_preexec)
    finally:
        job.unlink(missing_ok=True)


def main(job_path: str) -> None:
    from harness.engines.base import build_engine, resolve_engine
    from harness.environment import resolve_device
    from harness.evaluate.capability import score_full
    from harness.evaluate.reference import write_reference
    from harness.evaluate.run_tasks import evaluate_tasks
    from harness.evaluate.windows import corpus_windows
    from harness.precision.registry import get_scheme

    job = json.loads(Path(job_path).read_text())
    cfg = OmegaConf.create(job["config"])
    scheme = get_scheme(cfg.precision.name)
    built = build_engine(cfg, scheme, resolve_device(cfg.device), resolve_engine(str(cfg.engine.name), scheme))
    try:
        if "reference" in job["parts"]:
            _, preds = evaluate_tasks(cfg, built.engine, built.tokenizer, None, "") if cfg.eval.tasks else ({}, {})
            windows = corpus_windows(built.tokenizer, int(cfg.quality.context), int(cfg.quality.max_tokens))
            write_reference(cfg, built.engine, built.tokenizer, windows, preds)
        if "capability" in job["parts"]:
            for task in cache.missing_capability(cfg):
                cache.atomic_save(score_full(cfg, built.engine, built.tokenizer, task), cache.baseline_path(cfg, task),
                                  as_json=True)
    finally:
        built.engine.close()


if __name__ == "__main__":
    main(sys.argv[1])
