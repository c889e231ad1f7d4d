"""The Python API runs what the command line runs: same validation (one-line refusal), same isolation, same row and
config hash for the same configuration; sweep resumes; results load as a DataFrame; the report is written."""
import pytest

from harness import api
from harness.record.store import read_rows
from tests.conftest import run_harness

TINY = dict(model="tiny-random", bench="quick", eval="none", quality="none")


def test_the_api_row_is_the_cli_row(tmp_path):
    cli_csv, api_csv = tmp_path / "cli.csv", tmp_path / "api.csv"
    run_harness("model=tiny-random", "bench=quick", "eval=none", "quality=none", "precision=bf16",
                "bench.repeats=2", f"results.path={cli_csv}")
    row = api.run(**TINY, precision="bf16", bench__repeats=2, results_path=api_csv)
    (cli,) = read_rows(cli_csv)
    (written,) = read_rows(api_csv)
    assert row["config_hash"] == cli["config_hash"] == written["config_hash"]
    assert row["status"] == written["status"] == "ok" and row["run_id"] == written["run_id"]
    assert row["log_path"]  # it ran in its own child process (runner.isolate), whose log is named
    again = api.run(**TINY, precision="bf16", bench__repeats=2, results_path=api_csv)
    assert again["status"] == "skipped" and again["run_id"] == row["run_id"] and len(read_rows(api_csv)) == 1


def test_the_api_refuses_what_the_cli_refuses(tmp_path):
    with pytest.raises(ValueError, match="eval.per_subject=0 is not allowed"):
        api.run(**{**TINY, "eval": "mmlu_quick"}, eval__per_subject=0, results_path=tmp_path / "r.csv")
    assert not (tmp_path / "r.csv").exists()


def test_sweep_load_and_report(tmp_path):
    csv = tmp_path / "s.csv"
    rows = api.sweep(**TINY, precision=["fp32", "bf16"], results_path=csv)
    assert [r["precision"] for r in rows] == ["fp32", "bf16"] and {r["status"] for r in rows} == {"ok"}
    df = api.load_results(csv)
    assert list(df["precision"]) == ["fp32", "bf16"] and df["decode_tok_s"].dtype.kind == "f"
    md = api.report(csv, tmp_path / "out", hardware=["this-machine"], slos=["batch1"])
    assert md.exists() and (tmp_path / "out" / "s.html").exists()
