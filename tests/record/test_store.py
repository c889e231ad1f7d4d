import csv
import multiprocessing as mp

import pytest

from harness.record.schema import NAMES, markdown_table
from harness.record.store import ResultsFileError, append_row, done_hashes, read_rows


def _row(i: int, status: str = "ok") -> dict:
    return {"run_id": f"r{i}", "status": status, "config_hash": f"h{i}", "model": "m", "error": "a, \"quoted\"\nline"}


def test_header_written_once_and_rows_round_trip(tmp_path):
    path = tmp_path / "r.csv"
    append_row(path, _row(1))
    append_row(path, _row(2, "failed"))
    lines = path.read_text().count("run_id")
    assert lines == 1
    rows = read_rows(path)
    assert [r["run_id"] for r in rows] == ["r1", "r2"]
    assert rows[0]["error"] == "a, \"quoted\"\nline"
    assert done_hashes(path) == {"h1"}


def test_unknown_column_is_refused(tmp_path):
    with pytest.raises(KeyError, match="not declared"):
        append_row(tmp_path / "r.csv", {"run_id": "x", "speed2": 1})


def test_torn_line_is_named_by_line_number_and_skipped_for_resume(tmp_path):
    path = tmp_path / "r.csv"
    append_row(path, _row(1))
    with open(path, "a") as f:
        f.write("r2,2026,ok,half a li")  # a writer killed mid-line
    with pytest.raises(ResultsFileError, match="line 4"):  # physical line: r1's error field spans lines 2-3
        read_rows(path)
    assert done_hashes(path) == {"h1"}
    append_row(path, _row(3))  # the next append starts on a fresh line: nothing recorded is lost
    assert [r["run_id"] for r in read_rows(path, strict=False)] == ["r1", "r3"]


def test_alien_file_is_refused_untouched(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ResultsFileError, match="line 1"):
        append_row(path, _row(1))
    assert path.read_text() == "a,b,c\n1,2,3\n"


def _writer(path, start, n):
    for i in range(start, start + n):
        append_row(path, _row(i))


def test_concurrent_writers_leave_every_line_parseable(tmp_path):
    path = tmp_path / "r.csv"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, k * 1000, 150)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(NAMES)
    assert all(len(r) == len(NAMES) for r in rows)
    ids = [r[0] for r in rows[1:]]
    assert len(ids) == 450 and len(set(ids)) == 450


def test_schema_documents_required_columns():
    required = ("run_id timestamp status model model_params source_weights precision engine device threads batch_size "
                "prompt_tokens new_tokens ttft_ms_p50 tpot_ms_p50 tpot_ms_p90 tpot_ms_p99 decode_tok_s prefill_tok_s "
                "e2e_s_p50 weight_bytes bits_per_weight peak_rss_mb cuda_peak_alloc_mb mmlu_acc mmlu_stderr mmlu_n "
                "mmlu_shots config_hash torch_version transformers_version cpu").split()
    assert set(required) <= set(NAMES)
    table = markdown_table()
    assert all(f"`{n}`" in table for n in NAMES)


def test_readme_column_table_is_generated_from_the_schema():
    from harness.record.readme import README, render

    text = README.read_text()
    assert render(text) == text, "run `python -m harness.record.readme` to regenerate docs/reference/columns.md"


def test_merge_per_worker_files_without_duplicates(tmp_path):
    from harness.record.merge import merge

    a, b, out = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "all.csv"
    for i in range(3):
        append_row(a, _row(i))
    for i in range(2, 5):
        append_row(b, _row(i))
    assert merge([str(a), str(b)], str(out)) == (5, 1, 0)
    assert merge([str(a), str(b)], str(out)) == (0, 6, 0)  # rerun: nothing duplicated
    assert [r["run_id"] for r in read_rows(out)] == ["r0", "r1", "r2", "r3", "r4"]


def test_a_file_with_an_older_column_layout_stays_readable_and_appendable(tmp_path):
    path = tmp_path / "old.csv"
    old = [n for n in NAMES if n != "nvml_used_mb"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(old)
        w.writerow(["r0" if n == "run_id" else "ok" if n == "status" else "" for n in old])
    append_row(path, _row(1))
    rows = read_rows(path)
    assert [r["run_id"] for r in rows] == ["r0", "r1"] and rows[0]["nvml_used_mb"] == ""
    with pytest.raises(ResultsFileError, match="lacks columns .*harness.record.upgrade"):
        append_row(path, {**_row(2), "nvml_used_mb": 5.0})


def test_an_older_layout_upgraded_keeps_every_row_and_takes_the_new_column(tmp_path):
    from harness.record.upgrade import main

    path = tmp_path / "old.csv"
    path.write_text("run_id,status,config_hash,model,backend,decode_tok_s\nr1,ok,h1,m,hf,12.50\n"
                    'r2,failed,h2,"a, b",llamacpp,\n')
    before = read_rows(path)
    assert main([str(path)]) == 0
    assert path.read_text().splitlines()[0] == ",".join(NAMES)
    assert read_rows(path) == before and before[0]["decode_tok_s"] == "12.50" and before[0]["engine"] == "torch"
    append_row(path, {**_row(3), "nvml_used_mb": 5.0})
    assert read_rows(path)[-1]["nvml_used_mb"] == "5.0"
    torn = tmp_path / "torn.csv"
    torn.write_text("run_id,status,config_hash\nr1,ok,h1\nr2,ok\n")
    assert main([str(torn)]) == 1 and torn.read_text().endswith("r2,ok\n")  # refused, left as it was
    assert main([str(tmp_path / "missing.csv")]) == 1 and not (tmp_path / "missing.csv").exists()


def test_a_file_that_names_the_engine_column_backend_reads_and_appends_as_engine(tmp_path):
    """Files written before the engine column was renamed (backend = hf | llamacpp) stay readable and appendable."""
    path = tmp_path / "old.csv"
    header = ["run_id", "status", "config_hash", "model", "backend"]
    path.write_text(",".join(header) + "\nr1,ok,h1,m,hf\nr2,ok,h2,m,llamacpp\n")
    append_row(path, {"run_id": "r3", "status": "ok", "config_hash": "h3", "model": "m", "engine": "torch"})
    assert path.read_text().splitlines()[0] == ",".join(header)  # the file keeps its layout
    assert [r["engine"] for r in read_rows(path)] == ["torch", "llamacpp", "torch"]
    assert "backend" not in read_rows(path)[0]


def test_the_record_checks_each_column_as_a_stage_fills_it():
    from harness.record.schema import Record

    row = Record(model="m", decode_tok_s=12.5)
    row.update(weight_bytes=1000, concurrency="1,4,16")
    with pytest.raises(KeyError, match="'decode_tokens' is not declared"):
        row["decode_tokens"] = 1.0
    with pytest.raises(TypeError, match="'weight_bytes' .* takes a number, not str"):
        row.update(weight_bytes="1000 B")
    assert row == {"model": "m", "decode_tok_s": 12.5, "weight_bytes": 1000, "concurrency": "1,4,16"}
