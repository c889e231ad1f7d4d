"""Run one configuration in its own child process (peak memory is that run's alone; a crash, an out-of-memory kill
or a hang ends that run only), turn whatever happened into a row, and append it to the CSV."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from omegaconf import OmegaConf

from harness.plan import config_hash, run_config
from harness.record.store import append_row, save_config


def _side_dirs(csv_path: Path) -> tuple[Path, Path]:
    stem = str(csv_path).removesuffix(".csv")
    return Path(stem + ".logs"), Path(stem + ".predictions")


def _tee(stream, log, echo: bool) -> None:
    for chunk in iter(lambda: stream.read1(4096), b""):
        log.write(chunk)
        log.flush()
        if echo:
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()


def run_child(job: dict, log_path: Path, timeout_s: float, echo: bool = True) -> tuple[str, dict | None, str]:
    """Start the worker, stream its output to the log (and terminal), enforce the timeout on its process group."""
    with tempfile.TemporaryDirectory() as tmp:
        job_path = Path(tmp) / "job.json"
        job = {**job, "result_path": str(Path(tmp) / "result.json")}
        job_path.write_text(json.dumps(job))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "harness.worker", str(job_path)], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            reader = threading.Thread(target=_tee, args=(proc.stdout, log, echo), daemon=True)
            reader.start()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                reader.join(5)
                return "timeout", None, f"TimeoutError: run exceeded runner.timeout_s={timeout_s:g} s and was killed"
            reader.join(5)
        result_file = Path(job["result_path"])
        if result_file.exists():
            result = json.loads(result_file.read_text())
            return result["status"], result.get("row"), result.get("error", "")
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        hint = " (SIGKILL: out of memory?)" if proc.returncode == -signal.SIGKILL else ""
        return "failed", None, f"ChildProcessError: run process died with {how}{hint} before writing a result"


def run_and_record(cfg, overrides: list[str]) -> dict:
    """Execute one configuration (isolated unless runner.isolate=false) and append its row. Returns the row."""
    from harness.run import identity

    csv_path = Path(cfg.results.path)
    chash = config_hash(cfg)
    now = dt.datetime.now(dt.timezone.utc)
    run_id = f"{now:%Y%m%dT%H%M%S}-{chash[:8]}-{os.getpid()}"
    logs, preds = _side_dirs(csv_path)
    log_path = logs / f"{run_id}.log"
    save_config(csv_path, chash, OmegaConf.to_yaml(OmegaConf.create(run_config(cfg))))
    job = {"config": OmegaConf.to_container(cfg, resolve=True), "predictions_dir": str(preds), "run_id": run_id}
    t0 = time.perf_counter()
    if cfg.runner.isolate:
        status, measured, error = run_child(job, log_path, float(cfg.runner.timeout_s), echo=cfg.get("progress", True))
    else:
        status, measured, error = _run_inline(cfg, preds, run_id)
    run_s = time.perf_counter() - t0
    row = {"run_id": run_id, "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "status": status, "error": error or None, "log_path": str(log_path) if cfg.runner.isolate else None,
           "overrides": " ".join(overrides), "config_hash": chash, **identity(cfg), **(measured or {}), "run_s": run_s}
    append_row(csv_path, row)
    return row


def _run_inline(cfg, preds: Path, run_id: str):
    from harness.run import Unavailable, execute

    try:
        return "ok", execute(cfg, predictions_dir=preds, run_id=run_id), ""
    except Unavailable as exc:
        return "unavailable", None, str(exc)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "failed", None, f"{type(exc).__name__}: {first}"
