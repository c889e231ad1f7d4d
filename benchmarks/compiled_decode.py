"""Eager vs compiled decode on the torch engine (issue 38): the plain loop with transformers' dynamic cache against a
static cache with a torch.compile'd step (harness/engines/static_decode.py; on a CPU inductor's default mode), on the
same model, precision, prompt and threads, measured by the harness's own measure_speed, interleaved (eager, compiled,
eager, ...) so that a machine's drift hits both. Prints decode tok/s of each, the compiled/eager ratio per round and
its median, and the first compile's seconds (paid once per shape, in a warm-up).

    python benchmarks/compiled_decode.py [--model smollm2-135m] [--precisions fp32,bf16] [--batches 1,16]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from _common import load


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from harness.engines.torch_engine import TorchEngine
    from harness.measure.speed import bench_prompt, measure_speed

    print(f"{args.model}, {args.prompt_tokens}-token prompt, {args.new_tokens} new tokens, {torch.get_num_threads()} "
          f"threads, {args.rounds} interleaved rounds of 3 timed generations each")
    for precision in args.precisions.split(","):
        model, tok, _ = load(args.model, precision)
        eager = TorchEngine(model, pad_id=tok.eos_token_id or 0, decode="eager")
        compiled = TorchEngine(model, pad_id=tok.eos_token_id or 0, decode="compiled")
        for batch in (int(b) for b in args.batches.split(",")):
            prompt = bench_prompt(tok, args.prompt_tokens, batch, eager.vocab_size)
            t0 = time.perf_counter()
            compiled.generate(prompt, args.new_tokens)  # the compile, once per shape
            compile_s = time.perf_counter() - t0
            same = torch.equal(compiled.generate(prompt, args.new_tokens), eager.generate(prompt, args.new_tokens))
            ratios, rates = [], {"eager": [], "compiled": []}
            for _ in range(args.rounds):
                for name, engine in (("eager", eager), ("compiled", compiled)):
                    rates[name].append(measure_speed(engine, prompt, args.new_tokens, 1, 3)["decode_tok_s"])
                ratios.append(rates["compiled"][-1] / rates["eager"][-1])
            print(f"{precision:>5} batch {batch:>3}: eager {statistics.median(rates['eager']):8.1f} tok/s, compiled "
                  f"{statistics.median(rates['compiled']):8.1f} tok/s; compiled/eager per round "
                  f"{', '.join(f'{r:.2f}' for r in ratios)} -> median {statistics.median(ratios):.2f}x; first compile "
                  f"{compile_s:.0f} s; {compiled.decode_path}; greedy tokens equal: {same}")


if __name__ == "__main__":
    main()
