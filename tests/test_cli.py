"""The command a user types, end to end on tiny-random: rows are written, appended, resumed, failures recorded."""
import csv

from harness.record.schema import NAMES
from harness.record.store import read_rows

from tests.conftest import run_harness

QUICK = ["model=tiny-random", "bench=quick", "eval.per_subject=1", "eval.shots=1"]


def test_one_run_writes_a_well_formed_row_and_a_second_appends(tmp_path):
    out = tmp_path / "runs.csv"
    run_harness(*QUICK, f"results.path={out}")
    run_harness(*QUICK, "precision=bf16", f"results.path={out}")
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(NAMES) and len(rows) == 3
    first, second = read_rows(out)
    assert first["status"] == second["status"] == "ok"
    assert (first["precision"], second["precision"]) == ("fp32", "bf16")
    for col in ("ttft_ms_p50", "tpot_ms_p50", "decode_tok_s", "weight_bytes", "peak_rss_mb", "mmlu_acc", "load_s",
                "bench_s", "eval_s", "run_s", "roofline_step_mb"):
        assert float(first[col]) > 0, col
    assert first["mmlu_n"] == "57" and first["mmlu_shots"] == "1"
    assert float(first["run_s"]) > float(first["load_s"]) + float(first["bench_s"]) + float(first["eval_s"])
    assert int(second["weight_bytes"]) < int(first["weight_bytes"])  # bf16 stores half
    # the row alone reproduces its run: overrides and the stored config
    assert "precision=bf16" in second["overrides"]
    assert (tmp_path / "runs.configs" / f"{second['config_hash']}.yaml").exists()
    assert (tmp_path / "runs.predictions").is_dir()


def test_rerun_skips_recorded_configs_and_force_reruns(tmp_path):
    out = tmp_path / "runs.csv"
    args = [*QUICK, "eval=none", f"results.path={out}"]
    run_harness(*args)
    proc = run_harness(*args)
    assert "skip" in proc.stdout and len(read_rows(out)) == 1
    run_harness(*args, "force=true")
    assert len(read_rows(out)) == 2


def test_unknown_precision_lists_the_choices(tmp_path):
    proc = run_harness("precision=int3", f"results.path={tmp_path / 'r.csv'}", check=False)
    assert proc.returncode != 0
    assert "int3" in proc.stderr and "fp32" in proc.stderr  # Hydra's own message with the available options
    proc = run_harness("precision.name=int3", f"results.path={tmp_path / 'r.csv'}", check=False)
    assert proc.returncode == 2 and "choices:" in proc.stderr


def test_cfg_job_prints_the_composed_config():
    proc = run_harness("--cfg", "job")
    assert "model:" in proc.stdout and "bench:" in proc.stdout and "results:" in proc.stdout


def test_unavailable_scheme_writes_a_row_with_the_reason(tmp_path):
    out = tmp_path / "runs.csv"
    run_harness(*QUICK, "precision=torchao-fp8", "device=cpu", f"results.path={out}")
    (row,) = read_rows(out)
    assert row["status"] == "unavailable" and "cuda" in row["error"]


def test_alien_results_file_is_refused_and_left_untouched(tmp_path):
    out = tmp_path / "runs.csv"
    out.write_text("name,score\nx,1\n")
    proc = run_harness(*QUICK, "eval=none", f"results.path={out}", check=False)
    assert proc.returncode == 2 and "line 1" in proc.stderr
    assert out.read_text() == "name,score\nx,1\n"


def test_unknown_subject_lists_the_choices(tmp_path):
    proc = run_harness(*QUICK, "eval.subjects=[astrology]", f"results.path={tmp_path / 'r.csv'}", check=False)
    assert proc.returncode == 2 and "astrology" in proc.stderr and "abstract_algebra" in proc.stderr
    assert not (tmp_path / "r.csv").exists()
