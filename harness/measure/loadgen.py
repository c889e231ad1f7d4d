"""MLPerf LoadGen drives a serving engine: its Server scenario (Poisson arrivals at a target QPS) and Offline scenario
issue the queries, token latencies on (first token reported with FirstTokenComplete), and LoadGen's own summary
decides VALID or INVALID. The highest VALID QPS is found by a bounded search: geometric steps up from a start until a
run is INVALID, then bisection.

Query counts and durations are reduced from MLPerf's compliance minimums to fit the machine: a result here is a
performance run, not a compliant MLPerf submission, and says so with the counts actually used.

A serving engine is any object with `submit(request_id, prompt_ids, new_tokens, on_first_token, on_done)` that
admits a request as it arrives (continuous batching) and calls `on_first_token()` when the request's first token
exists and `on_done(n_tokens)` when it has all of them. `bench.loadgen` (conf/bench/loadgen.yaml) runs it in a run."""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

NOTICE = "performance run, not a compliant MLPerf submission"


@dataclass
class LoadgenResult:
    scenario: str
    target_qps: float
    valid: bool
    samples_per_s: float | None
    tokens_per_s: float | None
    ttft_p99_ms: float | None
    tpot_p99_ms: float | None
    queries: int  # queries LoadGen issued
    min_query_count: int
    min_duration_ms: int
    why_invalid: list[str] = field(default_factory=list)
    note: str = NOTICE


_FIELDS = {
    "samples_per_s": r"Completed samples per second\s*:\s*([\d.eE+-]+)",
    "tokens_per_s": r"Completed tokens per second\s*:\s*([\d.eE+-]+)",
    "ttft_p99_ns": r"99\.00 percentile first token latency \(ns\)\s*:\s*(\d+)",
    "tpot_p99_ns": r"99\.00 percentile time to output token \(ns\)\s*:\s*(\d+)",
    "samples_offline": r"Samples per second\s*:\s*([\d.eE+-]+)",
    "tokens_offline": r"Tokens per second\s*:\s*([\d.eE+-]+)",
}


def parse_summary(text: str) -> dict:
    """What LoadGen's mlperf_log_summary.txt says: its verdict, throughputs and p99 token latencies."""
    out: dict = {"valid": bool(re.search(r"Result is\s*:\s*VALID", text))}
    for key, pattern in _FIELDS.items():
        m = re.search(pattern, text)
        out[key] = float(m.group(1)) if m else None
    out["why_invalid"] = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("*") and "NOT" in ln]
    return out


def run_scenario(server, prompts: list[list[int]], new_tokens: int, scenario: str, target_qps: float,
                 ttft_ms: float | None, tpot_ms: float | None, min_query_count: int, min_duration_ms: int,
                 log_dir: Path, seed: int = 0, percentile: int = 99) -> LoadgenResult:
    """One LoadGen run against `server` (Server: Poisson arrivals at `target_qps`; Offline: all queries at once). A
    Server run is VALID when the TTFT and TPOT at `percentile` (the SLO profile's) are within the bounds."""
    import mlperf_loadgen as lg
    import numpy as np

    log_dir.mkdir(parents=True, exist_ok=True)
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Server if scenario == "server" else lg.TestScenario.Offline
    settings.mode = lg.TestMode.PerformanceOnly
    settings.use_token_latencies = True
    if scenario == "server":
        settings.server_target_qps = float(target_qps)
        if ttft_ms is not None:
            settings.ttft_latency = int(ttft_ms * 1e6)
        if tpot_ms is not None:
            settings.tpot_latency = int(tpot_ms * 1e6)
        settings.server_target_latency_ns = int((ttft_ms or 2000) * 1e6 + (tpot_ms or 200) * 1e6 * new_tokens)
        settings.server_target_latency_percentile = percentile / 100
    else:
        settings.offline_expected_qps = float(target_qps)
    settings.min_query_count = settings.max_query_count = int(min_query_count)
    settings.min_duration_ms = int(min_duration_ms)
    settings.schedule_rng_seed = settings.sample_index_rng_seed = settings.qsl_rng_seed = seed
    settings.performance_sample_count_override = len(prompts)

    issued = [0]
    token_buf = np.zeros(max(1, new_tokens), dtype=np.int32)  # LoadGen reads the response bytes it is pointed to
    ptr, size = token_buf.__array_interface__["data"][0], token_buf.nbytes
    lock = threading.Lock()

    def issue(queries) -> None:
        for q in queries:
            with lock:
                issued[0] += 1

            def first(qid=q.id) -> None:
                lg.FirstTokenComplete([lg.QuerySampleResponse(qid, ptr, 4)])

            def done(n_tokens: int, qid=q.id) -> None:
                lg.QuerySamplesComplete([lg.QuerySampleResponse(qid, ptr, size, int(n_tokens))])

            server.submit(q.id, prompts[q.index], new_tokens, first, done)

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(len(prompts), len(prompts), lambda idx: None, lambda idx: None)
    log = lg.LogSettings()
    log.log_output.outdir = str(log_dir)
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = False  # a trace of every event (10 MB a run): I/O beside the timed work, and never read
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, log)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    s = parse_summary((log_dir / "mlperf_log_summary.txt").read_text())
    per_s = s["samples_per_s"] if scenario == "server" else s["samples_offline"]
    tok_s = s["tokens_per_s"] if scenario == "server" else s["tokens_offline"]
    return LoadgenResult(scenario, float(target_qps), s["valid"], per_s, tok_s,
                         None if s["ttft_p99_ns"] is None else s["ttft_p99_ns"] / 1e6,
                         None if s["tpot_p99_ns"] is None else s["tpot_p99_ns"] / 1e6, issued[0], int(min_query_count),
                         int(min_duration_ms), s["why_invalid"])


class OutOfTime(Exception):
    """A search's next run would not finish within the time left to it (its message says so)."""


def find_max_valid_qps(run_at, start_qps: float, factor: float = 2.0, bisections: int = 3, max_runs: int = 10,
                       floor_qps: float = 0.0, ceiling_invalid: float | None = None
                       ) -> tuple[float | None, list[LoadgenResult], str]:
    """The highest QPS `run_at(qps) -> LoadgenResult` judges VALID: geometric steps from `start_qps` (up while VALID,
    down while INVALID) until the boundary is bracketed, then `bisections` halvings of the bracket; at most `max_runs`
    runs in all, never below `floor_qps` (a run there would outlast the time allowed to one run). `ceiling_invalid`:
    a QPS already known INVALID for this profile (a looser profile's INVALID run at the same arrivals), taken as the
    bracket's top without a run. `run_at` may raise OutOfTime instead of running: the search ends there. Returns (the
    highest VALID QPS found or None, every run made, why the search stopped short or "")."""
    runs: list[LoadgenResult] = []

    def at(qps: float) -> bool:
        runs.append(run_at(qps))
        return runs[-1].valid

    try:
        return _search(at, runs, start_qps, factor, bisections, max_runs, floor_qps, ceiling_invalid)
    except OutOfTime as stop:
        valid = [r.target_qps for r in runs if r.valid]
        return (max(valid) if valid else None), runs, str(stop)


def _search(at, runs, start_qps, factor, bisections, max_runs, floor_qps, ceiling_invalid):
    lo, hi = None, ceiling_invalid
    qps = min(start_qps, ceiling_invalid / factor) if ceiling_invalid else start_qps
    why = ""
    while len(runs) < max_runs and (lo is None or hi is None):
        if qps < floor_qps:
            why = f"not searched below {floor_qps:.3g} QPS (a run there would outlast max_run_s)"
            break
        if at(qps):
            lo = qps
            qps *= factor
        else:
            hi = qps
            qps /= factor
    for _ in range(bisections):
        if lo is None or hi is None or len(runs) >= max_runs:
            break
        mid = (lo + hi) / 2
        if at(mid):
            lo = mid
        else:
            hi = mid
    if not why and (lo is None or hi is None):
        why = f"the search's {max_runs} runs did not bracket the boundary"
    return lo, runs, why


def unloaded_bound_miss(slo, speed: dict | None) -> str:
    """Why no load can meet `slo`, from the run's own batch-1 measurement: continuous batching only adds work to each
    step and queueing only adds to the first token, so an unloaded median already over a bound is over it under any
    load. "" when the bounds are within reach (or nothing was measured)."""
    for key, bound, what in (("tpot_ms_p50", slo.tpot_ms, "TPOT"), ("ttft_ms_p50", slo.ttft_ms, "TTFT")):
        v = (speed or {}).get(key)
        if bound is not None and v is not None and v == v and float(v) > float(bound):
            return f"not searched: the unloaded batch-1 {what} median {float(v):.1f} ms is over its {bound:g} ms bound"
    return ""


def loadgen_columns(cfg, engine, tokenizer, profiles: list, log_dir: Path | None, run_id: str,
                    speed: dict | None = None) -> dict:
    """`bench.loadgen`: Offline, then for each SLO profile the highest QPS LoadGen judges VALID in its Server scenario,
    on the engine's continuous batching; the row's loadgen_* columns, and under `loadgen_profiles` one line per
    profile for the side table (harness/record/loadgen_profiles.py). `profiles`: objects with name, ttft_ms, tpot_ms
    and percentile (conf/slo/ profiles, loaded by the caller). `speed`: the run's batch-1 measurement, whose medians
    rule out a profile no load can meet (unloaded_bound_miss). The Server search starts at half the Offline
    throughput (`start_qps: auto`) or at `start_qps`; a tighter profile starts below the looser profile's first
    INVALID QPS. No run is started whose `min_query_count` queries would take longer than `max_run_s` at its QPS. Each
    LoadGen run's summary and detail logs are kept gzipped in `log_dir` (<csv stem>.loadgen/), named by scenario,
    profile and target QPS (the analysis draws QPS-latency curves from them). An engine without continuous batching
    gets no LoadGen run and says why in loadgen_note."""
    from harness.measure.speed import distinct_prompts
    from harness.core.cache_files import write_gzip

    from harness.config.schema import section

    b = section(cfg, "bench")
    lc = b.loadgen
    offline_n = lc.offline_queries
    max_run_s = float(lc.max_run_s or 0)
    note = (f"{NOTICE}: Server min_query_count {int(lc.min_query_count)}, min_duration {int(lc.min_duration_ms)} ms; "
            f"Offline {offline_n} queries")
    if not engine.capabilities.continuous_batching:
        return {"loadgen_note": f"the {engine.name} engine does not batch continuously: no LoadGen run"}
    prompts = distinct_prompts(tokenizer, int(b.prompt_tokens), int(lc.prompts), engine.vocab_size).tolist()
    if lc.mixed:  # a mixed-length set: the same windows cut to 1/4, 1/2, 3/4 and the whole prompt length
        prompts = [p[: max(1, len(p) * (1 + i % 4) // 4)] for i, p in enumerate(prompts)]
        note_len = f"prompts of {min(map(len, prompts))}-{max(map(len, prompts))} tokens"
    else:
        note_len = f"prompts of {int(b.prompt_tokens)} tokens"
    notes = [f"{note}; {note_len}, {int(b.new_tokens)} new tokens each (EOS ignored)"]
    out: dict = {}
    lines: list[dict] = []  # one per profile: the side table's
    server = engine.server(max_memory_percent=float(lc.cache_memory_percent), max_batch_tokens=lc.max_batch_tokens)
    tmp = Path(log_dir or ".") / f"{run_id}.tmp"

    def run(scenario: str, qps: float, slo=None, queries: int | None = None) -> LoadgenResult:
        folder = tmp / f"{scenario}-{slo.name if slo else 'offline'}-{qps:.4g}"
        r = run_scenario(server, prompts, int(b.new_tokens), scenario, qps, slo.ttft_ms if slo else None,
                         slo.tpot_ms if slo else None, int(queries or lc.min_query_count), int(lc.min_duration_ms),
                         folder, percentile=int(getattr(slo, "percentile", 99) if slo else 99))
        if server.errors:  # a query answered with nothing: LoadGen's figures would count it as served
            raise RuntimeError(f"{len(server.errors)} requests failed in the LoadGen run at {qps:.3g} QPS, e.g. "
                               f"{server.errors[0]}")
        if log_dir is not None:
            for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
                if (folder / name).exists():
                    write_gzip(Path(log_dir) / f"{run_id}.{folder.name}.{name}.gz", (folder / name).read_bytes())
        return r

    try:
        auto = str(lc.start_qps) == "auto"
        off = run("offline", 1.0 if auto else float(lc.start_qps), queries=offline_n)
        out.update(loadgen_offline_tok_s=off.tokens_per_s, loadgen_offline_queries=off.queries)
        start = (off.samples_per_s or 1.0) / 2 if auto else float(lc.start_qps)
        floor = int(lc.min_query_count) / max_run_s if max_run_s else 0.0
        budget = float(lc.search_budget_s or 0)
        searched: list[tuple] = []  # (slo, first INVALID QPS) of the profiles searched so far
        live = []
        for slo in profiles:
            miss = unloaded_bound_miss(slo, speed)
            if miss:
                notes.append(f"{slo.name}: {miss}")
                lines.append({"profile": slo.name, "runs": 0})
            else:
                live.append(slo)
        t_search = time.perf_counter()
        for i, slo in enumerate(live):
            name = slo.name
            # this profile's share of what is left of the budget; its first run is always made
            share = (budget - (time.perf_counter() - t_search)) / (len(live) - i) if budget else None
            t_profile, made = time.perf_counter(), [0]

            def run_at(q, slo=slo, share=share, t_profile=t_profile, made=made):
                expected = int(lc.min_query_count) / q
                spent = time.perf_counter() - t_profile
                if made[0] and share is not None and spent + expected > share:
                    raise OutOfTime(f"search_budget_s ended the search after {made[0]} runs (a run at {q:.3g} QPS "
                                    f"takes >= {expected:.0f} s; {max(0.0, share - spent):.0f} s were left)")
                made[0] += 1
                return run("server", q, slo)

            looser = [q for s_, q in searched if q is not None and _at_least_as_loose(s_, slo)]
            best, runs, why = find_max_valid_qps(run_at, start, bisections=int(lc.bisections),
                                                 max_runs=int(lc.max_runs), floor_qps=floor,
                                                 ceiling_invalid=min(looser) if looser else None)
            invalid = min((r.target_qps for r in runs if not r.valid), default=None)
            searched.append((slo, invalid if invalid is not None else min(looser, default=None)))
            if why:
                notes.append(f"{name}: {why}")
            at = next((r for r in runs if r.valid and r.target_qps == best), None)
            lines.append({"profile": name, "qps": best, "invalid_qps": invalid,
                          "tok_s": at.tokens_per_s if at else None, "ttft_p99_ms": at.ttft_p99_ms if at else None,
                          "tpot_p99_ms": at.tpot_p99_ms if at else None, "n": at.queries if at else None,
                          "runs": len(runs)})
    finally:
        server.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return {"loadgen_note": "; ".join(notes), **out, "loadgen_profiles": lines}


def _at_least_as_loose(a, b) -> bool:
    """Profile `a` bounds nothing that `b` leaves free and each of its bounds is at least `b`'s: a QPS INVALID under
    `a` is INVALID under `b`."""
    return all(x is None or (y is not None and x >= y) for x, y in ((a.ttft_ms, b.ttft_ms), (a.tpot_ms, b.tpot_ms)))
