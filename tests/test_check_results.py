"""make check-results: every committed report, the verdicts read from results and README's results block follow from
the committed CSVs (regenerated here and compared number for number)."""
from harness.regenerate import compare, main


def test_committed_results_regenerate_exactly(capsys):
    assert main([]) == 0, capsys.readouterr().out[-3000:]


def test_a_changed_number_is_named():
    d = compare("x.md", "| a | 0.571 | 12 |\n", "| a | 0.568 | 12 |\n")
    assert d.changed == [("0.571", "0.568")] and d.lines == ["-| a | 0.571 | 12 |", "+| a | 0.568 | 12 |"]
