from harness.record.curves import append_curve, curves_path, read_curves


def test_levels_append_beside_the_csv_and_read_back(tmp_path):
    csv = tmp_path / "sweep.csv"
    assert read_curves(csv).empty  # a CSV from before load curves: no side table, nothing fails
    append_curve(csv, "r1", [{"concurrency": 1, "decode_tok_s": 10.0}, {"concurrency": 4, "decode_tok_s": 30.0}])
    append_curve(csv, "r2", [{"concurrency": 1, "decode_tok_s": 12.0}])
    assert curves_path(csv) == tmp_path / "sweep.curves.csv"
    df = read_curves(csv)
    assert list(df["run_id"]) == ["r1", "r1", "r2"] and list(df["decode_tok_s"]) == [10.0, 30.0, 12.0]


def test_a_torn_last_line_does_not_swallow_the_next_run(tmp_path):
    csv = tmp_path / "sweep.csv"
    append_curve(csv, "r1", [{"concurrency": 1, "decode_tok_s": 10.0}])
    with open(curves_path(csv), "a") as f:
        f.write("r2,4,1.0")  # a writer killed mid-line
    append_curve(csv, "r3", [{"concurrency": 1, "decode_tok_s": 11.0}])
    assert list(read_curves(csv)["run_id"]) == ["r1", "r3"]
