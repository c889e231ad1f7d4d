"""Sweeps that survive: failure rows, timeouts, SIGKILL mid-sweep then resume, exit codes, progress."""
import os
import signal
import subprocess
import sys
import time

from harness.record.store import read_rows
from harness.sweep import planned_runs

from tests.conftest import ROOT, run_harness

BASE = ["model=tiny-random", "bench=quick", "eval=none"]


def test_failing_and_timed_out_runs_get_rows_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "runs.csv"
    # 3 key/value heads for 4 query heads raises inside the run (a model that cannot run: not knowable before it
    # loads); bench.new_tokens=1 is refused before any load (one line, no row); timeout_s=0.5 kills a run before
    # torch has even been imported
    proc = run_harness("-m", *BASE, "model.arch.num_key_value_heads=3,2", "bench.new_tokens=1,8",
                       "runner.timeout_s=0.5,600", f"results.path={out}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                       check=False)
    assert proc.returncode == 1  # something failed: the exit code says so
    rows = read_rows(out)
    assert len(rows) == 4  # the 4 runs with new_tokens=8
    by = {(r["overrides"].split("num_key_value_heads=")[1][0], r["status"]) for r in rows}
    assert ("2", "ok") in by and ("3", "failed") in by and ("2", "timeout") in by
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["error"].startswith("RuntimeError: The size of tensor a (4) must match")
    assert os.path.exists(failed["log_path"]) and "Traceback" in open(failed["log_path"]).read()
    assert proc.stderr.count("bench.new_tokens=1 is not allowed: expected an integer from 2 to") == 4
    assert "run 8 of 8" in proc.stdout


def test_sigkill_mid_sweep_then_resume_gives_every_run_exactly_once(tmp_path):
    out = tmp_path / "runs.csv"
    args = [sys.executable, "-m", "harness", "-m", *BASE, "precision=fp32,bf16,fp16,int8-dynamic",
            f"results.path={out}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(read_rows(out, strict=False)) < 1:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and the run in flight die at once
    proc.wait()
    before = read_rows(out, strict=False)
    assert 1 <= len(before) < 4
    run_harness(*args[3:])
    rows = read_rows(out)
    assert sorted(r["precision"] for r in rows) == ["bf16", "fp16", "fp32", "int8-dynamic"]
    assert len({r["config_hash"] for r in rows}) == 4
    assert rows[: len(before)] == before  # nothing recorded was rewritten


def test_planned_runs_counts_combinations():
    assert planned_runs(["model=a,b", "precision=x,y,z", "bench=quick"], None) == 6
    assert planned_runs(["precision=x"], {"model": "a,b", "precision": "p,q,r"}) == 2


def test_joblib_launcher_with_two_workers_leaves_a_parseable_csv(tmp_path):
    import csv as _csv

    from harness.record.schema import NAMES

    out = tmp_path / "runs.csv"
    run_harness("-m", *BASE, "hydra/launcher=joblib2", "precision=fp32,bf16,fp16,int8-dynamic",
                f"results.path={out}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    with open(out, newline="") as f:
        lines = list(_csv.reader(f))
    assert lines[0] == list(NAMES) and all(len(line) == len(NAMES) for line in lines)
    assert sorted(r["precision"] for r in read_rows(out)) == ["bf16", "fp16", "fp32", "int8-dynamic"]


def test_a_progress_bar_reaches_the_terminal_as_it_moves_and_the_log_keeps_its_last_state(tmp_path, monkeypatch):
    """The child's carriage-return updates go through before its line (or the child) ends."""
    import io
    import os
    import sys
    import threading
    import time

    from harness import launch

    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", type("S", (), {"buffer": out, "write": lambda self, x: None,
                                                      "flush": lambda self: None})())
    r, w = os.pipe()
    log = launch._Log(tmp_path / "run.log")
    reader = threading.Thread(target=launch._tee, args=(os.fdopen(r, "rb", buffering=0), log, True), daemon=True)
    reader.start()
    os.write(w, b"mmlu:  10%|#   | 28/285 [00:03<00:29]")
    os.write(w, b"\rmmlu:  20%|##  | 57/285 [00:06<00:24]")
    deadline = time.time() + 5
    while b"57/285" not in out.getvalue() and time.time() < deadline:
        time.sleep(0.05)
    assert b"mmlu:  10%" in out.getvalue() and b"57/285" in out.getvalue()  # the newest state, line not ended
    os.write(w, b"\rmmlu: 100%|####| 285/285 [00:30<00:00]\ndone\n")
    os.close(w)
    reader.join(5)
    log.close()
    text = (tmp_path / "run.log").read_text()
    assert text == "mmlu: 100%|####| 285/285 [00:30<00:00]\ndone\n"  # the log: the final state of each line
