import pandas as pd
import pytest

from harness.analysis.cost import price
from harness.profiles.hardware import Hardware
from harness.analysis.slo import SLO, best_level, load_slo, serving, slo_names


def _curve(run_id="r1"):
    # concurrency, TTFT p99, TPOT p99, decode tok/s, prefill tok/s
    rows = [(1, 100.0, 20.0, 50.0, 600.0), (4, 300.0, 40.0, 120.0, 800.0), (16, 1200.0, 41.0, 300.0, 900.0),
            (64, 4000.0, 150.0, 500.0, 950.0)]
    return pd.DataFrame([{"run_id": run_id, "concurrency": c, "ttft_ms_p99": t, "tpot_ms_p99": p,
                          "decode_tok_s": d, "prefill_tok_s": f, "ttft_n": 200, "tpot_n": 6000}
                         for c, t, p, d, f in rows])


def test_shipped_profiles_are_mlperfs_bounds():
    assert {"server", "interactive", "offline", "batch1"} <= set(slo_names())
    server, inter = load_slo("server"), load_slo("interactive")
    assert (server.ttft_ms, server.tpot_ms, server.percentile) == (2000, 200, 99)
    assert (inter.ttft_ms, inter.tpot_ms, inter.percentile) == (450, 40, 99)
    with pytest.raises(KeyError, match="choices"):
        load_slo("nope")


def test_a_level_that_misses_tpot_by_1_ms_is_not_chosen():
    # level 16 has TPOT p99 41 ms against interactive's 40: the answer is level 4, not the faster 16
    lv = best_level(_curve(), load_slo("interactive"))
    assert int(lv["concurrency"]) == 4 and lv["decode_tok_s"] == 120.0
    assert int(best_level(_curve(), load_slo("server"))["concurrency"]) == 16  # 64 misses TTFT 2000
    assert int(best_level(_curve(), load_slo("offline"))["concurrency"]) == 64
    assert int(best_level(_curve(), load_slo("batch1"))["concurrency"]) == 1


def test_meets_no_level_and_missing_percentiles():
    strict = SLO("strict", ttft_ms=10.0, tpot_ms=1.0)
    assert best_level(_curve(), strict) is None
    no_p99 = _curve().drop(columns=["ttft_ms_p99"])
    assert best_level(no_p99, load_slo("server")) is None  # a bound on a column that was not measured never meets
    ok = pd.DataFrame([{"run_id": "r1", "batch_size": 1}])
    s = serving(ok, _curve(), [strict, load_slo("interactive")])
    assert s.loc[0, "slo_note"] == "meets no level of 4 measured" and pd.isna(s.loc[0, "slo_tok_s"])
    assert s.loc[1, "slo_concurrency"] == 4


def test_pricing_uses_the_chosen_levels_throughput():
    ok = pd.DataFrame([{"run_id": "r1", "batch_size": 1, "device": "cpu"}])
    s = serving(ok, _curve(), [load_slo("server")]).merge(ok, on="run_id")
    p = price(s, Hardware("this-machine", 3.6, None))
    # $3.6/hour at 300 tok/s (level 16) decode and 900 tok/s prefill
    assert p["usd_per_mtok_out"].iloc[0] == pytest.approx(3.6 / (300 * 3600) * 1e6)
    assert p["usd_per_mtok_in"].iloc[0] == pytest.approx(3.6 / (900 * 3600) * 1e6)
    assert p["usd_per_mtok_blended"].iloc[0] == pytest.approx((3 * 3.6 / (900 * 3600) + 3.6 / (300 * 3600)) / 4 * 1e6)


def test_a_run_without_a_curve_is_one_level_at_its_batch_size():
    ok = pd.DataFrame([{"run_id": "old", "batch_size": 1, "ttft_ms_p90": 90.0, "tpot_ms_p99": 12.0,
                        "decode_tok_s": 20.0, "prefill_tok_s": 500.0}])
    empty = pd.DataFrame(columns=["run_id", "concurrency"])
    s = serving(ok, empty, [load_slo("batch1"), load_slo("server")]).set_index("slo")
    assert s.loc["batch1", "slo_tok_s"] == 20.0  # no latency bound
    assert pd.isna(s.loc["server", "slo_tok_s"])  # TTFT p99 was not recorded by older CSVs


def test_capacity_reads_memory_as_gb_not_gib():
    from harness.analysis.capacity import sequences_that_fit

    # 10 GB = 1e10 bytes; 90% usable = 9e9; minus 1e9 of weights = 8e9 bytes; 1e6 bytes per 1,000-token sequence
    assert sequences_that_fit(10, 1e9, 1000, 1000) == 8000


def test_few_sample_percentiles_are_flagged(tmp_path):
    import pandas as pd

    from harness.analysis.slo import SLO, serving

    ok = pd.DataFrame([{"run_id": "r", "batch_size": 1, "repeats": 3, "new_tokens": 32}])
    curves = pd.DataFrame([{"run_id": "r", "concurrency": 1, "ttft_ms_p99": 10.0, "tpot_ms_p99": 5.0,
                            "decode_tok_s": 100.0, "prefill_tok_s": 1000.0, "ttft_n": 3, "tpot_n": 93},
                           {"run_id": "r", "concurrency": 4, "ttft_ms_p99": 20.0, "tpot_ms_p99": 6.0,
                            "decode_tok_s": 300.0, "prefill_tok_s": 2000.0, "ttft_n": 400, "tpot_n": 12400}])
    out = serving(ok, curves, [SLO("s", 100.0, 50.0)]).iloc[0]
    assert out["slo_n"] == 400 and out["slo_note"] == "1 level(s) with fewer than 100 samples not judged"
    out = serving(ok, curves.iloc[:1], [SLO("s", 100.0, 50.0)]).iloc[0]
    assert out["slo_n"] == 3 and pd.isna(out["slo_tok_s"])  # meets the bounds, but on 3 samples: not judged
    assert out["slo_note"].startswith("not judged: p99 from at most 3 samples a level (< 100)")
    assert out["slo_static_tok_s"] == 100.0 and "indicative only" in out["slo_note"]


def test_a_thin_level_never_decides_a_profile():
    import pandas as pd

    from harness.analysis.slo import SLO, min_samples, serving

    assert [min_samples(SLO("s", 1.0, None, p)) for p in (99, 90, 50)] == [100, 10, 2]
    assert min_samples(SLO("offline", None, None)) == 0
    ok = pd.DataFrame([{"run_id": "r", "batch_size": 1, "repeats": 3, "new_tokens": 32}])
    level = lambda c, tok_s, n, ttft: {"run_id": "r", "concurrency": c, "ttft_ms_p99": ttft,  # noqa: E731
                                       "tpot_ms_p99": 5.0, "ttft_ms_p90": ttft, "tpot_ms_p90": 5.0,
                                       "decode_tok_s": tok_s, "prefill_tok_s": 1.0, "ttft_n": n, "tpot_n": 10 * n}
    # c=16 meets on 16 samples and is faster; c=4 meets on 120: the profile gets c=4's figure, and says why
    curves = pd.DataFrame([level(4, 300.0, 120, 20.0), level(16, 900.0, 16, 30.0)])
    out = serving(ok, curves, [SLO("s", 100.0, 50.0)]).iloc[0]
    assert out["slo_tok_s"] == 300.0 and out["slo_concurrency"] == 4
    assert "1 level(s) with fewer than 100 samples not judged" in out["slo_note"]
    # a p90 needs 10 samples: the 16-sample level judges it
    assert serving(ok, curves, [SLO("s", 100.0, 50.0, 90)]).iloc[0]["slo_tok_s"] == 900.0
    # the well-sampled level misses the bound, the thin one would meet it: not judged (not "meets no level")
    curves = pd.DataFrame([level(4, 300.0, 120, 200.0), level(16, 900.0, 16, 30.0)])
    out = serving(ok, curves, [SLO("s", 100.0, 50.0)]).iloc[0]
    assert pd.isna(out["slo_tok_s"]) and out["slo_note"].startswith("not judged: p99 from at most 16 samples a level")
    assert "1 well-sampled level(s) meet no bound" in out["slo_note"]
    # every level well sampled, none meets: judged, and it meets none
    curves = pd.DataFrame([level(4, 300.0, 120, 200.0), level(16, 900.0, 160, 300.0)])
    assert serving(ok, curves, [SLO("s", 100.0, 50.0)]).iloc[0]["slo_note"] == "meets no level of 2 measured"
    # no latency bound: every level counts, however few its samples
    assert serving(ok, curves.assign(ttft_n=1), [SLO("offline", None, None)]).iloc[0]["slo_tok_s"] == 900.0


def test_a_loadgen_valid_on_too_few_queries_is_not_judged():
    import pandas as pd

    from harness.analysis.slo import SLO, serving

    row = {"run_id": "r", "batch_size": 1, "repeats": 3, "new_tokens": 32, "loadgen_server_tok_s": 80.0,
           "loadgen_server_qps": 2.5}
    empty = pd.DataFrame(columns=["run_id"])
    out = serving(pd.DataFrame([{**row, "loadgen_server_n": 64}]), empty, [SLO("server", 2000.0, 200.0)]).iloc[0]
    assert pd.isna(out["slo_tok_s"]) and "VALID at 2.5 q/s from 64 queries (< 100)" in out["slo_note"]
    out = serving(pd.DataFrame([{**row, "loadgen_server_n": 500}]), empty, [SLO("server", 2000.0, 200.0)]).iloc[0]
    assert out["slo_tok_s"] == 80.0


def test_loadgen_figures_take_precedence_and_sit_beside_the_static_curve():
    import pandas as pd

    from harness.analysis.slo import SLO, serving

    ok = pd.DataFrame([{"run_id": "r", "batch_size": 1, "repeats": 3, "new_tokens": 32, "loadgen_server_tok_s": 80.0,
                        "loadgen_server_qps": 2.5, "loadgen_server_n": 500}])
    curves = pd.DataFrame([{"run_id": "r", "concurrency": 4, "ttft_ms_p99": 20.0, "tpot_ms_p99": 6.0,
                            "decode_tok_s": 300.0, "prefill_tok_s": 2000.0, "ttft_n": 400, "tpot_n": 12400}])
    got = serving(ok, curves, [SLO("server", 2000.0, 200.0), SLO("interactive", 450.0, 40.0)]).set_index("slo")
    assert got.loc["server", "slo_tok_s"] == 80.0 and got.loc["server", "slo_static_tok_s"] == 300.0
    assert got.loc["server", "slo_source"] == "loadgen" and "VALID at 2.5 q/s" in got.loc["server", "slo_note"]
    assert got.loc["interactive", "slo_source"] == "static curve" and got.loc["interactive", "slo_tok_s"] == 300.0


def test_a_profile_loadgen_found_no_valid_qps_for_is_not_judged_on_the_static_curve():
    import pandas as pd

    from harness.analysis.slo import SLO, serving

    ok = pd.DataFrame([{"run_id": "r", "batch_size": 1, "repeats": 3, "new_tokens": 32, "decode_tok_s": 40.0,
                        "prefill_tok_s": 900.0, "ttft_ms_p99": 30.0, "tpot_ms_p99": 20.0, "ttft_n": 300,
                        "tpot_n": 9300, "loadgen_server_runs": 2, "loadgen_server_invalid_qps": 3.29,
                        "loadgen_interactive_runs": 0}])
    got = serving(ok, pd.DataFrame(), [SLO("server", 2000.0, 200.0), SLO("interactive", 450.0, 40.0),
                                       SLO("loose", 5000.0, 500.0)]).set_index("slo")
    assert pd.isna(got.loc["server", "slo_tok_s"]) and got.loc["server", "slo_static_tok_s"] == 40.0
    assert "no VALID QPS in 2 run(s), INVALID at 3.29 q/s" in got.loc["server", "slo_note"]
    assert pd.isna(got.loc["interactive", "slo_tok_s"]) and "not searched" in got.loc["interactive", "slo_note"]
    # a profile LoadGen did not take (no runs column) is still judged on the static curve
    assert got.loc["loose", "slo_source"] == "static curve" and got.loc["loose", "slo_tok_s"] == 40.0


def test_a_lone_valid_loadgen_run_is_a_lower_bound_and_a_bracket_has_its_width():
    import pandas as pd

    from harness.analysis.markdown import _bracket, _orderings
    from harness.analysis.slo import load_slo, serving

    base = {"concurrency_levels": "1", "decode_tok_s": 10.0, "prefill_tok_s": 100.0, "ttft_ms_p99": 50.0,
            "tpot_ms_p99": 20.0, "batch_size": 1, "ttft_n": 5, "tpot_n": 100, "loadgen_server_n": 500}
    ok = pd.DataFrame([{**base, "run_id": "a", "config": "m / a", "loadgen_server_tok_s": 30.0,
                        "loadgen_server_qps": 3.065, "loadgen_server_invalid_qps": None},
                       {**base, "run_id": "b", "config": "m / b", "loadgen_server_tok_s": 40.0,
                        "loadgen_server_qps": 4.0, "loadgen_server_invalid_qps": 8.0},
                       {**base, "run_id": "c", "config": "m / c", "loadgen_server_tok_s": 90.0,
                        "loadgen_server_qps": 9.0, "loadgen_server_invalid_qps": 12.0}])
    s = serving(ok, pd.DataFrame(columns=["run_id"]), [load_slo("server")]).set_index("run_id")
    assert s.loc["a", "slo_bound"] == "lower" and "a lower bound (>= 3.065 q/s" in s.loc["a", "slo_note"]
    assert s.loc["b", "slo_bound"] == "bracket" and "a bracket 2.00x wide" in s.loc["b", "slo_note"]
    t = s.reset_index().merge(ok[["run_id", "config"]], on="run_id")
    assert _bracket(t.iloc[0]) == "≥ 3.065 q/s (lower bound)" and _bracket(t.iloc[1]) == "[4, 8) q/s, 2.00x"
    lines = "\n".join(_orderings(t))
    assert "c > b" in lines  # b's INVALID (8) is below c's VALID (9): ordered
    assert "c > a" not in lines and "b > a" not in lines  # a is only known to be >= 3.065: no order with it
    assert "(2 of 3 pairs overlap: not ordered)" in lines
