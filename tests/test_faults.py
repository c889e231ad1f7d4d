"""The fault matrix: nothing recorded is lost, nothing is left running, bad input is refused before a model loads.

Each test reproduces one fault a user met (a torn quoted field, a short write, a sweep killed while a run is in
flight, a results path that cannot be written, bad values) and checks the outcome the user needs."""
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from harness.record import store
from harness.record.store import ResultsWriteError, append_row, done_hashes, read_rows

from tests.conftest import ROOT, run_harness

Q = ["model=tiny-random", "bench.repeats=1", "bench.warmup=0", "eval=none", "quality=none"]


def _row(i: int, status: str = "ok") -> dict:
    return {"run_id": f"r{i}", "status": status, "config_hash": f"h{i}", "model": "m",
            "error": "ValueError: a, b" if status == "failed" else None}


# -- the results file ------------------------------------------------------------------------------------------------
def test_rows_after_a_torn_quoted_field_are_all_read(tmp_path):
    path = tmp_path / "r.csv"
    append_row(path, _row(1, "failed"))
    with open(path, "a") as f:
        f.write('r2,2026-11-28,failed,"ValueError: killed, mid')  # a writer killed inside a quoted field
    append_row(path, _row(3))
    append_row(path, _row(4, "failed"))
    assert [r["run_id"] for r in read_rows(path, strict=False)] == ["r1", "r3", "r4"]
    assert done_hashes(path) == {"h3"}  # the resume index sees the rows after the tear
    df = pd.read_csv(path)  # and so does pandas: the torn record is closed off, not left open
    assert {"r1", "r3", "r4"} <= set(df["run_id"])


def test_rows_after_a_tear_left_by_an_older_writer_are_read(tmp_path):
    """A file torn before this fix (an open quote, then rows appended after a bare newline) still reads whole."""
    path = tmp_path / "r.csv"
    append_row(path, _row(1))
    text = path.read_text()
    path.write_text(text + 'r2,2026,failed,"ValueError: a, b\n' + text.splitlines()[1].replace("r1", "r3")
                    .replace("h1", "h3") + "\n")
    assert [r["run_id"] for r in read_rows(path, strict=False)] == ["r1", "r3"]


def test_a_short_write_is_completed(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    real_write = os.write
    monkeypatch.setattr(store.os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))  # 7 bytes a call
    append_row(path, _row(1, "failed"))
    append_row(path, _row(2))
    assert [r["run_id"] for r in read_rows(path)] == ["r1", "r2"]


def test_a_failed_write_leaves_the_file_as_it_was_and_says_so(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    append_row(path, _row(1))
    before = path.read_bytes()
    real_write, calls = os.write, []

    def disk_full(fd, data):
        calls.append(1)
        if len(calls) == 1:
            return real_write(fd, bytes(data[:20]))  # part of the row, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "write", disk_full)
    with pytest.raises(ResultsWriteError, match="No space left"):
        append_row(path, _row(2))
    assert path.read_bytes() == before


# -- workers never outlive the sweep -----------------------------------------------------------------------------------
def _start_long_sweep(tmp_path, stderr=subprocess.DEVNULL) -> tuple[subprocess.Popen, psutil.Process]:
    args = [sys.executable, "-m", "harness", "-m", *Q, "bench.repeats=100000", "precision=fp32,bf16",
            f"results.path={tmp_path / 'r.csv'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    sweep = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        workers = [p for p in psutil.Process(sweep.pid).children(recursive=True)
                   if "harness.child" in " ".join(p.cmdline())]
        if workers:
            time.sleep(3)  # the worker is past its start-up and into the run
            return sweep, workers[0]
        time.sleep(0.2)
    sweep.kill()
    raise AssertionError("the sweep never started a worker")


def _gone(proc: psutil.Process, within_s: float = 20) -> bool:
    deadline = time.time() + within_s
    while time.time() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_killed_sweep_leaves_no_worker_running(tmp_path, how):
    sweep, worker = _start_long_sweep(tmp_path)
    if how == "SIGINT":
        os.killpg(sweep.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's foreground group: the sweep
    else:
        os.kill(sweep.pid, getattr(signal, how))  # the sweep's process alone
    sweep.wait(30)
    alive = not _gone(worker)
    if alive:
        worker.kill()
    assert not alive, f"worker {worker.pid} outlived a sweep killed by {how}"
    assert not list(tmp_path.glob("sweep/**/*.tmp*"))


# -- a results path that cannot be written -----------------------------------------------------------------------------
def test_results_path_a_directory_is_one_line_and_the_sweep_goes_on(tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    good = tmp_path / "r.csv"
    proc = run_harness("-m", *Q, f"results.path={folder},{good}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                       check=False)
    assert "results.path" in proc.stderr and "Traceback" not in proc.stderr
    assert [r["status"] for r in read_rows(good)] == ["ok"]  # the next job ran
    assert proc.returncode == 1


def test_a_row_the_results_file_refuses_is_kept_and_named(tmp_path, monkeypatch):
    """A read-only or full results file: the measured row goes to a one-row CSV in the cache, which the merge
    command copies into a results file later."""
    from hydra import compose, initialize_config_dir

    from harness import launch
    from harness.record.merge import merge

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))

    def read_only(path, row):
        if str(path).endswith("runs.csv"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return append_row(path, row)

    monkeypatch.setattr(launch, "append_row", read_only)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*Q, "runner.isolate=false", f"results.path={tmp_path / 'runs.csv'}"])
    row = launch.run_and_record(cfg, [])
    assert row["status"] == "ok" and "Read-only" in row["record_error"]
    kept = read_rows(row["unsaved_path"])
    assert kept[0]["run_id"] == row["run_id"] and float(kept[0]["decode_tok_s"]) > 0
    assert merge([row["unsaved_path"]], str(tmp_path / "recovered.csv")) == (1, 0, 0)


def test_a_log_that_cannot_be_written_keeps_the_measurement(tmp_path, caplog):
    """/dev/full fails every write with ENOSPC: the run still ends ok with its numbers, and says its log is lost."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from harness.launch import run_child

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=Q)
    job = {"config": OmegaConf.to_container(cfg, resolve=True), "predictions_dir": str(tmp_path), "run_id": "r"}
    status, row, error = run_child(job, Path("/dev/full"), 300, echo=False)
    assert status == "ok" and row["decode_tok_s"] > 0 and not error
    assert "could not be written" in caplog.text  # the harness.launch logger's warning


# -- bad input, refused before any load ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, says", [
    ("eval.per_subject=-1", "eval.per_subject=-1"),
    ("eval.per_subject=0", "eval.per_subject=0"),
    ("eval.limit=-1", "eval.limit=-1"),
    ("eval.shots=-1", "eval.shots=-1"),
    ("eval.shots=6", "from 0 to 5"),
    ("bench.batch_size=0", "bench.batch_size=0"),
    ("bench.prompt_tokens=0", "bench.prompt_tokens=0"),
    ("bench.repeats=abc", "bench.repeats='abc'"),
    ("bench.new_tokens=2.5", "bench.new_tokens=2.5"),
    ("model.name=../../x", "model.name='../../x'"),
    ("device=gpu", "auto, cpu or cuda"),
])
def test_bad_values_are_refused_in_one_line_before_loading(tmp_path, bad, says):
    out = tmp_path / "r.csv"
    task = ["eval=mmlu_quick"] if bad.startswith("eval.") else []
    proc = run_harness(*Q, *task, bad, f"results.path={out}", check=False)
    assert proc.returncode == 2
    assert says in proc.stderr and "is not allowed" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists() and not (tmp_path / "r.logs").exists()  # nothing ran


def test_model_sources_that_cannot_work_fail_fast(tmp_path):
    out = f"results.path={tmp_path / 'r.csv'}"
    proc = run_harness("model=hf", "model.id=/nonexistent", out, check=False)
    assert proc.returncode == 2 and "no such local folder" in proc.stderr
    t0 = time.time()
    proc = run_harness("model=hf", "model.id=someorg/some-model", out, check=False)  # HF_HUB_OFFLINE=1 (conftest)
    assert proc.returncode == 2 and "not in the local hub cache and HF_HUB_OFFLINE is set" in proc.stderr
    assert "model.id=/path" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert time.time() - t0 < 20


# -- caches, random-architecture load-time schemes, named tasks, quiet runs -------------------------------------------
def test_a_truncated_cache_file_is_not_trusted(tmp_path):
    from harness.paths import cached_file_ok, record_size

    f = tmp_path / "model.gguf"
    f.write_bytes(b"GGUF" + bytes(4096))
    assert not cached_file_ok(f)  # no record: an older cache, rebuilt once
    record_size(f)
    assert cached_file_ok(f)
    with open(f, "r+b") as h:
        h.truncate(1000)
    assert not cached_file_ok(f)


@pytest.mark.parametrize("precision", ["bnb-int8", "bnb-nf4"])
def test_load_time_schemes_quantise_architecture_only_models(tmp_path, precision):
    out = tmp_path / "r.csv"
    run_harness(*Q, f"precision={precision}", f"results.path={out}")
    (row,) = read_rows(out)
    assert row["status"] == "ok", row["error"]
    assert float(row["quantized_fraction"]) > 0.5


def test_eval_selects_a_task_by_name_and_lists_still_work(tmp_path):
    out = tmp_path / "r.csv"
    run_harness(*Q, "eval=arc_easy", "eval.limit=3", f"results.path={out}")
    run_harness(*Q, "eval=none", "eval.tasks=[piqa,arc_easy]", "eval.limit=2", f"results.path={out}")
    first, second = read_rows(out)
    assert first["arc_easy_n"] == "3" and first["arc_easy_shots"] == "0" and first["mmlu_n"] == ""
    assert second["piqa_n"] == second["arc_easy_n"] == "2"


def test_quality_is_on_by_default():
    proc = run_harness("--cfg", "job")
    assert "quality:\n  enabled: true" in proc.stdout


def test_known_library_noise_stays_in_the_log_and_the_run_ends_with_a_summary(tmp_path):
    out = tmp_path / "r.csv"
    proc = run_harness(*Q, "precision=torchao-int8wo", f"results.path={out}")
    (row,) = read_rows(out)
    log = open(row["log_path"]).read()
    assert "Failed to load" not in proc.stdout + proc.stderr and "Enum subclass" not in proc.stdout + proc.stderr
    noise = [ln for ln in log.splitlines() if ln.strip() and __import__("harness.quiet").quiet.is_noise(ln.encode())]
    terminal = (proc.stdout + proc.stderr).splitlines()
    assert not [ln for ln in noise if ln in terminal]  # whatever noise the libraries printed stayed in the log
    for label in ("speed", "latency", "memory"):
        assert f"  {label} " in proc.stdout


def test_submitit_launcher_runs_a_sweep_through_its_own_machinery(tmp_path):
    """Hydra's submitit launcher, locally (what a SLURM user runs, without the cluster)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="launchers extra not installed")
    out = tmp_path / "r.csv"
    run_harness("-m", *Q, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                "precision=fp32,bf16", f"results.path={out}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert sorted(r["precision"] for r in read_rows(out)) == ["bf16", "fp32"]
    assert list((tmp_path / "sweep").rglob("*_submitted.pkl"))  # submitit's own job files: it really ran them


# -- the surfaces added since: names, side tables, analysis inputs, interrupts (issue 26) -----------------------------
@pytest.mark.parametrize("bad, says", [
    ("eval.tasks=[../../../../tmp/x/evil]", "unknown evaluation task '../../../../tmp/x/evil'"),
    ("bench.concurrency=100000", "100000 distinct prompts of bench.prompt_tokens=16 need"),
    ("capability.target_ci95=0", "has no effect: capability is off"),
    ("results.path=/dev/full", "is not a regular file"),
])
def test_bad_names_and_values_are_refused_before_anything_is_written(tmp_path, bad, says):
    out = tmp_path / "r.csv"
    args = [*Q, "bench.prompt_tokens=16", bad] + ([] if bad.startswith("results.") else [f"results.path={out}"])
    proc = run_harness(*args, check=False)
    assert proc.returncode == 2 and says in proc.stderr, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists() and not list(Path("/dev").glob("full.*")) and not Path("/tmp/x").exists()


def test_task_templates_render_in_a_sandbox():
    from jinja2.exceptions import SecurityError

    from harness.evaluate.tasks import _compiled

    with pytest.raises(SecurityError):
        _compiled("{{ cycler.__init__.__globals__.os.system('touch /tmp/pwned-by-template') }}").render()
    assert not Path("/tmp/pwned-by-template").exists()


@pytest.mark.parametrize("args, says", [
    (["--slo", "../hardware/h100"], "unknown SLO profile '../hardware/h100' (a plain name"),
    (["--hardware", "../slo/server"], "unknown hardware profile '../slo/server'"),
    (["--price", "-1"], "--price must be a finite number"), (["--price", "nan"], "--price must be a finite number"),
    (["--margin", "nan"], "--margin must be"), (["--margin", "-5"], "--margin must be"),
])
def test_analysis_refuses_out_of_range_input_in_one_line(tmp_path, args, says):
    from tests.analysis.conftest import make_csv, row

    csv = make_csv(tmp_path / "s.csv", [row("m", "fp32", 20, 400, 0.5, 0.0, 4e8)])
    proc = subprocess.run([sys.executable, "-m", "harness.analysis", str(csv), "--out", str(tmp_path / "o"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _curve(c: int) -> dict:
    return {"concurrency": c, "decode_tok_s": 10.0 * c, "prefill_tok_s": 100.0, "ttft_ms_p99": 50.0,
            "tpot_ms_p99": 20.0, "ttft_n": 200, "tpot_n": 6000}


@pytest.mark.parametrize("side, says", [
    ("folder", "the load-curve side table is not a file"), ("empty", "side table is empty"),
    ("foreign", "not a load-curve side table of this harness"),
    ("text", "row 2 (run 'm-fp32'), column 'decode_tok_s': 'fast' is not a number"),
])
def test_a_bad_side_table_is_named_with_its_column_and_row(tmp_path, side, says):
    from harness.analysis.__main__ import main
    from tests.analysis.conftest import make_csv, row

    csv = make_csv(tmp_path / "s.csv", [row("m", "fp32", 20, 400, 0.5, 0.0, 4e8)])
    table = tmp_path / "s.curves.csv"
    if side == "folder":
        table.mkdir()
    elif side == "empty":
        table.write_text("")
    elif side == "foreign":
        table.write_text("id,speed\n1,2\n")
    else:
        table.write_text("run_id,concurrency,decode_tok_s\nm-fp32,1,fast\n")
    assert main([str(csv), "--out", str(tmp_path / "o")]) == 2


def test_a_missing_curve_is_said_and_never_priced_as_batch_1(tmp_path):
    from harness.analysis.report import analyse
    from tests.analysis.conftest import make_csv, row

    r = row("m", "fp32", 20, 400, 0.5, 0.0, 4e8)
    r["concurrency_levels"] = "1,4,16"
    csv = make_csv(tmp_path / "s.csv", [r])  # its side table is gone
    a = analyse(csv, ["this-machine"], slos=["server"])
    (p,) = a.priced
    assert p.rows["usd_per_mtok_blended"].isna().all() and "missing from the side table" in p.rows["slo_note"].iloc[0]


def test_curve_levels_that_cannot_be_written_are_kept_and_merge_brings_them_back(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "r.csv"
    (tmp_path / "r.curves.csv").mkdir()  # the side table's path is taken by a folder
    proc = run_harness(*Q, "bench=serving", "bench.concurrency=[1,2]", "bench.new_tokens=4", "bench.prompt_tokens=16",
                       "bench.curve_repeats=1", f"results.path={out}")
    assert "levels are kept in" in proc.stderr and "python -m harness.record.merge" in proc.stderr
    (row,) = read_rows(out)
    kept = tmp_path / "cache" / "unrecorded" / f"{row['run_id']}.csv"
    assert kept.exists() and (tmp_path / "cache" / "unrecorded" / f"{row['run_id']}.curves.csv").exists()
    (tmp_path / "r.curves.csv").rmdir()
    merged = subprocess.run([sys.executable, "-m", "harness.record.merge", str(kept), "-o", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0 and "0 rows added, 1 already present, 2 load-curve levels added" in merged.stdout
    from harness.record.curves import read_curves

    assert sorted(read_curves(out)["concurrency"]) == [1, 2]


def test_merge_carries_side_tables_and_refuses_missing_or_foreign_files(tmp_path):
    from harness.record.curves import append_curve, read_curves
    from harness.record.merge import main

    a = tmp_path / "a.csv"
    append_row(a, _row(1))
    append_curve(a, "r1", [_curve(1), _curve(4)])
    out = tmp_path / "all.csv"
    assert main([str(a), "-o", str(out)]) == 0
    assert sorted(read_curves(out)["concurrency"]) == [1, 4]
    assert main([str(a), "-o", str(out)]) == 0 and len(read_curves(out)) == 2  # nothing twice
    assert main([str(tmp_path / "nope.csv"), "-o", str(out)]) == 2
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("name,value\nx,1\n")
    assert main([str(foreign), "-o", str(out)]) == 2


def test_a_failed_run_prints_one_reason_and_keeps_its_traceback_in_the_log(tmp_path):
    out, broken = tmp_path / "r.csv", tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    proc = run_harness("model=hf", f"model.id={broken}", "bench=quick", "eval=none", "quality=none",
                       f"results.path={out}", check=False)
    (row,) = read_rows(out)
    assert row["status"] == "failed" and proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr and row["log_path"] in proc.stdout
    assert "Traceback" in Path(row["log_path"]).read_text()


def test_sigterm_ends_a_sweep_in_one_line_with_the_command_that_resumes(tmp_path):
    sweep, worker = _start_long_sweep(tmp_path, stderr=subprocess.PIPE)
    os.kill(sweep.pid, signal.SIGTERM)
    err = sweep.communicate(timeout=30)[1].decode()
    assert _gone(worker)
    assert "stopped by SIGTERM" in err and "Resume (recorded runs are skipped): python -m harness" in err, err[-2000:]
    assert "Traceback" not in err
