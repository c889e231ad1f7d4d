"""Figures a reader can trust at a glance: every figure the analysis writes passes the legibility check (no
overlapping text, no legend over data, axes labelled with units, at most 8 series a panel), carries the digest of
the data it shows; a CSV of two machines is priced, ranked and recommended per machine."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from tests.analysis.conftest import make_csv, row  # noqa: E402


def test_the_check_finds_what_made_the_old_size_figure_unreadable():
    """The figure before this change: 25 lines in a panel, the legend on the data, crowded log tick labels."""
    from harness.analysis.legibility import problems

    fig, ax = plt.subplots(figsize=(5, 3))
    for i in range(25):
        ax.plot([0.135, 0.268], [10 + i, 20 + i], marker="o", label=f"precision-{i}", gid="series")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.LogFormatterSciNotation(labelOnlyBase=False))
    ax.legend(loc="upper left", fontsize=7)
    ax.set_xlabel("model size")
    found = problems(fig)
    plt.close(fig)
    assert any("25 series in one panel" in p for p in found)
    assert any("legend covers" in p for p in found)
    assert any("text overlaps" in p and "x tick" in p for p in found)
    assert any("names no unit" in p for p in found) and any("y axis has no label" in p for p in found)


def test_every_figure_the_analysis_writes_is_legible_and_carries_its_data_digest(small_csv, tmp_path):
    from harness.analysis import plots
    from harness.analysis.report import write_report

    plots.PROBLEMS.clear()
    write_report(small_csv, tmp_path, ["this-machine"])
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) >= 5 and set(plots.PROBLEMS) == {p.name for p in pngs}
    assert {name: found for name, found in plots.PROBLEMS.items() if found} == {}
    assert all(plots.read_digest(p) for p in pngs)


def _two_machines(path):
    rows = []
    for model in ("m1",):
        for prec, dec, acc, machine in (("fp32", 20, 0.50, "Intel(R) Xeon(R) Processor"), ("int8", 40, 0.49,
                                         "Intel(R) Xeon(R) Processor"), ("fp32", 60, 0.50, "AMD EPYC"),
                                        ("int8", 120, 0.49, "AMD EPYC")):
            r = row(model, prec, dec, 400, acc, 0.0, 4e8)
            r.update(run_id=f"{model}-{prec}-{machine[:3]}", config_hash=f"{model}-{prec}-{machine[:3]}",
                     device="cpu", device_name=machine, threads=2, timestamp="2026-11-28T10:00:00+00:00")
            rows.append(r)
    return make_csv(path, rows)


def test_a_csv_of_two_machines_is_priced_and_ranked_per_machine(tmp_path):
    from harness.analysis.report import analyse, write_report

    csv = _two_machines(tmp_path / "two.csv")
    a = analyse(csv, hardware=["this-machine"], slos=["offline"])
    assert a.machines == ["AMD EPYC, 2 threads", "Intel(R) Xeon(R) Processor, 2 threads"]
    assert [p.machine for p in a.priced] == a.machines
    for p in a.priced:
        assert set(p.rows["machine"]) == {p.machine} and len(p.rows) == 2  # never a frontier across machines
    text = write_report(csv, tmp_path / "out", ["this-machine"], slos=["offline"]).read_text()
    assert "This CSV holds rows of 2 machines" in text
    assert "### this-machine (AMD EPYC, 2 threads)" in text and "### this-machine (Intel(R) Xeon(R) Processor" in text
    names = {p.name for p in (tmp_path / "out").glob("*cost_vs_quality*.png")}
    assert names == {"two_cost_vs_quality_this-machine_amd-epyc-2_offline.png",
                     "two_cost_vs_quality_this-machine_intel-xeon-2_offline.png"}


@pytest.mark.parametrize("lo,hi", [(0.05, 0.09), (0.07, 0.075), (3, 300), (1, 1e6)])
def test_log_axes_show_at_least_two_uncrowded_labels(lo, hi):
    from harness.analysis import style
    from harness.analysis.legibility import problems

    fig, ax = plt.subplots(figsize=(4, 2))
    ax.scatter([lo, hi], [1, 2], gid="series")
    ax.set_xscale("log")
    style.log_axis(ax.xaxis, *sorted(ax.get_xlim()))
    ax.set_xlabel("US$ per million tokens (log)")
    ax.set_ylabel("accuracy")
    fig.canvas.draw()
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert len(shown) >= 2 and problems(fig) == []
    plt.close(fig)
