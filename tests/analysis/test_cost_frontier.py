import pandas as pd
import pytest

from harness.analysis.cost import blended, measured_on, price
from harness.analysis.frontier import significant_mask
from harness.profiles.hardware import Hardware, load_hardware, profiles


def test_cost_on_hand_numbers():
    # $2/hour at 100 tok/s of output and 1,000 of input: 360,000 output tokens an hour -> $5.5556 per million;
    # 3.6 M input tokens an hour -> $0.5556 per million; blended 3:1 -> (3 * 0.5556 + 5.5556) / 4 = $1.8056
    df = pd.DataFrame({"slo_tok_s": [100.0], "slo_prefill_tok_s": [1000.0], "device": ["cpu"]})
    got = price(df, Hardware("x", 2.0, None)).iloc[0]
    assert got["usd_per_mtok_out"] == pytest.approx(5.5556, abs=1e-4)
    assert got["usd_per_mtok_in"] == pytest.approx(0.5556, abs=1e-4)
    assert got["usd_per_mtok_blended"] == pytest.approx(1.8056, abs=1e-4)
    assert blended(4.0, 8.0) == pytest.approx(5.0)


def test_a_profile_prices_only_the_rows_measured_on_it():
    df = pd.DataFrame({"slo_tok_s": [100.0, 1000.0], "slo_prefill_tok_s": [1000.0, 20000.0],
                       "device": ["cpu", "cuda"], "device_name": ["Intel Xeon", "NVIDIA H100 80GB HBM3"],
                       "cpu": ["Intel Xeon", "AMD EPYC"]})
    here = price(df, Hardware("this-machine", 1.0, None))
    assert len(here) == 1 and here["usd_per_mtok_out"].iloc[0] == pytest.approx(1.0 / 360_000 * 1e6)
    h100 = price(df, load_hardware("h100"))
    assert list(h100["device"]) == ["cuda"]  # the GPU row only, at its own throughput
    assert h100["usd_per_mtok_out"].iloc[0] == pytest.approx(load_hardware("h100").usd_per_hour / 3.6)  # 1000 tok/s
    assert price(df[df["device"] == "cpu"], load_hardware("l4")).empty  # no L4 row: no L4 price, nothing projected


def test_no_priced_table_of_a_cpu_csv_holds_a_row_from_other_hardware(small_csv):
    from harness.analysis.report import analyse

    a = analyse(small_csv)
    assert [p.hw.name for p in a.priced] == ["this-machine"] * len(a.slos)
    assert "h100" in a.unpriced
    for p in a.priced:
        assert measured_on(p.rows, p.hw).all() and "projected" not in p.rows.columns


def test_dominance_needs_a_significant_difference_and_ties_are_kept():
    cost = pd.Series([1.0, 2.0, 3.0, 4.0], index=list("abcd"))
    quality = pd.Series([0.50, 0.51, 0.60, 0.55], index=list("abcd"))
    ci = pd.Series([0.02, 0.02, 0.02, 0.02], index=list("abcd"))
    on, ties = significant_mask(cost, quality, ci)
    # b is 0.01 better than the cheaper a, within the noise: a tie, both on; d is significantly worse than the
    # cheaper c (0.05 > 1.96 * sqrt(2) * 0.0102): dominated
    assert on.tolist() == [True, True, True, False]
    assert ties["b"] == ["a"] and ties["a"] == []
    plain, _ = significant_mask(cost, quality, ci * 0)
    assert plain.tolist() == [True, True, True, False]
    # across models, the full sets' own sampling error widens the margin: no longer significant
    model = pd.Series(["m1", "m1", "m1", "m2"], index=list("abcd"))
    across, t = significant_mask(cost, quality, ci, pd.Series(0.03, index=list("abcd")), model)
    assert across["d"] and "c" in t["d"]


def test_pareto_set_excludes_dominated_points_and_keeps_ties():
    cost = pd.Series([1.0, 2.0, 2.0, 3.0, 1.0, 5.0, None])
    quality = pd.Series([0.5, 0.7, 0.7, 0.6, 0.4, 0.9, 0.99])
    on = significant_mask(cost, quality, quality * 0)[0].tolist()
    # (1,.5) on; (2,.7) twice: exact tie, both on; (3,.6) dominated by (2,.7); (1,.4) dominated by (1,.5);
    # (5,.9) on; a point without cost is never on the frontier
    assert on == [True, True, True, False, False, True, False]


def test_catalog_profiles_have_sources():
    assert {"h100", "h200", "a100", "l4", "t4", "this-machine"} <= set(profiles())
    for name in profiles():
        hw = load_hardware(name)
        assert hw.usd_per_hour > 0 and hw.price_source and hw.price_as_of
    with pytest.raises(KeyError, match="choices"):
        load_hardware("tpu-v9")
