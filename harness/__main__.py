"""`python -m harness model=... precision=...`: one run, one CSV row. With `-m`, a Hydra sweep of runs."""
from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness.plan import config_hash
from harness.precision.registry import UnknownScheme, get_scheme
from harness.record.store import ResultsFileError, done_hashes


def _validate(cfg: DictConfig) -> None:
    get_scheme(cfg.precision.name)  # unknown scheme -> message listing the choices
    from harness.evaluate.tasks import load_task

    for task in cfg.eval.tasks:
        t = load_task(task)  # unknown task -> the choices
        if t.spec.get("group_by"):
            t.select_groups(cfg.eval.get("subjects"))  # unknown subject -> the choices


def _check_results(path: str) -> None:
    """An alien file is an error; a torn line (a writer killed mid-row) is reported and left alone: that run is
    simply not counted as done, and the next append starts on a fresh line."""
    from harness.record.store import read_rows

    try:
        read_rows(path)
    except ResultsFileError as exc:
        if "line 1 " in str(exc):
            raise
        print(f"warning: {exc}", file=sys.stderr)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> int:
    from harness.runner import run_and_record
    from harness.sweep import progress_line, record_outcome

    hc = HydraConfig.get()
    multirun = hc.mode.name == "MULTIRUN"
    overrides = list(hc.overrides.task)
    try:
        _validate(cfg)
        _check_results(cfg.results.path)
        done = done_hashes(cfg.results.path)
    except (UnknownScheme, KeyError, ResultsFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if multirun:
            record_outcome(hc.sweep.dir, "failed")
            return 2
        sys.exit(2)
    label = f"model={cfg.model.name} precision={cfg.precision.name}"
    if multirun:
        print(progress_line(hc.sweep.dir, hc.job.num, label), flush=True)
    chash = config_hash(cfg)
    if chash in done and not cfg.force:
        print(f"[harness] skip {label}: already recorded ok in {cfg.results.path} (config {chash}; force=true reruns)")
        status = "skipped"
    else:
        row = run_and_record(cfg, overrides)
        status = row["status"]
        summary = ", ".join(f"{k}={row[k]:.4g}" if isinstance(row.get(k), float) else f"{k}={row.get(k)}"
                            for k in ("status", "decode_tok_s", "ttft_ms_p50", "weight_bytes", "mmlu_acc")
                            if row.get(k) is not None)
        print(f"[harness] {label}: {summary}" + (f"\n[harness] error: {row['error']}" if row.get("error") else ""))
    if multirun:
        record_outcome(hc.sweep.dir, status)
    elif status in ("failed", "timeout"):
        sys.exit(1)
    return 0


if __name__ == "__main__":
    main()
