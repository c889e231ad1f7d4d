"""Engines side by side: decode tokens/s of each scheme as a ratio to torch fp32 and to llama.cpp gguf-q8_0, all
loaded in one process and measured interleaved (round after round, every scheme once per round), so the machine's
drift hits them alike. Each is built through `build_engine`, as a run builds it (conversions come from the cache).

    python benchmarks/engines.py [--model smollm2-135m] [--rounds 5] [--schemes ov-int8,ort-int4,...]
"""
from __future__ import annotations

import argparse
import statistics

from _common import ROOT

DEFAULT = "fp32,gguf-q8_0,ov-fp32,ov-fp16,ov-int8,ov-int4,ov-int4-ch,ort-fp32,ort-int8,ort-int4"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--schemes", default=DEFAULT)
    ap.add_argument("--prompt-tokens", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    from harness.api import compose
    from harness.engines.base import build_engine, resolve_engine
    from harness.measure.speed import bench_prompt, measure_speed
    from harness.precision.registry import get_scheme

    built = {}
    for name in args.schemes.split(","):
        cfg = compose([f"model={args.model}", f"precision={name}"])
        scheme = get_scheme(name)
        built[name] = build_engine(cfg, scheme, "cpu", resolve_engine("auto", scheme))
    tok = next(iter(built.values())).tokenizer
    prompt = bench_prompt(tok, args.prompt_tokens, 1, min(b.engine.vocab_size for b in built.values()))
    for b in built.values():  # warm-up
        b.engine.generate(prompt, args.new_tokens)
    speeds = {name: [] for name in built}
    for _ in range(args.rounds):
        for name, b in built.items():
            speeds[name].append(measure_speed(b.engine, prompt, args.new_tokens, 0, 1)["decode_tok_s"])
    med = {name: statistics.median(v) for name, v in speeds.items()}
    print(f"{args.model}: decode tok/s, median of {args.rounds} interleaved rounds ({args.prompt_tokens}-token "
          f"prompt, {args.new_tokens} new tokens)")
    print(f"{'scheme':<12} {'engine':<12} {'tok/s':>7} {'min-max':>13} {'x fp32':>7} {'x q8_0':>7} "
          f"{'MB':>7} {'convert s':>9}")
    for name, b in built.items():
        lo, hi = min(speeds[name]), max(speeds[name])
        conv = f"{b.convert_s:.1f}" if b.convert_s else "-"
        print(f"{name:<12} {b.engine.name:<12} {med[name]:7.1f} {lo:6.1f}-{hi:<6.1f} "
              f"{med[name] / med.get('fp32', float('nan')):7.2f} {med[name] / med.get('gguf-q8_0', float('nan')):7.2f} "
              f"{b.proof.weight_bytes / 1e6:7.1f} {conv:>9}")


if __name__ == "__main__":
    main()
