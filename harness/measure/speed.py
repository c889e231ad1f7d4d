"""Speed: warm-up, then repeated greedy generations of a fixed length, timed per step by a hook.

TTFT is the prefill forward plus the first token; each later token's latency is the interval between consecutive
hook calls (measured, not derived by subtraction). On CUDA the hook records CUDA events and the intervals are read
after one synchronise; on CPU it reads perf_counter. No I/O happens inside the timed region.
"""
from __future__ import annotations

import statistics
import numpy as np
from harness.measure.levels import PERCENTILES


def _cv(values) -> float:
    values = list(values)
    if len(values) < 2 or statistics.fmean(values) == 0:
        return 0.0
    return statistics.stdev(values) / statistics.fmean(values)


def measure_speed(engine, prompt_ids, new_tokens: int, warmup: int, repeats: int, warmup_tokens: int | None = None,
                  energy=None) -> dict:
    """`warmup` untimed generations of `warmup_tokens` tokens (default: new_tokens), then `repeats` timed ones.
    `energy` (harness/measure/energy.py EnergyMeter): its counter is read before the first timed generation and after
    the last one's synchronise, never inside a timed step."""
    if new_tokens < 2:
        raise ValueError("bench.new_tokens must be >= 2 to time decode steps")
    if repeats < 1:
        raise ValueError("bench.repeats must be >= 1")
    batch, prompt_len = prompt_ids.shape
    for _ in range(warmup):
        engine.generate(prompt_ids, warmup_tokens or new_tokens)
    timer = engine.timer()
    ttft, decode_s, e2e, steps = [], [], [], []
    before = energy.read() if energy is not None else None
    for _ in range(repeats):
        timer.start()
        engine.generate(prompt_ids, new_tokens, on_token=timer)
        iv = timer.intervals_ms()
        if len(iv) != new_tokens:
            raise RuntimeError(f"engine produced {len(iv)} tokens, expected {new_tokens}")
        ttft.append(iv[0])
        steps.extend(iv[1:])
        decode_s.append(sum(iv[1:]) / 1e3)
        e2e.append(sum(iv) / 1e3)
    after = energy.read() if energy is not None else None
    steps_arr = np.array(steps)
    decode_rates = [batch * (new_tokens - 1) / s for s in decode_s]
    extra = {}
    if energy is not None:
        joules = energy.joules(before, after)
        tokens = repeats * batch * new_tokens
        extra = {"energy_j_per_token": joules / tokens if joules is not None else None,
                 "energy_note": (f"{energy.source}: {joules:.2f} J over {sum(e2e):.2f} s of {repeats} timed "
                                 f"generations ({tokens} tokens, prefill included)") if joules is not None else
                 energy.reason}
    return {**extra,
        **{f"ttft_ms_p{p}": float(np.percentile(ttft, p)) for p in PERCENTILES},
        **{f"tpot_ms_p{p}": float(np.percentile(steps_arr, p)) for p in PERCENTILES},
        "tpot_cv": _cv(steps),
        "ttft_n": len(ttft),  # samples behind the TTFT percentiles (one per timed generation)
        "tpot_n": len(steps),  # samples behind the TPOT percentiles (every decode step of every generation)
        "decode_tok_s": float(np.median(decode_rates)),
        "prefill_tok_s": float(np.median([batch * prompt_len / (t / 1e3) for t in ttft])),
        "e2e_s_p50": float(np.median(e2e)),
        "e2e_cv": _cv(e2e),
    }


def bench_prompt(tokenizer, prompt_tokens: int, batch_size: int, vocab_size: int):
    """A fixed prompt: the first `prompt_tokens` tokens of the shipped WikiText-2 test text, repeated per row."""
    return distinct_prompts(tokenizer, prompt_tokens, 1, vocab_size).repeat(batch_size, 1)


def distinct_prompts(tokenizer, prompt_tokens: int, n: int, vocab_size: int):
    """`n` different prompts of one length: successive `prompt_tokens`-token windows of the WikiText-2 test text
    (the first is `bench_prompt`'s)."""
    import torch

    from harness.core.corpus import wikitext_test

    text = wikitext_test(prompt_tokens * n * 16)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: prompt_tokens * n]
    if len(ids) < prompt_tokens * n:
        raise ValueError(f"{n} prompts of bench.prompt_tokens={prompt_tokens} are longer than the shipped text")
    ids = [i % vocab_size for i in ids]
    return torch.tensor(ids, dtype=torch.long).view(n, prompt_tokens)
