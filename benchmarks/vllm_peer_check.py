"""Peer check of the vllm engine's serving figures: vLLM's own `bench serve` and the harness's client (MLPerf LoadGen's
Server scenario through the engine's serving front) against ONE vLLM server started by the harness, at the same
Poisson request rate, request count, prompt and output lengths (outputs of fixed length, EOS ignored). Prints TTFT and
TPOT p50/p99 from both and their ratios; the target is every ratio within 10%. Run alone (nothing else on the
machine): the two clients take turns, `--rounds` times, interleaved; each figure's round-to-round spread per
client is printed beside the ratio (the noise a ratio is read against).

    python benchmarks/vllm_peer_check.py [--model smollm2-135m] [--precision bf16] [--rate 2] [--requests 200]

Arrivals: each round draws a new Poisson schedule in both clients (`bench serve --seed i`, LoadGen's schedule seed i):
a p99 of 600 requests depends on the schedule's bursts, so one schedule replayed every round would compare one draw.
Requests: the same in both. `bench serve` reads the harness's own prompts (its WikiText-2 windows, as text, through
its `custom` dataset, no chat template) and asks for greedy decoding (`--temperature 0`) like the harness; left to
its defaults it would send random-token prompts and let the server sample at temperature 1, work the harness's
requests do not ask of the server. The harness sends those prompts as token ids; the server tokenizes the text.
Order: the client that goes first alternates between rounds."""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

BENCH = r"""
import sys
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser
from vllm.benchmarks.serve import add_cli_args, main
p = FlexibleArgumentParser()
add_cli_args(p)
main(p.parse_args(sys.argv[1:]))
"""


def prompt_file(tokenizer, prompts: list[list[int]], requests: int, path: Path) -> Path:
    """The harness's prompts as `bench serve`'s custom dataset: one JSON line per request, the prompts in turn
    (`bench serve` shuffles them with its seed, as LoadGen draws its sample indices with its own)."""
    texts = [tokenizer.decode(p) for p in prompts]
    path.write_text("".join(json.dumps({"prompt": texts[i % len(texts)]}) + "\n" for i in range(requests)))
    return path


def bench_serve(process, folder: Path, rate: float, requests: int, dataset: Path, output_len: int, out: Path,
                seed: int) -> dict:
    from harness.engines.vllm_process import vllm_python

    args = ["--backend", "vllm", "--base-url", process.url, "--endpoint", "/v1/completions", "--model", "harness",
            "--tokenizer", str(folder), "--dataset-name", "custom", "--dataset-path", str(dataset),
            "--skip-chat-template", "--custom-output-len", str(output_len), "--temperature", "0",
            "--num-prompts", str(requests), "--request-rate", str(rate),
            "--ignore-eos", "--seed", str(seed), "--percentile-metrics", "ttft,tpot", "--metric-percentiles", "50,99",
            "--save-result", "--save-detailed", "--result-dir", str(out.parent), "--result-filename", out.name]
    import time

    import psutil

    proc = subprocess.Popen([str(vllm_python()), "-c", BENCH, *args], stdout=subprocess.DEVNULL,
                            env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                                 "HOME": str(out.parent)})
    samples = []  # (perf_counter, the client's CPU seconds so far): its CPU use while its requests ran, not its start-up
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            c = ps.cpu_times()
            samples.append((time.perf_counter(), c.user + c.system))
        except psutil.Error:
            break
        time.sleep(0.2)
    if proc.wait() != 0:
        raise subprocess.CalledProcessError(proc.returncode, "vllm bench serve")
    r = json.loads(out.read_text())
    ok = [i for i, e in enumerate(r["errors"]) if not e]
    first = min(r["start_times"][i] for i in ok)  # perf_counter in the client: the same monotonic clock as ours
    last = max(r["start_times"][i] + r["latencies"][i] for i in ok)
    inside = [c for t, c in samples if first <= t <= last]
    cpu = (inside[-1] - inside[0]) if len(inside) > 1 else float("nan")
    per_request = {"ttft": [r["ttfts"][i] for i in ok], "end": [r["latencies"][i] for i in ok],
                   "n": [r["output_lens"][i] for i in ok], "input_len": [r["input_lens"][i] for i in ok],
                   "sent": [r["start_times"][i] for i in ok]}
    return {"ttft_p50": r["p50_ttft_ms"], "ttft_p99": r["p99_ttft_ms"], "tpot_p50": r["p50_tpot_ms"],
            "tpot_p99": r["p99_tpot_ms"], "n": r["completed"], "cpu_s": cpu, **_from_requests(per_request)}


def _from_requests(d: dict) -> dict:
    """The four figures recomputed from per-request times (seconds from each request's start) with ONE estimator
    (numpy's linear percentile, as `bench serve`), TPOT = (end - first token) / (tokens - 1) as both tools define it."""
    import numpy as np

    ttft = np.array(d["ttft"]) * 1e3
    tpot = (np.array(d["end"]) - np.array(d["ttft"])) * 1e3 / (np.array(d["n"]) - 1)
    out = {"req_ttft_p50": float(np.percentile(ttft, 50)), "req_ttft_p99": float(np.percentile(ttft, 99)),
           "req_tpot_p50": float(np.percentile(tpot, 50)), "req_tpot_p99": float(np.percentile(tpot, 99)),
           "req_n": len(ttft), "input_len": float(np.mean(d["input_len"])),
           # the arrival rate the client achieved: LoadGen's schedule is a Poisson draw whose rate varies with the seed,
           # `bench serve` rescales its draw to the requested rate exactly
           "rate": (len(d["sent"]) - 1) / (max(d["sent"]) - min(d["sent"]))}
    if "last" in d:  # the harness also knows when the last token came (before the stream's closing events)
        last = (np.array(d["last"]) - np.array(d["ttft"])) * 1e3 / (np.array(d["n"]) - 1)
        out["req_tpot_p99_last"] = float(np.percentile(last, 99))
    return out


def harness_client(engine, prompts: list[list[int]], rate: float, requests: int, output_len: int, log: Path,
                   seed: int) -> dict:
    import re
    import time

    from harness.measure.loadgen import run_scenario

    input_len = len(prompts[0])
    server = engine.server()
    cpu0 = time.process_time()  # this process: LoadGen's threads and the streaming clients
    try:
        r = run_scenario(server, prompts, output_len, "server", rate, 60_000, 10_000, requests, 0, log, seed=seed)
    finally:
        server.close()
    cpu = time.process_time() - cpu0
    done = [t for t in server.timings.values() if t[3] is not None]
    per_request = {"ttft": [t[1] - t[0] for t in done], "end": [t[3] - t[0] for t in done],
                   "last": [t[2] - t[0] for t in done], "n": [t[4] for t in done],
                   "input_len": [input_len] * len(done), "sent": [t[0] for t in done]}
    text = (log / "mlperf_log_summary.txt").read_text()

    def pct(what: str, p: str) -> float:
        return int(re.search(rf"{p} percentile {what} \(ns\)\s*:\s*(\d+)", text).group(1)) / 1e6

    return {"ttft_p50": pct("first token latency", "50.00"), "ttft_p99": pct("first token latency", "99.00"),
            "tpot_p50": pct("time to output token", "50.00"), "tpot_p99": pct("time to output token", "99.00"),
            "n": r.queries, "cpu_s": cpu, **_from_requests(per_request)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from harness.engines.base import build_engine
    from harness.measure.speed import distinct_prompts
    from harness.precision.registry import get_scheme

    from _common import compose

    cfg = compose(f"model={args.model}", f"precision={args.precision}", "engine=vllm")
    built = build_engine(cfg, get_scheme(args.precision), "cpu", "vllm")
    engine = built.engine
    folder = Path(engine.process.cmd[engine.process.cmd.index("--model") + 1])
    prompts = distinct_prompts(built.tokenizer, args.input_len, 64, engine.vocab_size).tolist()
    results: dict[str, list[dict]] = {"vllm bench serve": [], "harness (LoadGen)": []}
    try:
        with tempfile.TemporaryDirectory(dir=engine.process.home) as tmp:
            dataset = prompt_file(built.tokenizer, prompts, args.requests, Path(tmp) / "prompts.jsonl")
            for i in range(args.rounds):
                turns = [("vllm bench serve", lambda: bench_serve(engine.process, folder, args.rate, args.requests,
                                                                  dataset, args.output_len,
                                                                  Path(tmp) / f"bench{i}.json", seed=i)),
                         ("harness (LoadGen)", lambda: harness_client(engine, prompts, args.rate, args.requests,
                                                                      args.output_len, Path(tmp) / f"lg{i}",
                                                                      seed=i))]
                for name, run in (turns if i % 2 == 0 else turns[::-1]):
                    results[name].append(run())
    finally:
        engine.close()
    print(f"{args.model} {args.precision} on vLLM: {args.requests} requests at {args.rate:g}/s (Poisson), "
          f"{args.input_len} tokens in, {args.output_len} out, {args.rounds} rounds interleaved "
          "(bench serve first in even rounds), the same prompts and greedy decoding in both clients")
    print(f"{'client':<20} {'round':>5} {'TTFT p50':>9} {'TTFT p99':>9} {'TPOT p50':>9} {'TPOT p99':>9} {'n':>5}")
    for name, rows in results.items():
        for i, r in enumerate(rows):
            print(f"{name:<20} {i:>5} {r['ttft_p50']:9.1f} {r['ttft_p99']:9.1f} {r['tpot_p50']:9.1f} "
                  f"{r['tpot_p99']:9.1f} {r['n']:>5}")
    import statistics

    ok = True
    for key in ("ttft_p50", "ttft_p99", "tpot_p50", "tpot_p99"):
        h = statistics.median(r[key] for r in results["harness (LoadGen)"])
        v = statistics.median(r[key] for r in results["vllm bench serve"])
        ratio = h / v
        ok &= abs(ratio - 1) <= 0.10
        # the machine's own noise: how far each client's figure moved between its rounds (largest / smallest)
        spread = {name: max(r[key] for r in rows) / min(r[key] for r in rows) for name, rows in results.items()}
        print(f"{key}: harness {h:.1f} ms / bench serve {v:.1f} ms = {ratio:.3f} "
              f"({'within' if abs(ratio - 1) <= 0.10 else 'OUTSIDE'} 10%); round-to-round spread: bench serve "
              f"{spread['vllm bench serve']:.2f}x, harness {spread['harness (LoadGen)']:.2f}x")
    print("peer check:", "all four within 10%" if ok else "NOT all within 10%")
    print("\nThe same figures recomputed from each client's per-request times with one estimator (numpy's linear "
          "percentile);\nclient CPU: seconds of CPU the client itself used while its requests ran (the server shares the cores); "
          "rate/s: the arrival rate each client achieved, (requests - 1) / (last send - first send)")
    print(f"{'client':<20} {'round':>5} {'TTFT p50':>9} {'TTFT p99':>9} {'TPOT p50':>9} {'TPOT p99':>9} {'n':>5} "
          f"{'in tok':>6} {'client CPU s':>12} {'rate/s':>6}")
    for name, rows in results.items():
        for i, r in enumerate(rows):
            print(f"{name:<20} {i:>5} {r['req_ttft_p50']:9.1f} {r['req_ttft_p99']:9.1f} {r['req_tpot_p50']:9.1f} "
                  f"{r['req_tpot_p99']:9.1f} {r['req_n']:>5} {r['input_len']:6.1f} {r['cpu_s']:12.1f} "
                  f"{r['rate']:6.2f}")
    for key in ("ttft_p50", "ttft_p99", "tpot_p50", "tpot_p99"):
        h = statistics.median(r["req_" + key] for r in results["harness (LoadGen)"])
        v = statistics.median(r["req_" + key] for r in results["vllm bench serve"])
        lg = statistics.median(r[key] for r in results["harness (LoadGen)"])
        print(f"{key} per request: harness {h:.1f} ms / bench serve {v:.1f} ms = {h / v:.3f}; LoadGen's summary "
              f"{lg:.1f} ms vs the harness client's own {h:.1f} ms")
    last = statistics.median(r["req_tpot_p99_last"] for r in results["harness (LoadGen)"])
    print(f"harness TPOT p99 ending at the last token instead of the stream's end: {last:.1f} ms")


if __name__ == "__main__":
    main()
