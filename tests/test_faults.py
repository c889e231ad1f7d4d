"""The fault matrix: nothing recorded is lost, nothing is left running, bad input is refused before a model loads.

Each test reproduces one fault a user met (a torn quoted field, a short write, a sweep killed while a run is in
flight, a results path that cannot be written, bad values) and checks the outcome the user needs."""
import errno
import json
import os
import re
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


STOP_DURING_APPEND = """
import os, signal, sys
from harness.launch import Terminated, _raise_terminated
from harness.record import store
from harness.record.store import append_row, read_rows
from tests.test_faults import _row

path, how = sys.argv[1], sys.argv[2]
append_row(path, _row(1))
real_write, calls = os.write, []

def stopped_half_way(fd, data):
    calls.append(1)
    n = real_write(fd, bytes(data[:25]))
    if len(calls) == 1:
        os.kill(os.getpid(), getattr(signal, how))  # the stop lands after the first part of the row
    return n

signal.signal(signal.SIGTERM, _raise_terminated)  # the sweep's own handler
store.os.write = stopped_half_way
try:
    append_row(path, _row(2))
    print("no stop")
except (KeyboardInterrupt, Terminated) as exc:
    store.os.write = real_write
    print(type(exc).__name__, len(calls), [r["run_id"] for r in read_rows(path)])
"""


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_a_stop_during_the_csv_append_waits_for_the_whole_row(tmp_path, how):
    """Ctrl-C or SIGTERM arriving between two partial writes of one row: the row is finished first, then the stop
    acts (a KeyboardInterrupt or the harness's Terminated), and the file reads strictly with every row whole. In a
    process of its own, as the sweep is (a signal sent to the whole test process once met the libraries it had
    loaded)."""
    proc = subprocess.run([sys.executable, "-c", STOP_DURING_APPEND, str(tmp_path / "r.csv"), how], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    stopped, writes, ids = proc.stdout.split(maxsplit=2)
    assert stopped == ("KeyboardInterrupt" if how == "SIGINT" else "Terminated")
    assert int(writes) > 1  # the row took several writes, and the stop came after the first
    assert ids.strip() == "['r1', 'r2']"


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
    from harness import launch
    from harness.api import compose
    from harness.record.merge import merge

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))

    def read_only(path, row):
        if str(path).endswith("runs.csv"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return append_row(path, row)

    monkeypatch.setattr(launch, "append_row", read_only)
    cfg = compose([*Q, "runner.isolate=false", f"results.path={tmp_path / 'runs.csv'}"])  # the schemes' group too
    row = launch.run_and_record(cfg, [])
    assert row["status"] == "ok" and "Read-only" in row["record_error"]
    kept = read_rows(row["unsaved_path"])
    assert kept[0]["run_id"] == row["run_id"] and float(kept[0]["decode_tok_s"]) > 0
    assert merge([row["unsaved_path"]], str(tmp_path / "recovered.csv")) == (1, 0, 0)


def test_a_log_that_cannot_be_written_keeps_the_measurement(tmp_path, caplog):
    """/dev/full fails every write with ENOSPC: the run still ends ok with its numbers, and says its log is lost."""
    from omegaconf import OmegaConf

    from harness.api import compose
    from harness.launch import run_child

    cfg = compose(Q)
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
    from harness.core.cache_files import cached_file_ok, record_size

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
    noise = [ln for ln in log.splitlines() if ln.strip() and __import__("harness.core.quiet").core.quiet.is_noise(ln.encode())]
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
    assert "lines of" in proc.stderr and "are kept in" in proc.stderr and "python -m harness.record.merge" in proc.stderr
    (row,) = read_rows(out)
    kept = tmp_path / "cache" / "unrecorded" / f"{row['run_id']}.csv"
    assert kept.exists() and (tmp_path / "cache" / "unrecorded" / f"{row['run_id']}.curves.csv").exists()
    (tmp_path / "r.curves.csv").rmdir()
    merged = subprocess.run([sys.executable, "-m", "harness.record.merge", str(kept), "-o", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0 and "0 rows added, 1 already present, 2 side-table lines added" in merged.stdout
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


# -- round 3: changed checkpoints, concurrent sweeps, cache files, bundles, odd input, injection ----------------------
def test_a_status_typed_in_capitals_is_read_and_a_bad_status_is_named(tmp_path):
    from harness.record.store import ResultsFileError, append_row, read_rows

    csv = tmp_path / "r.csv"
    append_row(csv, {"run_id": "a", "status": "ok", "model": "m", "precision": "fp32", "config_hash": "h1"})
    append_row(csv, {"run_id": "b", "status": "ok", "model": "m", "precision": "bf16", "config_hash": "h2"})
    text = csv.read_text().replace(",ok,", ",OK,", 1)
    csv.write_text(text)
    assert [r["status"] for r in read_rows(csv)] == ["ok", "ok"]
    csv.write_text(text.replace(",OK,", ",great,", 1))
    with pytest.raises(ResultsFileError, match="line 2 has status 'great', not one of ok, failed"):
        read_rows(csv)


@pytest.mark.parametrize("content", ["{", "[1, 2]", '{"cpu|x": -5000}', '{"cpu|x": 0}', ""])
def test_a_bad_bandwidth_cache_is_named_and_measured_again(tmp_path, monkeypatch, caplog, content):
    from harness.measure import roofline

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    (tmp_path / "bandwidth.json").write_text(content)
    assert roofline._cached("cpu|x", lambda: 12.5) == 12.5
    assert "bandwidth.json" in caplog.text or content == ""
    assert json.loads((tmp_path / "bandwidth.json").read_text()) == {"cpu|x": 12.5}
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_torn_reference_file_is_removed_and_counted_missing(tmp_path, monkeypatch, caplog):
    from omegaconf import OmegaConf

    from harness.evaluate import reference_cache as cache

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    cfg = OmegaConf.create({"model": {"name": "m", "source": "random"}, "quality": {"reference": "fp32", "topk": 4,
                                                                                     "context": 8, "max_tokens": 8},
                            "eval": {"tasks": []}})
    path = cache.logits_path(cfg, [[1, 2, 3]])
    path.write_bytes(b"PK\x03\x04 torn")
    assert cache.reference_missing(cfg, [[1, 2, 3]]) and not path.exists()
    assert "is not readable" in caplog.text and path.name in caplog.text


def test_an_empty_xdg_cache_home_is_unset(tmp_path, monkeypatch):
    from harness.core.paths import cache_dir

    monkeypatch.delenv("HARNESS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert cache_dir() == tmp_path / ".cache" / "quant-harness"
    assert not (tmp_path / "quant-harness").exists()


def test_the_bundle_holds_only_the_harness_files_of_its_csv(tmp_path):
    import tarfile

    from harness.record.files import write_bundle
    from harness.record.store import append_row

    csv = tmp_path / "res" / "r.csv"
    append_row(csv, {"run_id": "a", "status": "ok", "model": "m", "precision": "fp32", "config_hash": "h"})
    for name in ("r.configs/h.yaml", "r.logs/a.log.gz", "r.notes/environment.txt", "key.pem", "big.bin",
                 "other.csv", "outputs/2026/x.yaml", "r.claims/h.lock"):
        (tmp_path / "res" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "res" / name).write_text("x")
    with tarfile.open(write_bundle(csv, tmp_path / "b.tar.gz")) as tar:
        names = sorted(tar.getnames())
    assert names == ["res/r.configs/h.yaml", "res/r.csv", "res/r.logs/a.log.gz", "res/r.notes/environment.txt"]


def test_two_sweeps_on_one_csv_measure_each_configuration_once(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "harness", "-m", "model=tiny-random", "precision=fp32,bf16", "bench=quick",
           "eval=none", "quality=none", f"results.path={tmp_path / 'r.csv'}"]
    jobs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    time.sleep(1)
    jobs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [j.communicate(timeout=600)[0] for j in jobs]
    assert all(j.returncode == 0 for j in jobs), outs
    from harness.record.store import read_rows

    rows = read_rows(tmp_path / "r.csv")
    assert sorted(r["precision"] for r in rows) == ["bf16", "fp32"]  # one ok row each, not two
    said = "".join(outs)
    assert said.count("already recorded ok") + said.count("another sweep is measuring it") >= 2


@pytest.mark.parametrize("args, says", [
    (["engine.name=tensorrt"], "engine.name='tensorrt' is not allowed: expected auto or one of"),
    (["bench.new_tokens=1e23"], "bench.new_tokens=1e+23 is not allowed: expected an integer from 2 to"),
    (["bench.new_tokens=5000"], "more than the model's 2048 positions"),
    (["log_level=TRACE"], "log_level='TRACE' is not allowed"),
    (["model=nope"], "model=nope is not allowed: expected one of"),
    (["-m", "precision=fp32,nope"], "precision=nope is not allowed: expected one of"),
    (["model=["], "the override 'model=[' is malformed"),
])
def test_odd_input_is_one_line_exit_2_and_nothing_written(tmp_path, args, says):
    import os
    import subprocess
    import sys

    work = tmp_path / "cwd"
    work.mkdir()
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "harness", "model=tiny-random", *args,
                           f"results.path={tmp_path / 'r' / 'r.csv'}"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-1500:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists() and list(work.iterdir()) == []  # no row, no Hydra outputs/ folder


def test_a_run_writes_nothing_into_the_working_directory(tmp_path):
    import os
    import subprocess
    import sys

    work = tmp_path / "cwd"
    work.mkdir()
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "harness", "model=tiny-random", "bench=quick", "eval=none",
                           "quality=none", f"results.path={tmp_path / 'r' / 'r.csv'}"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("kwargs, says", [({"model": 123}, "model=123 is not allowed"),
                                          ({"precision": None}, "precision=None is not allowed"),
                                          ({"model": ["a", "b"]}, "(a list sweeps: api.sweep)"),
                                          ({"bench": "nope"}, "nope")])
def test_the_api_refuses_odd_arguments_in_one_line(kwargs, says):
    from harness import api

    with pytest.raises(ValueError, match=re.escape(says)) as err:
        api.run(**kwargs)
    assert "\n" not in str(err.value)


def test_an_empty_sweep_axis_is_refused():
    from harness import api

    with pytest.raises(ValueError, match=re.escape("model=[] is not allowed")):
        api.sweep(model=[])


HOSTILE = '<img src=x onerror=alert(1)><script>alert(2)</script>-->]]><!--BODY--></script>`|'


def test_hostile_names_and_profile_fields_stay_text_in_the_markdown_report(tmp_path, monkeypatch):
    from harness.analysis.report import write_report
    from tests.analysis.conftest import make_csv, row

    r = row(HOSTILE.replace("|", ""), "fp32", 20, 400, 0.5, 0.0, 4e8)
    csv = make_csv(tmp_path / "we<b>ird`.csv", [r])
    text = write_report(csv, tmp_path / "out", ["this-machine"]).read_text()
    assert "<script" not in text and "<img" not in text and "&lt;img src=x" in text  # no tag can open
    assert "](we%3Cb%3Eird%60" in text  # file names percent-encoded in links and images


def test_a_placeholder_or_script_end_in_a_name_cannot_alter_the_html_page(tmp_path):
    from harness.analysis.report import write_report
    from tests.analysis.conftest import make_csv, row

    csv = make_csv(tmp_path / "h.csv", [row(HOSTILE.replace("|", ""), "fp32", 20, 400, 0.5, 0.0, 4e8),
                                        row("m2", "fp32", 10, 200, 0.6, 0.0, 8e8)])
    write_report(csv, tmp_path, ["this-machine"])
    page = (tmp_path / "h.html").read_text()
    scripts = page.split("<script")
    data = next(s for s in scripts if '"figs"' in s)
    assert "<!--BODY-->" not in page and page.count("</script>") == page.count("<script")
    assert HOSTILE.split("<script>")[0] not in data  # its < is \\u003c inside the data


@pytest.mark.parametrize("entry", ["analysis", "merge"])
def test_binary_missing_and_unwritable_inputs_and_outputs_are_one_line(tmp_path, entry):
    import subprocess
    import sys

    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 64)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    from tests.analysis.conftest import make_csv, row

    good = make_csv(tmp_path / "g.csv", [row("m", "fp32", 20, 400, 0.5, 0.0, 4e8)])
    cases = {"analysis": [[str(binary)], [str(tmp_path / "none.csv")], [str(good), "--out", str(good)]],
             "merge": [[str(binary), "-o", str(tmp_path / "o.csv")], [str(tmp_path / "none.csv"), "-o", "x.csv"]]}
    module = {"analysis": "harness.analysis", "merge": "harness.record.merge"}[entry]
    for args in cases[entry]:
        proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr[-800:])
        assert "Traceback" not in proc.stderr


def _bound_by_file_modes() -> dict:
    """Popen arguments under which file modes bind the command. Root writes through a 0o500 folder
    (CAP_DAC_OVERRIDE), and CI containers and this machine run as root: there the command runs without
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, dropped from its bounding set before exec (what `setpriv
    --bounding-set -dac_override,-dac_read_search` does), so it meets a read-only folder as a user would."""
    if os.geteuid() != 0:
        return {}
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def drop():
        for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")
    return {"preexec_fn": drop}


def _read_only(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o500)
    return folder


READ_ONLY_CASES = ["results folder", "results file", "cache", "working directory", "analysis --out", "merge -o",
                   "reproduce --out"]


@pytest.mark.parametrize("case", READ_ONLY_CASES)
def test_a_read_only_place_is_met_as_a_user_meets_it(tmp_path, case):
    """Each entry point against a folder or file it may not write, with file modes binding (as root too): one line
    naming the place, nothing written into it, and a measured row never lost (kept under the cache when the results
    file refuses it); a read-only working directory does not matter at all."""
    from tests.analysis.conftest import make_csv, row

    kwargs = _bound_by_file_modes()
    ro = _read_only(tmp_path / "ro")
    try:
        probe = subprocess.run([sys.executable, "-c", f"open({str(ro / 'x')!r}, 'w')"], capture_output=True,
                               **kwargs)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"file modes cannot be made to bind for a root test process here: {exc}")
    if probe.returncode == 0:
        pytest.skip("a 0o500 folder is writable here even without CAP_DAC_OVERRIDE (file modes do not bind)")
    cache = tmp_path / "cache"
    env = {**os.environ, "HARNESS_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-m", "harness", *Q[:1], "bench=quick", "eval=none", "quality=none"]
    good = make_csv(tmp_path / "g.csv", [row("m", "fp32", 20, 400, 0.5, 0.0, 4e8)])
    cwd, want_rc = ROOT, 2
    if case == "results folder":
        args, want_rc, says = [*run, f"results.path={ro / 'r.csv'}"], 1, "its folder cannot be written"
    elif case == "results file":
        ro.chmod(0o700)
        results = ro / "r.csv"
        results.write_bytes(good.read_bytes())
        results.chmod(0o444)
        args, want_rc, says = [*run, f"results.path={results}"], 1, "it is kept in"
    elif case == "cache":
        env["HARNESS_CACHE"] = str(ro / "cache")
        args, says = [*run, f"results.path={tmp_path / 'r.csv'}"], "set HARNESS_CACHE to a folder you can write"
    elif case == "working directory":
        args, cwd, want_rc, says = [*run, f"results.path={tmp_path / 'r.csv'}"], ro, 0, None
    elif case == "analysis --out":
        args, says = [sys.executable, "-m", "harness.analysis", str(good), "--out", str(ro / "rep")], str(ro)
    elif case == "merge -o":
        args, says = [sys.executable, "-m", "harness.record.merge", str(good), "-o", str(ro / "o.csv")], str(ro)
    else:
        args, says = [sys.executable, "-m", "harness.reproduce", "run", "ai-index-cost", "--out", str(ro / "rep")], \
            "cannot be written"
    before = sorted(p.name for p in ro.iterdir())
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kwargs)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == want_rc and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    if says is None:
        assert [r["status"] for r in read_rows(tmp_path / "r.csv")] == ["ok"]
    else:
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], proc.stderr[-1500:]
    if case == "results file":  # its folder is writable (the run's log is there); the file is as it was
        assert results.read_bytes() == good.read_bytes()
        kept = list((cache / "unrecorded").glob("*.csv"))
        assert len(kept) == 1 and read_rows(kept[0])[0]["status"] == "ok"  # the measured row is not lost
    else:
        assert sorted(p.name for p in ro.iterdir()) == before  # nothing written into the read-only place
    ro.chmod(0o700)  # for pytest's clean-up


@pytest.mark.parametrize("name, text, says", [
    ("broken", "repeats: [1,\n  warmup: 2\n", "broken.yaml, line 3, column 1 is not valid YAML: expected ','"),
    ("selfref", "defaults:\n  - selfref\nrepeats: 1\n", "a defaults list includes itself"),
])
def test_a_config_dir_that_does_not_compose_is_one_line_exit_2(tmp_path, name, text, says):
    import os
    import subprocess
    import sys

    (tmp_path / "cd" / "bench").mkdir(parents=True)
    (tmp_path / "cd" / "bench" / f"{name}.yaml").write_text(text)
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run([sys.executable, "-m", "harness", f"--config-dir={tmp_path / 'cd'}", "model=tiny-random",
                           f"bench={name}", f"results.path={tmp_path / 'r' / 'r.csv'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and says in lines[0], proc.stderr[-1500:]
    assert not (tmp_path / "r").exists()


def test_a_full_disk_under_the_cache_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    """Every cache writer goes through cache_write: the disk's error (an OSError, or safetensors' own error carrying
    the OS message) becomes one line naming the file under the cache and the free space; other errors pass as they
    are; the run's row says it and no half-written folder is left."""
    from safetensors import SafetensorError
    from transformers import PreTrainedModel

    from harness import launch
    from harness.api import compose
    from harness.core.cache_files import cache_write
    from harness.core.errors import CacheWriteError

    cache = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE", str(cache))
    with pytest.raises(CacheWriteError, match=r"^the thing could not be written to <cache>/x/f\.pt: No space left on "
                                              r"device \([\d,]+ MiB free there\); free space there or point "
                                              r"HARNESS_CACHE"):
        with cache_write(cache / "x" / "f.pt", "the thing"):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(KeyError):  # not the disk's: unchanged
        with cache_write(cache / "f", "the thing"):
            raise KeyError("a bug")

    def disk_full(self, folder, *a, **k):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.safetensors").write_bytes(b"half")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    from harness.models.random_arch import build_config, materialised

    with monkeypatch.context() as m:
        m.setattr(PreTrainedModel, "save_pretrained", disk_full)
        with pytest.raises(CacheWriteError, match=r"^the architecture-only model's random weights could not be "
                                                  r"written to <cache>/random-models/\S+: No space left on device"):
            materialised(build_config(compose(["model=tiny-random"]).model), 0)
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]  # the half-written folder removed

    real_write_text = Path.write_text

    def cache_full(self, *a, **k):
        if str(self).startswith(str(cache)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_text(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", cache_full)
    cfg = compose([*Q, "runner.isolate=false", f"results.path={tmp_path / 'runs.csv'}"])
    row = launch.run_and_record(cfg, [])
    assert row["status"] == "failed"
    assert re.search(r"CacheWriteError: .* could not be written to <cache>/\S+: No space left on device", row["error"])
    assert str(tmp_path) not in row["error"]  # no machine path in the row
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]
    assert [r["status"] for r in read_rows(tmp_path / "runs.csv")] == ["failed"]


# -- round 3, widened: every cache file torn, emptied or wrong-typed; every entry point's unwritable output ----------
CORRUPT = {"torn": lambda b: b[: len(b) // 2], "empty": lambda b: b"", "wrong-typed": lambda b: b"[1, 2, 3]",
           "binary": lambda b: b"\xff\xfe\x00" * 40}


def _tiny_gguf(path: Path) -> Path:
    import numpy as np
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "llama")
    w.add_tensor("blk.0.attn_q.weight", np.ones((4, 8), dtype=np.float32))
    w.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("how", list(CORRUPT))
def test_a_bad_gguf_tensor_inventory_is_named_and_read_again(tmp_path, caplog, how):
    from harness.precision.gguf import tensor_inventory

    path = _tiny_gguf(tmp_path / "t.gguf")
    first = tensor_inventory(path)
    cached = path.with_name(path.name + ".tensors.json")
    cached.write_bytes(CORRUPT[how](cached.read_bytes()))
    assert tensor_inventory(path) == first == [("blk.0.attn_q.weight", 32, 128, "F32"),
                                               ("token_embd.weight", 128, 512, "F32")]
    assert "t.gguf.tensors.json" in caplog.text and "rebuilding it" in caplog.text
    assert json.loads(cached.read_text())["tensors"]  # written again, whole


@pytest.mark.parametrize("part, how", [("config.json", h) for h in CORRUPT] + [("model.safetensors", "torn"),
                                                                               ("model.safetensors.size", "binary")])
def test_a_bad_cached_checkpoint_folder_is_named_and_built_again(tmp_path, monkeypatch, caplog, part, how):
    """The architecture-only model's folder (the dequantised GGUF folder shares the check): a torn config, torn
    weights or an unreadable size record is never loaded; the folder is named and built again, and it loads."""
    from transformers import AutoModelForCausalLM

    from harness.api import compose
    from harness.models.random_arch import build_config, materialised

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    fresh = lambda: materialised(build_config(compose(["model=tiny-random"]).model), 0)  # noqa: E731 - one per run
    folder = fresh()
    target = folder / part
    target.write_bytes(CORRUPT[how](target.read_bytes()))
    again = fresh()
    assert again == folder and "building it again" in caplog.text and folder.name in caplog.text
    AutoModelForCausalLM.from_pretrained(str(again))  # whole again
    caplog.clear()
    assert fresh() == folder and "building it again" not in caplog.text  # and trusted from then on


@pytest.mark.parametrize("content", [b"repeats: [1,\n", b"\xff\xfe\x00\x01", b"- just\n- a list\n"])
def test_a_malformed_claim_file_is_named(tmp_path, content):
    from harness.reproduce.registry import ClaimError, load_claims

    (tmp_path / "01-bad.yaml").write_bytes(content)
    with pytest.raises(ClaimError, match=r"^01-bad\.yaml"):
        load_claims(tmp_path)


@pytest.mark.parametrize("out", ["a-file", "a-file/below"])
def test_reproduce_refuses_an_output_folder_it_cannot_write_before_running_anything(tmp_path, out):
    (tmp_path / "a-file").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "harness.reproduce", "run", "ai-index-cost", "--out",
                           str(tmp_path / out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: --out "), proc.stderr[-800:]
    assert "[reproduce]" not in proc.stdout  # no claim ran


def _descendants(proc: subprocess.Popen) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


# what each phase's sweep measures: the reference build needs a quality stage against a reference made in a process
# of its own (bf16 first: an fp32 run is its own reference); the eval phase, every shipped ARC-Easy question
PHASE_ARGS = {"start-up": ["eval=none", "quality=default", "quality.max_tokens=60000"],
              "reference build": ["eval=none", "quality=default", "quality.max_tokens=60000"],
              "eval": ["eval=arc_easy", "quality=none"]}


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("phase", list(PHASE_ARGS))
def test_a_signal_in_each_phase_leaves_no_process_no_temporary_and_no_torn_row(tmp_path, phase, how):
    """Start-up (Hydra composing, before any worker), the reference build (a grandchild process writing the cache)
    and the eval stage (the worker scoring questions): Ctrl-C and SIGTERM end in one line, SIGKILL in silence; in
    every case every process the sweep started is gone, nothing half-written is left under the cache or the results
    folder, and the CSV reads strictly."""
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "harness", "-m", "model=tiny-random", "precision=bf16,fp32", "bench.repeats=1",
            "bench.warmup=0", "capability=none", *PHASE_ARGS[phase], f"results.path={tmp_path / 'r' / 'r.csv'}"]
    with open(tmp_path / "stdout.txt", "wb") as out:  # the terminal's view: a progress bar arrives as it is drawn
        sweep = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _signal_in_phase(sweep, phase, how, tmp_path)
    finally:  # a failed assertion leaves nothing running either
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait(30)


def _signal_in_phase(sweep: subprocess.Popen, phase: str, how: str, tmp_path: Path) -> None:
    seen: set[int] = set()
    deadline = time.time() + (1.0 if phase == "start-up" else 180)
    while time.time() < deadline:
        seen |= _descendants(sweep)
        if phase == "reference build" and any(
                "harness.evaluate.reference_process" in " ".join(psutil.Process(p).cmdline())
                for p in _descendants(sweep) if psutil.pid_exists(p)):
            time.sleep(1.5)  # into the build
            break
        if phase == "eval" and "arc_easy:" in (tmp_path / "stdout.txt").read_text(errors="replace"):
            time.sleep(1.0)  # scoring questions: the task's progress bar is on the terminal
            break
        time.sleep(0.1)
    else:
        assert phase == "start-up", f"the {phase} never started"
    seen |= _descendants(sweep)
    if how == "SIGINT":
        os.killpg(sweep.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's foreground group
    else:
        os.kill(sweep.pid, getattr(signal, how))
    err = sweep.communicate(timeout=60)[1].decode()
    left = [p for p in seen if psutil.pid_exists(p) and not _gone(psutil.Process(p), 20)]
    for p in left:
        psutil.Process(p).kill()
    assert not left, f"{len(left)} processes outlived a sweep sent {how} during {phase}"
    assert sweep.returncode != 0
    if how != "SIGKILL":
        lines = err.strip().splitlines()
        assert "Traceback" not in err and lines and "stopped by" in lines[-1] and how in lines[-1], err[-1500:]
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name], "a temporary was left"
    if (tmp_path / "r" / "r.csv").exists():
        read_rows(tmp_path / "r" / "r.csv")  # strict: no torn row


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_stopped_reproduce_run_leaves_no_sweep_behind(tmp_path, how):
    """`python -m harness.reproduce run` runs its claims' sweeps as processes of their own: stopped or killed, it
    took none of them with it, and the orphaned sweep went on measuring (its next run started when its worker was
    killed). Now each sweep ends when the reproduce process does, however it ends."""
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "harness.reproduce", "run", "model-card-tasks", "--models",
                             "tiny-random", "--out", str(tmp_path / "out")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        seen: set[int] = set()
        deadline = time.time() + 180
        while time.time() < deadline:
            seen |= _descendants(proc)
            if any("harness.child" in " ".join(psutil.Process(p).cmdline()) for p in seen if psutil.pid_exists(p)):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the claim's sweep never started a worker")
        os.kill(proc.pid, getattr(signal, how))
        proc.wait(60)
        left = [p for p in seen if psutil.pid_exists(p) and not _gone(psutil.Process(p), 30)]
        for p in left:
            psutil.Process(p).kill()
        assert not left, f"{len(left)} processes outlived a reproduce run sent {how}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_a_stop_with_nobody_reading_stderr_still_ends_the_sweep(tmp_path, how):
    """A closed terminal or a pipe whose reader died: the stop's one line cannot be written. That failed print once
    became an error Hydra's sweep caught, and the sweep went on to its next run after SIGTERM."""
    sweep, worker = _start_long_sweep(tmp_path, stderr=subprocess.PIPE)
    sweep.stderr.close()  # nobody reads it: the sweep's writes to stderr fail (EPIPE)
    if how == "SIGINT":
        os.killpg(sweep.pid, signal.SIGINT)
    else:
        os.kill(sweep.pid, signal.SIGTERM)
    try:
        rc = sweep.wait(60)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert rc == (130 if how == "SIGINT" else 143) and _gone(worker)
    assert not [p for p in psutil.Process().children(recursive=True) if "harness.child" in " ".join(p.cmdline())]


@pytest.mark.parametrize("make, says", [
    (lambda d: (d / "bin.csv").write_bytes(b"\xff\xfe\x00\x01" * 64) and d / "bin.csv", "is not UTF-8"),
    (lambda d: (d / "afile").write_text("x") and d / "afile" / "r.csv", "is a file, not a folder"),
])
def test_a_results_path_that_is_binary_or_under_a_file_is_one_line(tmp_path, make, says):
    """Said once, before any load (a binary file was once said twice: as a warning, then as the error)."""
    path = make(tmp_path)
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "harness", *Q, f"results.path={path}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and says in lines[0], proc.stderr[-1500:]
