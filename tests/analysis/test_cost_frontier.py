import pandas as pd
import pytest

from harness.analysis.cost import blended, price, usd_per_mtok
from harness.analysis.frontier import pareto_mask
from harness.analysis.hardware import Hardware, load_hardware, profiles


def test_cost_formula_on_hand_numbers():
    # $2/hour at 100 tok/s: 360,000 tokens per hour -> $5.5556 per million
    assert usd_per_mtok(2.0, 100.0) == pytest.approx(2.0 / 360_000 * 1e6)
    assert blended(4.0, 8.0) == pytest.approx((3 * 4 + 8) / 4)


def test_pricing_on_the_measuring_machine_and_projected_elsewhere():
    df = pd.DataFrame({"decode_tok_s": [100.0], "prefill_tok_s": [1000.0], "mem_bandwidth_gbs": [20.0]})
    here = price(df, Hardware("this-machine", 1.0, None))
    assert not here["projected"][0]
    assert here["usd_per_mtok_out"][0] == pytest.approx(1.0 / 360_000 * 1e6)
    there = price(df, Hardware("gpu", 1.0, 200.0))  # 10x the bandwidth: 10x the throughput, a tenth of the cost
    assert there["projected"][0]
    assert there["usd_per_mtok_out"][0] == pytest.approx(here["usd_per_mtok_out"][0] / 10)


def test_pareto_set_excludes_dominated_points_and_keeps_ties():
    cost = pd.Series([1.0, 2.0, 2.0, 3.0, 1.0, 5.0, None])
    quality = pd.Series([0.5, 0.7, 0.7, 0.6, 0.4, 0.9, 0.99])
    on = pareto_mask(cost, quality).tolist()
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
