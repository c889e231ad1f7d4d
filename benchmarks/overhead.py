"""Target 2: harness overhead. Decode tokens/s measured by the harness (per-step hook, percentiles) vs a bare greedy
loop written here, on the same model, precision, prompt, new tokens and threads. Prints the ratio.

    python benchmarks/overhead.py [--precision fp32] [--new-tokens 64] [--repeats 7]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from _common import load


@torch.no_grad()
def bare_decode_tok_s(model, prompt, new_tokens: int) -> float:
    out = model(input_ids=prompt, use_cache=True)
    nxt = out.logits[:, -1:].argmax(-1)
    cache = out.cache
    t0 = time.perf_counter()
    for _ in range(new_tokens - 1):
        out = model(input_ids=nxt, cache=cache, use_cache=True)
        nxt = out.logits[:, -1:].argmax(-1)
        cache = out.cache
    return (new_tokens - 1) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    from harness.measure.speed import bench_prompt, measure_speed

    model, tok, engine = load(args.model, args.precision)
    prompt = bench_prompt(tok, args.prompt_tokens, 1, engine.vocab_size)
    bare, harness = [], []
    for _ in range(2):  # warm-up of both
        bare_decode_tok_s(model, prompt, args.new_tokens)
        engine.generate(prompt, args.new_tokens)
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        bare.append(bare_decode_tok_s(model, prompt, args.new_tokens))
        harness.append(measure_speed(engine, prompt, args.new_tokens, 0, 1)["decode_tok_s"])
    b, h = statistics.median(bare), statistics.median(harness)
    print(f"{args.model} {args.precision}, prompt {args.prompt_tokens}, {args.new_tokens} new tokens, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"bare loop : {b:8.2f} decode tok/s")
    print(f"harness   : {h:8.2f} decode tok/s")
    print(f"ratio     : {h / b:.4f} (harness / bare); overhead {100 * (1 - h / b):+.2f}%")


if __name__ == "__main__":
    main()
