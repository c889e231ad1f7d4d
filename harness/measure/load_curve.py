"""The load curve: decode measured at several concurrency levels in one loaded model.

At concurrency c, c requests with different prompts of one length (successive WikiText-2 windows) arrive together,
are prefilled in one batch and decoded together (a static batch, as in MLPerf's Offline scenario and a serving
engine's steady state at c running sequences). Per level: TTFT and per-token latency percentiles (each token of
the batch arrives at one step), decode and prefill throughput of the whole batch, peak memory. Each level gets a
short untimed warm-up at its shape (prefill + one step), then `repeats` timed generations.

Levels are tried in increasing order and the curve stops early, with the reason recorded, when throughput stops
rising (the last level gained less than `min_gain` over the best), when the next level's KV cache would not fit in
the memory available now, or when the next level could take longer than `level_time_s` (its generations, each at
most c / c_previous times as long as one at the previous level, plus the warm-up)."""
from __future__ import annotations

import time

from harness.measure.memory import available_bytes, peak_rss_mb
from harness.measure.speed import distinct_prompts, measure_speed

from harness.config.schema import BenchConfig
from harness.measure.levels import LEVEL_KEYS


def free_bytes(device: str) -> int | None:
    """Memory the next level's KV cache can take: free GPU memory on CUDA, available host memory otherwise."""
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.mem_get_info()[0]
    return available_bytes()


def kv_cache_bytes(kv_per_token: int, concurrency: int, tokens: int) -> int:
    return kv_per_token * concurrency * tokens


def level(concurrency: int, speed: dict, kv_per_token: int, tokens: int, level_s: float,
          cuda_peak_mb: float | None = None) -> dict:
    """One level of the curve from a `measure_speed` result at that concurrency."""
    return {"concurrency": concurrency, **{k: speed[k] for k in LEVEL_KEYS}, "peak_rss_mb": peak_rss_mb(),
            "kv_cache_mb": kv_cache_bytes(kv_per_token, concurrency, tokens) / 2**20, "level_s": level_s,
            "cuda_peak_alloc_mb": cuda_peak_mb}


def _cuda_reset(device) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()


def _cuda_peak_mb(device) -> float | None:
    if not str(device).startswith("cuda"):
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def load_curve(engine, tokenizer, bench, memory_bytes: int | None = None,
               known: dict | None = None) -> tuple[list, str]:
    """Measure every level of `bench.concurrency` until a stop rule fires. Returns (levels, why the curve ended).
    `known`: levels already measured with these prompts (concurrency -> level), taken as they are."""
    bench = BenchConfig.of(bench)
    levels = bench.levels
    cap = engine.capabilities.max_batch
    prompt_tokens, new_tokens = bench.prompt_tokens, bench.new_tokens
    repeats = bench.curve_generations
    min_gain, budget = float(bench.min_gain), float(bench.level_time_s)
    prompts = distinct_prompts(tokenizer, prompt_tokens, levels[-1], engine.vocab_size)
    kv_per_token = engine.kv_bytes_per_token()
    out: list[dict] = []
    best = 0.0
    for i, c in enumerate(levels):
        if cap is not None and c > cap:
            return out, f"the {engine.name} engine decodes at most {cap} sequences at once (level {c})"
        kv = kv_cache_bytes(kv_per_token, c, prompt_tokens + new_tokens)
        free = free_bytes(engine.device) if memory_bytes is None else memory_bytes
        if free is not None and kv > 0.8 * free and not (known and c in known):
            return out, (f"memory: level {c} needs {kv / 2**20:.0f} MiB of KV cache, over 80% of the "
                         f"{free / 2**20:.0f} MiB available")
        if out:  # an upper bound: one generation's time grows at most in proportion to the sequences
            prev = out[-1]
            expected = (repeats + 0.5) * prev["e2e_s_p50"] * c / prev["concurrency"]
            if expected > budget:
                return out, (f"time: level {c} expected to take up to ~{expected:.0f} s ({repeats} generations; one "
                             f"took {prev['e2e_s_p50']:.1f} s at {prev['concurrency']}), over "
                             f"bench.level_time_s={budget:g}")
        if known and c in known:
            out.append(known[c])
            best = max(best, known[c]["decode_tok_s"])
            continue
        t0 = time.perf_counter()
        _cuda_reset(engine.device)
        try:
            speed = measure_speed(engine, prompts[:c], new_tokens, warmup=1, repeats=repeats, warmup_tokens=2)
        except (MemoryError, RuntimeError) as exc:  # torch.cuda.OutOfMemoryError is a RuntimeError
            if str(engine.device).startswith("cuda"):
                import torch

                torch.cuda.empty_cache()
            return out, f"level {c} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        out.append(level(c, speed, kv_per_token, prompt_tokens + new_tokens, time.perf_counter() - t0,
                         _cuda_peak_mb(engine.device)))
        rate = speed["decode_tok_s"]
        if i and rate < (1 + min_gain) * best:
            return out, (f"throughput stopped rising: {rate:.1f} tok/s at {c} vs {best:.1f} at a lower level "
                         f"(gain under {min_gain:.0%})")
        best = max(best, rate)
    return out, "all levels measured"


def curve_columns(levels: list[dict], why: str) -> dict:
    """The row's summary of its curve: best decode throughput and the concurrency that reached it."""
    if not levels:
        return {"concurrency_levels": "", "curve_stop": why}
    top = max(levels, key=lambda lv: lv["decode_tok_s"])
    return {"max_decode_tok_s": top["decode_tok_s"], "max_decode_concurrency": top["concurrency"],
            "concurrency_levels": ",".join(str(lv["concurrency"]) for lv in levels), "curve_stop": why}
