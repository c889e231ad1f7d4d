"""LoadGen's per-profile Server searches live in the side table <stem>.loadgen.csv; files of the older layout, which
held `server` and `interactive` as columns of the row, stay readable and are moved by upgrade and merge."""
import csv

import pandas as pd

from harness.record.loadgen_profiles import PROFILES
from harness.record.schema import NAMES, RETIRED
from harness.record.store import read_rows


def _old_layout(path, rows):
    """A results file as the harness wrote it before the side table: today's columns plus the retired ones."""
    header = list(NAMES) + list(RETIRED)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(c, "") for c in header])


def _row(run_id, **values):
    return {"run_id": run_id, "status": "ok", "config_hash": run_id * 2, "model": "m", "precision": "fp32",
            "engine": "torch", "batch_size": "1", "decode_tok_s": "10", **values}


OLD = [_row("a", loadgen_server_qps="2.5", loadgen_server_tok_s="80", loadgen_server_n="500",
            loadgen_server_runs="3", loadgen_server_invalid_qps="3.1", loadgen_interactive_runs="0"),
       _row("b")]


def test_upgrade_moves_the_retired_columns_to_the_side_table(tmp_path):
    from harness.analysis.report import load_results
    from harness.record.upgrade import main

    csv_path = tmp_path / "old.csv"
    _old_layout(csv_path, OLD)
    before = load_results(csv_path).set_index("run_id")
    assert before.at["a", "loadgen_server_tok_s"] == 80.0 and before.at["a", "loadgen_interactive_runs"] == 0
    assert main([str(csv_path)]) == 0
    header = next(csv.reader(open(csv_path)))
    assert not set(RETIRED) & set(header) and len(read_rows(csv_path)) == 2
    lines = PROFILES.read(csv_path).sort_values("profile")
    assert list(lines["profile"]) == ["interactive", "server"] and list(lines["run_id"]) == ["a", "a"]
    after = load_results(csv_path).set_index("run_id")
    for col in ("loadgen_server_qps", "loadgen_server_tok_s", "loadgen_server_n", "loadgen_server_invalid_qps",
                "loadgen_server_runs", "loadgen_interactive_runs"):
        assert after.at["a", col] == before.at["a", col], col  # the analysis sees the same figures
    assert pd.isna(after.at["b", "loadgen_server_tok_s"])
    assert main([str(csv_path)]) == 0 and len(PROFILES.read(csv_path)) == 2  # a second upgrade moves nothing


def test_merge_brings_an_older_files_profiles_as_side_table_lines(tmp_path):
    from harness.record.merge import merge

    old, out = tmp_path / "old.csv", tmp_path / "all.csv"
    _old_layout(old, OLD)
    added, _, lines = merge([str(old)], str(out))
    assert added == 2 and lines == 2
    assert not set(RETIRED) & set(next(csv.reader(open(out))))
    got = PROFILES.read(out).set_index("profile")
    assert got.at["server", "qps"] == 2.5 and got.at["interactive", "runs"] == 0


def test_a_profile_without_a_column_is_judged_from_the_side_table(tmp_path):
    """A new SLO profile (`chat`) has a line of the side table and no column: the analysis judges it from LoadGen."""
    from harness.analysis.report import load_results
    from harness.analysis.slo import SLO, serving
    from harness.record.store import append_row

    csv_path = tmp_path / "r.csv"
    append_row(csv_path, {**_row("r"), "ttft_n": 5, "tpot_n": 500})
    PROFILES.append(csv_path, "r", [{"profile": "chat", "qps": 4.0, "invalid_qps": 8.0, "tok_s": 40.0,
                                     "ttft_p99_ms": 300.0, "tpot_p99_ms": 30.0, "n": 500, "runs": 2}])
    df = load_results(csv_path)
    out = serving(df, pd.DataFrame(columns=["run_id"]), [SLO("chat", 800.0, 80.0, 90)]).iloc[0]
    assert out["slo_source"] == "loadgen" and out["slo_tok_s"] == 40.0 and out["slo_bound"] == "bracket"


def test_an_upgrade_without_a_mover_refuses_rather_than_drop_the_retired_values(tmp_path):
    import pytest

    from harness.core.errors import ResultsFileError
    from harness.record.store import upgrade

    csv_path = tmp_path / "old.csv"
    _old_layout(csv_path, OLD)
    with pytest.raises(ResultsFileError, match="retired columns"):
        upgrade(csv_path)
    assert set(RETIRED) <= set(next(csv.reader(open(csv_path))))  # untouched
