from pathlib import Path

from harness.analysis.__main__ import main
from harness.analysis.report import write_report


def test_report_lists_failures_and_writes_non_empty_plots(small_csv, tmp_path):
    path = write_report(small_csv, tmp_path / "out", ["this-machine", "h100"], margin=0.02)
    text = path.read_text()
    assert "Runs without numbers" in text and "needs cuda" in text and "RuntimeError: boom" in text
    # MMLU on 300 questions: +-0.039 each, so no 0.02 loss can be shown (int8: 0.01 + sqrt(2) * 0.039 = 0.065)
    assert "m1: no configuration shown within 0.02 of fp32" in text
    wide = write_report(small_csv, tmp_path / "wide", ["this-machine"], margin=0.07).read_text()
    assert "m1: **int8**" in wide and "upper 95% bound 0.0654 &lt; 0.07" in wide  # int4 (0.10 + 0.055) is not
    assert "bad4" in text and "gives >= quality" in text  # the dominated point says what it loses
    assert "Not priced (no rows measured on them" in text and "h100" in text  # a CPU CSV prices no GPU
    pngs = {p.name: p.stat().st_size for p in (tmp_path / "out").glob("*.png")}
    assert {f"sweep_cost_vs_quality_this-machine_{s}.png" for s in ("offline", "batch1")} \
        <= set(pngs) and "sweep_cost_vs_quality_h100_server.png" not in pngs
    # no TTFT p99 was recorded: nothing is priced under server or interactive, and no empty plot is drawn for them
    assert "sweep_cost_vs_quality_this-machine_server.png" not in pngs and "No run is priced under `server`" in text
    assert {"sweep_memory_vs_quality.png", "sweep_speed_memory.png", "sweep_latency.png"} <= set(pngs)
    assert all(size > 5000 for size in pngs.values())


def test_cli_writes_the_report(small_csv, tmp_path, capsys):
    assert main([str(small_csv), "--out", str(tmp_path / "o"), "--hardware", "t4"]) == 0
    assert Path(capsys.readouterr().out.split()[-1]).exists()
    assert main([str(small_csv), "--hardware", "nope"]) == 2


def test_notebook_executes(small_csv, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    root = Path(__file__).resolve().parents[2]
    nb = nbformat.read(root / "notebooks" / "analysis.ipynb", as_version=4)
    monkeypatch.setenv("HARNESS_CSV", str(small_csv))
    monkeypatch.setenv("HARNESS_OUT", str(tmp_path / "nb"))
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(root)}}).execute()
    assert list((tmp_path / "nb").glob("*.png"))


def test_each_row_is_named_by_what_differs_engine_and_prompt_lengths(tmp_path):
    """Two rows of one scheme on two engines, and a LoadGen run on mixed-length prompts beside the fixed-length one,
    get distinct config labels (the tables and plots key on them)."""
    from harness.analysis.report import load_results

    from tests.analysis.conftest import make_csv, row

    rows = [row("m1", "bf16", 20, 400, None, None, 2e8), row("m1", "bf16", 60, 900, None, None, 2e8),
            row("m1", "ov-int8", 50, 900, None, None, 1e8), row("m1", "ov-int8", 45, 800, None, None, 1e8)]
    rows[1].update(engine="vllm", run_id="v", config_hash="v")
    rows[2].update(loadgen_note="performance run; prompts of 64 tokens, 8 new tokens each")
    rows[3].update(loadgen_note="performance run; prompts of 16-64 tokens, 8 new tokens each", run_id="x",
                   config_hash="x")
    df = load_results(make_csv(tmp_path / "r.csv", rows))
    assert list(df["config"]) == ["m1 / bf16", "m1 / bf16 @ vllm", "m1 / ov-int8", "m1 / ov-int8 (prompts 16-64 tok)"]


def test_rows_off_the_ranking_say_why_and_a_mixed_length_set_is_not_ranked_against_fixed_lengths(tmp_path):
    """A vLLM row without KLD says so (not 'architecture-only'); an architecture-only row says that; a LoadGen run on a
    mixed-length request set is priced but not ranked (its cheaper tokens come from a lighter workload)."""
    from harness.analysis.report import analyse

    from tests.analysis.conftest import make_csv, row

    rows = [row("m1", "fp32", 20, 400, None, 0.0, 4e8), row("m1", "int8", 40, 500, None, 0.01, 1e8),
            row("m1", "int8", 90, 900, None, 0.01, 1e8), row("m1", "bf16", 60, 900, None, None, 2e8),
            row("m2", "bf16", 30, 300, None, None, 2e8)]
    rows[2].update(run_id="mixed", config_hash="mixed",
                   loadgen_note="performance run; prompts of 16-64 tokens, 8 new tokens each")
    rows[3].update(engine="vllm", run_id="v", config_hash="v", quality_note="no KLD: the vllm engine returns no "
                   "distribution", weights="real")
    rows[4].update(weights="random")
    a = analyse(make_csv(tmp_path / "r.csv", rows), hardware=["this-machine"], slos=["batch1"])
    t = a.priced[0].rows.set_index("config")
    assert t.loc["m1 / int8 (prompts 16-64 tok)", "off_frontier_loses"].startswith("a different request set (prompts")
    assert not t.loc["m1 / int8 (prompts 16-64 tok)", "on_frontier"]
    assert t.loc["m1 / int8", "on_frontier"]  # the fixed-length int8 is not beaten by its cheaper mixed-length run
    assert t.loc["m1 / bf16 @ vllm", "off_frontier_loses"] == "no KLD: the vllm engine returns no distribution: priced only"
    assert "architecture-only" in t.loc["m2 / bf16", "off_frontier_loses"]
