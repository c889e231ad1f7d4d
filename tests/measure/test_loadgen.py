"""MLPerf LoadGen drives a serving engine: with a fake engine of known capacity (8 slots, 10 ms prefill, 10 ms a
token, 4 tokens: 40 ms a request, so at most 200 queries/s), LoadGen's own verdict is VALID well below that capacity and
INVALID above it (the queue grows without bound), and the search brackets the boundary to one bisection step. A p99 needs enough
queries: LoadGen's early stopping refuses one from too few (about 460 for a p99 with no sample over the bound)."""
import threading
import time

import pytest

lg = pytest.importorskip("mlperf_loadgen", reason="mlcommons-loadgen not installed (pip install -e '.[serving]')")

from harness.measure.loadgen import NOTICE, find_max_valid_qps, parse_summary, run_scenario  # noqa: E402

SLOTS, PREFILL_S, STEP_S, TOKENS = 8, 0.010, 0.010, 4  # sleeps of 10 ms: scheduling jitter is small beside them
CAPACITY_QPS = SLOTS / (PREFILL_S + (TOKENS - 1) * STEP_S)  # 200


class FakeServer:
    """Continuous batching in miniature: a request takes a free slot as soon as one exists (else it queues)."""

    def __init__(self):
        self.slots = threading.Semaphore(SLOTS)

    def submit(self, request_id, prompt_ids, new_tokens, on_first_token, on_done):
        def serve():
            with self.slots:
                time.sleep(PREFILL_S)
                on_first_token()
                time.sleep(STEP_S * (new_tokens - 1))
                on_done(new_tokens)

        threading.Thread(target=serve, daemon=True).start()


def _run(qps, tmp_path, scenario="server"):
    return run_scenario(FakeServer(), [[1, 2, 3]] * 8, TOKENS, scenario, qps, ttft_ms=60, tpot_ms=30,
                        min_query_count=500, min_duration_ms=500, log_dir=tmp_path / f"{scenario}-{qps:g}")


def test_valid_below_capacity_and_invalid_above(tmp_path):
    low = _run(0.3 * CAPACITY_QPS, tmp_path)
    assert low.valid and low.queries >= 500 and low.ttft_p99_ms < 60 and low.note == NOTICE, low
    assert low.samples_per_s == pytest.approx(0.3 * CAPACITY_QPS, rel=0.25)
    high = _run(2.0 * CAPACITY_QPS, tmp_path)
    assert not high.valid and high.ttft_p99_ms > 60


def test_the_search_brackets_the_boundary(tmp_path):
    best, runs, why = find_max_valid_qps(lambda q: _run(q, tmp_path), start_qps=60, factor=2, bisections=2, max_runs=8)
    invalid = min(r.target_qps for r in runs if not r.valid)
    assert best is not None and best < CAPACITY_QPS and invalid <= 2 * CAPACITY_QPS  # never VALID past capacity
    last_step = max(r.target_qps for r in runs) / 2  # the geometric step that crossed the boundary
    assert 0 < invalid - best <= last_step / 4 + 1e-9 and why == ""  # two bisections: a quarter of that step


def _judge(boundary):
    """A stand-in for LoadGen with a sharp boundary: VALID strictly below `boundary` QPS."""
    from harness.measure.loadgen import LoadgenResult

    return lambda q: LoadgenResult("server", q, q < boundary, q, 4 * q, 1.0, 1.0, 500, 500, 0)


def test_the_search_stops_at_its_floor_and_says_so():
    best, runs, why = find_max_valid_qps(_judge(1.0), start_qps=10, bisections=2, max_runs=10, floor_qps=2.0)
    assert best is None and [r.target_qps for r in runs] == [10, 5, 2.5] and "below 2 QPS" in why


def test_a_looser_profiles_invalid_qps_caps_a_tighter_search():
    best, runs, why = find_max_valid_qps(_judge(30.0), start_qps=100, bisections=2, max_runs=10, ceiling_invalid=80)
    qs = [r.target_qps for r in runs]
    assert qs[0] == 40 and max(qs) < 80 and 20 <= best < 30 and why == ""  # never ran at or above the known INVALID


def test_an_unloaded_median_over_a_bound_rules_the_profile_out():
    from types import SimpleNamespace

    from harness.measure.loadgen import unloaded_bound_miss

    interactive = SimpleNamespace(name="interactive", ttft_ms=450, tpot_ms=40)
    assert "TPOT median 58.0 ms is over its 40 ms bound" in unloaded_bound_miss(
        interactive, {"tpot_ms_p50": 58.0, "ttft_ms_p50": 100.0})
    assert unloaded_bound_miss(interactive, {"tpot_ms_p50": 20.0, "ttft_ms_p50": 100.0}) == ""
    assert "TTFT" in unloaded_bound_miss(interactive, {"tpot_ms_p50": 20.0, "ttft_ms_p50": 900.0})


def test_offline_reports_its_throughput(tmp_path):
    off = _run(CAPACITY_QPS, tmp_path, scenario="offline")
    assert off.samples_per_s == pytest.approx(CAPACITY_QPS, rel=0.4)


def test_summary_parsing():
    text = ("Result is : INVALID\n  Performance constraints satisfied : NO\n"
            "Completed samples per second    : 12.5\nCompleted tokens per second: 400.0\n"
            "99.00 percentile first token latency (ns)   : 250000000\n"
            "99.00 percentile time to output token (ns) : 30000000\n * TTFT constraint NOT met\n")
    s = parse_summary(text)
    assert not s["valid"] and s["samples_per_s"] == 12.5 and s["ttft_p99_ns"] == 250000000
    assert s["why_invalid"] == ["* TTFT constraint NOT met"]


def test_loadgen_drives_the_torch_engine_through_continuous_batching(tmp_path):
    """LoadGen's Offline scenario over the torch engine's continuous batching, on the tiny model: every query is
    answered with its tokens and LoadGen reports the throughput."""
    from harness.engines.base import build_engine
    from harness.precision.registry import get_scheme
    from tests.conftest import compose_run as _cfg

    built = build_engine(_cfg("tiny-random", "fp32", "torch"), get_scheme("fp32"), "cpu", "torch")
    server = built.engine.server()
    try:
        out = run_scenario(server, [[1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12]] * 4, 8, "offline", 50.0, None, None,
                           min_query_count=64, min_duration_ms=200, log_dir=tmp_path / "offline")
    finally:
        server.close()
        built.engine.close()
    assert out.queries >= 64 and out.samples_per_s > 0 and out.tokens_per_s == pytest.approx(8 * out.samples_per_s,
                                                                                               rel=0.05)


def test_bench_loadgen_fills_the_row_and_keeps_loadgens_logs(tmp_path):
    from harness.record.store import read_rows
    from tests.conftest import run_harness

    out = tmp_path / "r.csv"
    proc = run_harness("model=tiny-random", "bench=loadgen", "eval=none", "quality=none", "bench.new_tokens=4",
                       "bench.prompt_tokens=16", "bench.loadgen.start_qps=50", "bench.loadgen.max_runs=1",
                       "bench.loadgen.bisections=0", "bench.loadgen.min_duration_ms=500", "bench.loadgen.prompts=8",
                       "bench.loadgen.profiles=[server]", "bench.loadgen.mixed=true", f"results.path={out}")
    (row,) = read_rows(out)
    assert row["status"] == "ok" and "not a compliant MLPerf submission" in row["loadgen_note"]
    assert "prompts of 4-16 tokens, 4 new tokens each" in row["loadgen_note"]  # the mixed-length set
    assert float(row["loadgen_offline_tok_s"]) > 0
    from harness.record.loadgen_profiles import PROFILES

    (line,) = PROFILES.read(out).to_dict("records")  # the profile's search is a line of the side table, not a column
    assert line["run_id"] == row["run_id"] and line["profile"] == "server" and line["runs"] == 1
    logs = sorted(p.name for p in (tmp_path / "r.loadgen").iterdir())
    assert any(n.endswith("offline-offline-50.mlperf_log_summary.txt.gz") for n in logs)
    assert any("server-server-50.mlperf_log_detail.txt.gz" in n for n in logs) and "  loadgen   " in proc.stdout
    from harness.analysis.report import write_report

    md = write_report(out, tmp_path / "report", hardware=["this-machine"], slos=["server", "offline"]).read_text()
    assert "### MLPerf LoadGen" in md and "LoadGen Offline" in md
    assert "![QPS-latency curves](r_qps_latency.png)" in md and (tmp_path / "report" / "r_qps_latency.png").stat().st_size
    assert "Every LoadGen run (2: 1 Server, 1 Offline)" in md  # read back from the kept summaries
