import gzip

from harness.evaluate.accuracy import save_predictions
from harness.record.files import compact, main, read_text, side_dirs


def test_compact_gzips_logs_and_predictions_and_reads_them_back(tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("run_id\n")
    logs, preds = side_dirs(csv)
    logs.mkdir()
    preds.mkdir()
    (logs / "a.log").write_text("line one\nTraceback\n" * 100)
    (preds / "a.mmlu.jsonl").write_text('{"pred": 1}\n')
    (preds / "note.txt").write_text("kept")
    n, before, after = compact(csv)
    assert n == 2 and after < before
    assert not (logs / "a.log").exists() and (logs / "a.log.gz").exists() and (preds / "note.txt").exists()
    assert read_text(logs / "a.log") == "line one\nTraceback\n" * 100  # the row's plain name still reads
    first = (logs / "a.log.gz").read_bytes()
    (logs / "a.log").write_text("line one\nTraceback\n" * 100)
    compact(csv)
    assert (logs / "a.log.gz").read_bytes() == first  # reproducible: no time or name in the header


def test_predictions_written_gzipped_when_asked(tmp_path):
    path = tmp_path / "x.arc_easy.jsonl.gz"
    save_predictions(path, [{"pred": 0, "gold": 1}])
    assert gzip.decompress(path.read_bytes()) == b'{"pred": 0, "gold": 1}\n'


def test_cli_refuses_a_missing_file(tmp_path, capsys):
    assert main([str(tmp_path / "nope.csv")]) == 2
    assert "no such results file" in capsys.readouterr().err
