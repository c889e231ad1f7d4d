"""Launch one configuration in its own child process (harness/child.py: peak memory is that run's alone; a crash,
an out-of-memory kill or a hang ends that run only), turn whatever happened into a row, and append it to the CSV."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from omegaconf import OmegaConf

from harness.config.schema import setting
from harness.config_key import config_hash, run_config
from harness.core.logs import get
from harness.record.files import side_dirs, write_bundle
from harness.record.schema import NAMES
from harness.record.store import ResultsFileError, append_row, save_config


class _Log:
    """The run's log file. A log that cannot be written (a full disk) stops being written, and says so once; the run
    and its row go on."""

    def __init__(self, path: Path):
        self.path, self.error = path, ""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "ab")
        except OSError as exc:
            self.file, self.error = None, f"{type(exc).__name__}: {exc}"

    def write(self, chunk: bytes) -> None:
        if self.file is None:
            return
        try:
            self.file.write(chunk)
            self.file.flush()
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.close()

    def close(self) -> None:
        file, self.file = self.file, None
        if file is not None:
            try:
                file.close()
            except OSError as exc:
                self.error = self.error or f"{type(exc).__name__}: {exc}"


def _tee(stream, log: _Log, echo: bool) -> None:
    """Copy the child's output to its log, and to the terminal unless a line is known, harmless library noise, as it
    arrives: a progress bar's carriage-return updates (tqdm: evaluation, downloads, conversions) reach the terminal
    when they are written, not when the bar's line ends; the log keeps each line's final state only. A traceback goes
    to the log only: the terminal gets the run's one-line reason and the log's path (summary.py)."""
    from harness.core.quiet import is_noise

    in_traceback = in_bar = False
    buf = b""
    read = getattr(stream, "read1", None) or (lambda n: os.read(stream.fileno(), n))
    while True:
        chunk = read(65536)
        if not chunk:
            break
        buf += chunk
        while True:
            cr, nl = buf.find(b"\r"), buf.find(b"\n")
            cut = min(i for i in (cr, nl) if i >= 0) if cr >= 0 or nl >= 0 else -1
            if cut < 0:
                break
            seg, sep, buf = buf[:cut], buf[cut:cut + 1], buf[cut + 1:]
            if sep == b"\r":  # a progress update: the terminal now, the log when its line ends
                in_bar = True
                if echo and not in_traceback and seg.strip() and not is_noise(seg + b"\n"):
                    sys.stdout.buffer.write(b"\r" + seg)
                    sys.stdout.buffer.flush()
                continue
            in_bar = False
            line = seg + b"\n"
            log.write(line)
            in_traceback = in_traceback or line.startswith(b"Traceback (most recent call last)")
            if echo and not in_traceback and not is_noise(line):
                sys.stdout.buffer.write(b"\r" + line if line.strip() else line)
                sys.stdout.buffer.flush()
        if in_bar and buf.strip() and echo and not in_traceback and not is_noise(buf + b"\n"):
            sys.stdout.buffer.write(b"\r" + buf)  # the bar's newest state, before its next update arrives
            sys.stdout.buffer.flush()
    if buf:
        log.write(buf)
        if echo and not in_traceback and not is_noise(buf):
            sys.stdout.buffer.write(buf)
            sys.stdout.buffer.flush()


def _read_all(stream, out: list) -> None:
    out.append(stream.read())


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class Terminated(BaseException):
    """SIGTERM reached the sweep: end the run in flight, then stop."""


def _raise_terminated(signum, frame):
    raise Terminated()


def run_child(job: dict, log_path: Path, timeout_s: float, echo: bool = True,
              extra_env: dict | None = None) -> tuple[str, dict | None, str]:
    """Start the worker, stream its output to the log (and terminal), enforce the timeout on its process group.

    The job goes to the worker on its stdin and the result comes back on a pipe: no temporary files. The worker
    dies with this process (PR_SET_PDEATHSIG, set by the worker); Ctrl-C or SIGTERM here kills the worker's whole
    process group before the sweep stops."""
    result_r, result_w = os.pipe()
    log = _Log(log_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARNESS_PARENT_PID": str(os.getpid()),
           "HARNESS_RESULT_FD": str(result_w), **(extra_env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "harness.child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(result_w,), env=env)
    os.close(result_w)
    result: list[bytes] = []
    with os.fdopen(result_r, "rb") as result_pipe:
        readers = [threading.Thread(target=_tee, args=(proc.stdout, log, echo), daemon=True),
                   threading.Thread(target=_read_all, args=(result_pipe, result), daemon=True)]
        for t in readers:
            t.start()
        main_thread = threading.current_thread() is threading.main_thread()
        old_term = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
        try:
            try:
                proc.stdin.write(json.dumps(job).encode())
                proc.stdin.close()
            except BrokenPipeError:  # the worker died at start: its exit code says how
                pass
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(proc)
            _join(readers, log)
            return "timeout", None, f"TimeoutError: run exceeded runner.timeout_s={timeout_s:g} s and was killed"
        except BaseException:  # Ctrl-C, SIGTERM: no worker outlives the sweep
            _stop(proc)
            _join(readers, log)
            raise
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, old_term)
        _join(readers, log)
    if log.error:
        get(__name__).warning(f"the run's log {log_path} could not be written ({log.error}); the measurement is kept")
    if result and result[0]:
        data = json.loads(result[0])
        return data["status"], data.get("row"), data.get("error", "")
    how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
    hint = " (SIGKILL: out of memory?)" if proc.returncode == -signal.SIGKILL else ""
    return "failed", None, f"ChildProcessError: run process died with {how}{hint} before writing a result"


def _join(readers: list[threading.Thread], log: _Log) -> None:
    for t in readers:
        t.join(5)
    log.close()


def _write_side_tables(csv_path: Path, run_id: str, measured: dict) -> Path | None:
    """Pop the run's side-table lines (load-curve levels, LoadGen profiles) from `measured` and append them beside
    the CSV. Lines that cannot be written there are kept under the cache, as a refused row is (merge carries them
    back); returns that kept CSV's path, or None."""
    from harness.record.tables import BY_INTERNAL_KEY

    kept = None
    for key, table in BY_INTERNAL_KEY.items():
        lines = measured.pop(key, None)
        if not lines:
            continue
        try:
            table.append(csv_path, run_id, lines)
        except (OSError, ValueError) as exc:
            from harness.core.paths import cache_dir

            kept = cache_dir("unrecorded") / f"{run_id}.csv"
            table.append(kept, run_id, lines)
            get(__name__).warning(f"the {len(lines)} lines of {run_id} for the {table.what} could not be written "
                                  f"to {table.path(csv_path)} ({type(exc).__name__}: {exc}); they are kept in "
                                  f"{table.path(kept)}")
    return kept


def run_and_record(cfg, overrides: list[str], download_s: float | None = None) -> dict:
    """Execute one configuration (isolated unless runner.isolate=false) and append its row. Returns the row.
    `download_s`: the seconds the checkpoint's download took before the run (a column; not the run's time)."""
    from harness.run import identity

    csv_path = Path(cfg.results.path)
    chash = config_hash(cfg)
    now = dt.datetime.now(dt.timezone.utc)
    run_id = f"{now:%Y%m%dT%H%M%S}-{chash[:8]}-{os.getpid()}"
    logs, preds = side_dirs(csv_path)
    log_path = logs / f"{run_id}.log"
    save_config(csv_path, chash, OmegaConf.to_yaml(OmegaConf.create(run_config(cfg))))
    job = {"config": OmegaConf.to_container(cfg, resolve=True), "predictions_dir": str(preds), "run_id": run_id}
    t0 = time.perf_counter()
    gpus = cfg.runner.get("gpus_per_run")
    if cfg.runner.isolate and gpus:
        from harness.gpu_slots import gpu_slots

        with gpu_slots(int(gpus)) as ids:  # the run sees only the GPUs it holds
            t0 = time.perf_counter()
            status, measured, error = run_child(job, log_path, float(cfg.runner.timeout_s),
                                                echo=setting(cfg, "progress"),
                                                extra_env={"CUDA_VISIBLE_DEVICES": ",".join(ids)})
    elif cfg.runner.isolate:
        status, measured, error = run_child(job, log_path, float(cfg.runner.timeout_s), echo=setting(cfg, "progress"))
    else:
        status, measured, error = _run_inline(cfg, preds, run_id)
    run_s = time.perf_counter() - t0
    profiles = (measured or {}).get("loadgen_profiles")
    kept = _write_side_tables(csv_path, run_id, measured or {})
    row = {"run_id": run_id, "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "status": status, "error": error or None, "log_path": str(log_path) if cfg.runner.isolate else None,
           "overrides": " ".join(overrides), "config_hash": chash, **identity(cfg), **(measured or {}), "run_s": run_s,
           "download_s": download_s}
    try:
        append_row(csv_path, row)
    except (OSError, ResultsFileError) as exc:
        row["unsaved_path"] = str(save_unrecorded(row))
        row["record_error"] = f"{type(exc).__name__}: {exc}"
    if profiles:  # for the run's summary (written to the side table above, not a column)
        row["loadgen_profiles"] = profiles
    if kept is not None:  # the row beside its side tables' lines, so that one merge brings them all back
        if "unsaved_path" not in row:
            save_unrecorded(row)
        get(__name__).warning(f"to bring them back: python -m harness.record.merge {kept} -o {csv_path}")
    if cfg.results.get("bundle"):
        try:
            write_bundle(csv_path, cfg.results.bundle)
        except OSError as exc:
            get(__name__).warning(f"results.bundle={cfg.results.bundle} could not be written: {exc}")
    return row


def save_unrecorded(row: dict) -> Path:
    """A row the results file refused (read-only, full disk, a directory): kept as a one-row CSV in the cache, from
    which `python -m harness.record.merge <it> -o <results.csv>` copies it into the results file later."""
    from harness.core.paths import cache_dir

    path = cache_dir("unrecorded") / f"{row['run_id']}.csv"
    append_row(path, {k: v for k, v in row.items() if k in NAMES})
    return path


class RunCapped(BaseException):
    """An in-process run reached runner.timeout_s (SIGALRM): it stops where it is and is a `timeout` row."""


def _capped(signum, frame):
    raise RunCapped()


def _run_inline(cfg, preds: Path, run_id: str):
    """The run in this process (runner.isolate=false: the one-process GPU sweep, notebooks). runner.timeout_s is
    enforced by SIGALRM, which stops the run at its next Python step (a call stuck inside one C function is stopped by
    whatever caps the whole process); afterwards what it held is released for the next run (references, the
    allocator's cache, peaks)."""
    from harness.core.errors import Unavailable
    from harness.run import measure_in_process

    release_run_memory()  # the peaks from here on are this run's
    cap = float(cfg.runner.timeout_s)
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGALRM, _capped) if main_thread else None
    if main_thread:
        signal.setitimer(signal.ITIMER_REAL, cap)
    try:
        return "ok", measure_in_process(cfg, predictions_dir=preds, run_id=run_id), ""
    except RunCapped:
        return "timeout", None, f"TimeoutError: run exceeded runner.timeout_s={cap:g} s and was stopped"
    except Unavailable as exc:
        return "unavailable", None, str(exc)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return "failed", None, f"{type(exc).__name__}: {first}"
    finally:
        if main_thread:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        release_run_memory()


def release_run_memory() -> None:
    """Between runs in one process: collect what the run left, return the CUDA allocator's cache to the device and
    reset its peaks, and start a new peak of resident memory, so the next run's figures are its own."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    from harness.measure.memory import reset_peak_rss
    from harness.models.stream import malloc_trim

    malloc_trim()  # freed host memory back to the system: the next run's resident memory is its own
    reset_peak_rss()
