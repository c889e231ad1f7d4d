"""Diagnostic beside the peer check: does the request body explain why the harness's serving latencies on vLLM read
lower than `bench serve`'s? One vLLM server; the harness's LoadGen client sends the same Poisson schedule (seed i in
pair i) twice, once with its own body (A: prompt as token ids, `min_tokens`, `return_token_ids`) and once with the body
`bench serve` sends (B: the same prompt as text, `repetition_penalty` 1.0, `logprobs` null, usage in the stream; a
token is a chunk with a choice, as `bench serve` counts). Greedy, EOS ignored, in both. Which body goes first
alternates. Prints TTFT/TPOT p50/p99 per run and A/B of the medians over pairs. Run alone on the machine.

    python benchmarks/vllm_request_body_ab.py [--pairs 3] [--requests 300] [--rate 4]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path


def bench_serve_body(texts: dict):
    """A replacement for VllmEngine._stream that sends `bench serve`'s completions body."""
    def stream(self, prompt, new_tokens, on_token=None):
        body = {"model": "harness", "prompt": texts[tuple(prompt)], "repetition_penalty": 1.0,
                "max_tokens": new_tokens, "logprobs": None, "stream_options": {"include_usage": True},
                "ignore_eos": True, "temperature": 0.0}
        n = 0
        for event in self.process.stream("/v1/completions", body):
            if event.get("choices"):
                n += 1
                if on_token is not None:
                    on_token(n)
        return [0] * n
    return stream


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rate", type=float, default=4.0)
    args = ap.parse_args()

    import numpy as np

    import harness.engines.vllm_engine as vllm_engine
    from harness.engines.base import build_engine
    from harness.measure.loadgen import run_scenario
    from harness.measure.speed import distinct_prompts
    from harness.precision.registry import get_scheme

    from _common import compose

    built = build_engine(compose("model=smollm2-135m", "precision=bf16", "engine=vllm"), get_scheme("bf16"), "cpu",
                         "vllm")
    engine = built.engine
    prompts = distinct_prompts(built.tokenizer, 64, 64, engine.vocab_size).tolist()
    bodies = {"A": vllm_engine.VllmEngine._stream,
              "B": bench_serve_body({tuple(p): built.tokenizer.decode(p) for p in prompts})}
    names = ("ttft_p50", "ttft_p99", "tpot_p50", "tpot_p99")
    results: dict[str, list[list[float]]] = {"A": [], "B": []}
    print(f"{args.requests} requests at {args.rate:g}/s a run; body  pair  " + "  ".join(names) + "  (ms)")
    try:
        with tempfile.TemporaryDirectory(dir=engine.process.home) as tmp:
            for i in range(args.pairs):
                for body in ("A", "B") if i % 2 == 0 else ("B", "A"):
                    vllm_engine.VllmEngine._stream = bodies[body]
                    server = engine.server()
                    try:
                        run_scenario(server, prompts, 16, "server", args.rate, 60_000, 10_000, args.requests, 0,
                                     Path(tmp) / f"{body}{i}", seed=i)
                    finally:
                        server.close()
                    done = [t for t in server.timings.values() if t[3] is not None]
                    ttft = np.array([t[1] - t[0] for t in done]) * 1e3
                    tpot = np.array([(t[2] - t[1]) / (t[4] - 1) for t in done]) * 1e3
                    row = [float(np.percentile(ttft, 50)), float(np.percentile(ttft, 99)),
                           float(np.percentile(tpot, 50)), float(np.percentile(tpot, 99))]
                    results[body].append(row)
                    print(f"{body} {i}  " + "  ".join(f"{x:.1f}" for x in row) + f"  (n = {len(done)})", flush=True)
    finally:
        vllm_engine.VllmEngine._stream = bodies["A"]
        engine.close()
    for k, name in enumerate(names):
        a = statistics.median(r[k] for r in results["A"])
        b = statistics.median(r[k] for r in results["B"])
        print(f"{name}: harness body {a:.1f} ms / bench serve body {b:.1f} ms = {a / b:.3f}")


if __name__ == "__main__":
    main()
