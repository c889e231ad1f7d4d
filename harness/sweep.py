"""Sweep bookkeeping for Hydra multirun: how many runs are planned, which one is running, time left, and the exit
code (non-zero when any run failed or timed out).

The callback writes `<sweep dir>/.sweep_state.json` at the start; every job (in this process or a launcher's
worker) reads it for its progress line and appends its outcome to `<sweep dir>/.outcomes` (one line per run)."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback


def planned_runs(task_overrides: list[str], sweeper_params: dict | None) -> int:
    """Number of combinations of a Hydra multirun: the product of each swept key's number of values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    counts: dict[str, int] = {}
    overrides = [f"{k}={v}" for k, v in (sweeper_params or {}).items()] + list(task_overrides)
    for ov in parser.parse_overrides(overrides):  # later (command-line) overrides replace preset ones
        counts[ov.get_key_element()] = len(list(ov.sweep_string_iterator())) if ov.is_sweep_override() else 1
    return max(1, math.prod(counts.values()))


def _state_path(sweep_dir: str) -> Path:
    return Path(sweep_dir) / ".sweep_state.json"


class SweepCallback(Callback):
    def on_multirun_start(self, config, **kwargs) -> None:
        from omegaconf import OmegaConf

        params = config.hydra.sweeper.get("params")
        params = OmegaConf.to_container(params, resolve=True) if params else {}
        total = planned_runs(list(config.hydra.overrides.task), params)
        path = _state_path(config.hydra.sweep.dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"total": total, "start": time.time()}))
        print(f"[harness] sweep of {total} runs; results -> {config.results.path}", flush=True)

    def on_multirun_end(self, config, **kwargs) -> None:
        outcomes = _outcomes(config.hydra.sweep.dir)
        counts = {s: sum(1 for o in outcomes if o == s) for s in sorted(set(outcomes))}
        print(f"[harness] sweep finished: {counts or 'no runs'}", flush=True)
        if any(s in ("failed", "timeout") for s in outcomes):
            print("[harness] some runs failed: see the error and log_path columns", file=sys.stderr, flush=True)
            sys.exit(1)


def _outcomes(sweep_dir: str) -> list[str]:
    path = Path(sweep_dir) / ".outcomes"
    return path.read_text().split() if path.exists() else []


def record_outcome(sweep_dir: str, status: str) -> None:
    with open(Path(sweep_dir) / ".outcomes", "a") as f:
        f.write(status + "\n")


def progress_line(sweep_dir: str, job_num: int, label: str) -> str:
    path = _state_path(sweep_dir)
    if not path.exists():
        return f"[harness] run {job_num + 1}: {label}"
    state = json.loads(path.read_text())
    outcomes = _outcomes(sweep_dir)
    ran = sum(1 for o in outcomes if o != "skipped")  # skipped runs take no time: not in the rate
    elapsed = time.time() - state["start"]
    left = state["total"] - len(outcomes)
    eta = f", about {elapsed / ran * left / 60:.1f} min left" if ran else ""
    return f"[harness] run {job_num + 1} of {state['total']}: {label} ({elapsed / 60:.1f} min elapsed{eta})"
