"""The load curve on the tiny random model: each level's columns, and every stop rule with its recorded reason."""
import pytest
from omegaconf import OmegaConf

from harness.config.schema import levels_of
from harness.measure.load_curve import curve_columns, load_curve
from tests.conftest import compose_run as _cfg


@pytest.fixture(scope="module")
def built():
    from harness.engines.base import build_engine
    from harness.precision.registry import get_scheme

    b = build_engine(_cfg("tiny-random", "fp32", "torch"), get_scheme("fp32"), "cpu", "torch")
    yield b
    b.engine.close()


def _bench(**kw):
    return OmegaConf.create({"prompt_tokens": 16, "new_tokens": 4, "batch_size": 1, "repeats": 2,
                             "concurrency": [1, 2, 4], "min_gain": 0.0, "level_time_s": 60, **kw})


def test_every_level_is_measured_with_its_percentiles(built):
    levels, why = load_curve(built.engine, built.tokenizer, _bench(min_gain=-1.0))
    assert [lv["concurrency"] for lv in levels] == [1, 2, 4] and why == "all levels measured"
    for lv in levels:  # 2 timed generations per level, 3 decode steps each
        assert lv["ttft_n"] == 2 and lv["tpot_n"] == 6 and lv["decode_tok_s"] > 0 and lv["peak_rss_mb"] > 0
    assert levels[2]["kv_cache_mb"] == pytest.approx(4 * levels[0]["kv_cache_mb"])
    cols = curve_columns(levels, why)
    assert cols["concurrency_levels"] == "1,2,4" and cols["max_decode_tok_s"] == max(lv["decode_tok_s"]
                                                                                     for lv in levels)


def test_stop_when_throughput_stops_rising(built):
    levels, why = load_curve(built.engine, built.tokenizer, _bench(min_gain=1000.0))
    assert len(levels) == 2 and why.startswith("throughput stopped rising")


def test_stop_before_a_level_that_would_not_fit_in_memory(built):
    kv = built.engine.kv_bytes_per_token() * 20  # one sequence of 16 + 4 tokens
    levels, why = load_curve(built.engine, built.tokenizer, _bench(min_gain=-1.0), memory_bytes=int(2.5 * kv / 0.8))
    assert [lv["concurrency"] for lv in levels] == [1, 2] and why.startswith("memory: level 4 needs")


def test_stop_before_a_level_expected_to_exceed_its_time(built):
    levels, why = load_curve(built.engine, built.tokenizer, _bench(min_gain=-1.0, level_time_s=1e-6))
    assert len(levels) == 1 and why.startswith("time: level 2")


def test_known_levels_are_taken_as_they_are(built):
    known = {1: {"concurrency": 1, "decode_tok_s": 1e9, "e2e_s_p50": 0.001}}
    levels, why = load_curve(built.engine, built.tokenizer, _bench(concurrency=[1, 2]), known=known)
    assert levels[0] is known[1] and why.startswith("throughput stopped rising")


@pytest.mark.parametrize("bad", [0, [], [1, -4], "4", [True]])
def test_bad_levels_are_refused(bad):
    with pytest.raises(ValueError, match="bench.concurrency"):
        levels_of(bad)


class _Clock:
    """A timer whose marks are a known schedule (ms): what the speed measurement must read from them is known."""

    def __init__(self, schedule):
        self.schedule, self.marks, self.t = iter(schedule), [], 0.0

    def start(self):
        self.marks = [self.t]

    def __call__(self):
        self.t += next(self.schedule)
        self.marks.append(self.t)

    def intervals_ms(self):
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


class _KnownSteps:
    """An engine whose steps take known times: generation 1 has TTFT 100 ms and steps of 10 ms, generation 2 TTFT
    200 ms and steps of 20 ms."""
    vocab_size = 16

    def __init__(self):
        self.clock = _Clock([100, 10, 10, 10, 200, 20, 20, 20])

    def timer(self):
        return self.clock

    def generate(self, ids, new_tokens, on_token=None):
        for _ in range(new_tokens):
            if on_token:
                on_token()


def test_speed_reads_the_known_step_times():
    import torch

    from harness.measure.speed import measure_speed

    out = measure_speed(_KnownSteps(), torch.zeros((1, 8), dtype=torch.long), new_tokens=4, warmup=0, repeats=2)
    assert out["ttft_ms_p50"] == 150.0 and out["ttft_n"] == 2  # TTFT: the first interval of each generation only
    assert out["tpot_ms_p50"] == 15.0 and out["tpot_n"] == 6  # TPOT pools every later step of both generations
    assert out["decode_tok_s"] == 75.0  # median of 3 tokens / 30 ms and 3 tokens / 60 ms: 100 and 50 tok/s
    assert out["prefill_tok_s"] == 60.0  # median of 8 tokens / 100 ms and 8 tokens / 200 ms: 80 and 40 tok/s
