"""Peer check of the vllm engine's serving figures: vLLM's own `bench serve` and the harness's client (MLPerf LoadGen's
Server scenario through the engine's serving front) against ONE vLLM server started by the harness, at the same
Poisson request rate, request count, prompt and output lengths (outputs of fixed length, EOS ignored). Prints TTFT and
TPOT p50/p99 from both and their ratios; the target is every ratio within 10%. Run alone (nothing else on the
machine): the two clients take turns, `--rounds` times, interleaved; each figure's round-to-round spread per
client is printed beside the ratio (the noise a ratio is read against).

    python benchmarks/vllm_peer_check.py [--model smollm2-135m] [--precision bf16] [--rate 2] [--requests 200]
                                         [--rounds 2] [--seed 0]

The same requests in both, down to each one's send time: in each schedule's first round the harness's client
(LoadGen, schedule seed k) runs first and its requests are written as a trace, each request's send time (from the
first), its prompt and output length; `bench serve` replays that trace with its own `timed_trace` dataset
(`--self-timed`, the replay of timed traces vLLM ships for this). Prompts: `timed_trace` makes each request's prompt
tokens from the trace's hash ids (random tokens, seeded; PYTHONHASHSEED fixed so they repeat), and the harness sends
exactly those token ids (read from vLLM's own dataset code before the first round): the same token ids, at the same
times, with the same output length, greedy (`--temperature 0`), EOS ignored. A p99 depends on the Poisson draw's
bursts: comparing two clients on two draws compares the draws too; on one replayed draw the clients are compared
with each other. Order: each schedule runs twice, harness then `bench serve`, then `bench serve` (replaying the same
trace) then the harness (the same seed again), so neither client always goes first. `--pool OUTPUT...` gives the
verdict over the rounds of several runs from what they printed."""
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


PROMPTS = r"""
import json, sys
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser
from vllm.benchmarks.datasets import get_samples
from vllm.benchmarks.serve import add_cli_args
from vllm.tokenizers import get_tokenizer
p = FlexibleArgumentParser()
add_cli_args(p)
a = p.parse_args(sys.argv[1:])
samples = get_samples(a, get_tokenizer(a.tokenizer, tokenizer_mode=a.tokenizer_mode))
print(json.dumps([[r.timestamp, r.prompt, r.expected_output_len] for r in samples]))
"""


def _env(home: Path) -> dict:
    # PYTHONHASHSEED: `timed_trace` seeds each prompt's tokens from hash() of its hash id, salted per process otherwise
    return {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(home),
            "PYTHONHASHSEED": "0"}


def _trace_args(folder: Path, trace: Path, requests: int, input_len: int) -> list[str]:
    # one hash id per prompt, one chunk of `input_len` tokens each
    return ["--backend", "vllm", "--model", "harness", "--tokenizer", str(folder), "--dataset-name", "timed_trace",
            "--dataset-path", str(trace), "--timed-trace-chunk-hash-size", str(input_len),
            "--num-prompts", str(requests)]


def write_trace(path: Path, requests: list[tuple[float, int]], input_len: int, output_len: int) -> Path:
    """A `timed_trace` file: per request (send time in s, prompt index), in the order sent, times from the first."""
    t0 = requests[0][0]
    path.write_text("".join(json.dumps({"timestamp": t - t0, "input_length": input_len, "output_length": output_len,
                                        "hash_ids": [i]}) + "\n" for t, i in requests))
    return path


def read_trace(folder: Path, trace: Path, requests: int, input_len: int, home: Path) -> list[tuple]:
    """The requests `bench serve` makes of a trace, read by its own dataset code: (send time, token ids, new tokens)."""
    from harness.engines.vllm_process import vllm_python

    out = subprocess.run([str(vllm_python()), "-c", PROMPTS, *_trace_args(folder, trace, requests, input_len)],
                         capture_output=True, text=True, check=True, env=_env(home))
    return [tuple(r) for r in json.loads(out.stdout.strip().splitlines()[-1])]


def trace_prompts(folder: Path, count: int, input_len: int, tmp: Path) -> list[list[int]]:
    """The token ids `bench serve`'s `timed_trace` sends for prompt indices 0..count-1 (hash id i), by its own code."""
    trace = write_trace(tmp / "prompts.jsonl", [(0.0, i) for i in range(count)], input_len, 1)
    prompts = [p for _, p, _ in read_trace(folder, trace, count, input_len, tmp)]
    if len(prompts) != count or any(len(p) != input_len for p in prompts) or len(set(map(tuple, prompts))) != count:
        raise RuntimeError(f"timed_trace gave {len(prompts)} prompts, not {count} distinct of {input_len} tokens")
    return prompts


def bench_serve(process, folder: Path, trace: Path, requests: int, input_len: int, out: Path) -> dict:
    from harness.engines.vllm_process import vllm_python

    args = [*_trace_args(folder, trace, requests, input_len), "--base-url", process.url, "--endpoint",
            "/v1/completions", "--temperature", "0", "--percentile-metrics", "ttft,tpot", "--metric-percentiles",
            "50,99", "--save-result", "--save-detailed", "--result-dir", str(out.parent), "--result-filename",
            out.name]
    import time

    import psutil

    proc = subprocess.Popen([str(vllm_python()), "-c", BENCH, *args], stdout=subprocess.DEVNULL,
                            env=_env(out.parent))
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
            "tpot_p99": r["p99_tpot_ms"], "n": r["completed"], "cpu_s": cpu, **_from_requests(per_request),
            "errors": [e for e in r["errors"] if e]}


def _from_requests(d: dict) -> dict:
    """The four figures recomputed from per-request times (seconds from each request's start) with ONE estimator
    (numpy's linear percentile, as `bench serve`), TPOT = (end - first token) / (tokens - 1) as both tools define it."""
    import numpy as np

    ttft = np.array(d["ttft"]) * 1e3
    tpot = (np.array(d["end"]) - np.array(d["ttft"])) * 1e3 / (np.array(d["n"]) - 1)
    out = {"req_ttft_p50": float(np.percentile(ttft, 50)), "req_ttft_p99": float(np.percentile(ttft, 99)),
           "req_tpot_p50": float(np.percentile(tpot, 50)), "req_tpot_p99": float(np.percentile(tpot, 99)),
           "req_n": len(ttft), "input_len": float(np.mean(d["input_len"])),
           # the arrival rate the client achieved (LoadGen's Poisson draw's rate varies with the seed)
           "rate": (len(d["sent"]) - 1) / (max(d["sent"]) - min(d["sent"]))}
    if "last" in d:  # the harness also knows when the last token came (before the stream's closing events)
        last = (np.array(d["last"]) - np.array(d["ttft"])) * 1e3 / (np.array(d["n"]) - 1)
        out["req_tpot_p99_last"] = float(np.percentile(last, 99))
    return out


def harness_client(engine, prompts: list[list[int]], rate: float, requests: int, output_len: int, log: Path,
                   seed: int) -> tuple[dict, list[tuple[float, int]]]:
    """One LoadGen run (schedule seed `seed`); its figures, and its requests as (send time, prompt index) in order."""
    import re
    import time

    from harness.measure.loadgen import run_scenario

    input_len = len(prompts[0])
    server = engine.server()
    index_of = {id(p): i for i, p in enumerate(prompts)}  # LoadGen hands the front prompts[q.index] itself
    sent: list[tuple[float, int]] = []  # every request LoadGen issued, answered or not: (send time, prompt index)
    submit = server.submit

    def recorded(request_id, prompt_ids, *rest) -> None:
        sent.append((time.perf_counter(), index_of[id(prompt_ids)]))
        submit(request_id, prompt_ids, *rest)

    server.submit = recorded
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
            "n": r.queries, "cpu_s": cpu, **_from_requests(per_request)}, sorted(sent)


KEYS = ("ttft_p50", "ttft_p99", "tpot_p50", "tpot_p99")
CLIENTS = ("vllm bench serve", "harness (LoadGen)")


def verdict(results: dict[str, list[dict]]) -> bool:
    """Each round's figures per client, the ratio per round, and the verdict on the medians over rounds."""
    import statistics

    print(f"{'client':<20} {'round':>5} {'TTFT p50':>9} {'TTFT p99':>9} {'TPOT p50':>9} {'TPOT p99':>9} {'n':>5}")
    for name in CLIENTS:
        for i, r in enumerate(results[name]):
            print(f"{name:<20} {i:>5} {r['ttft_p50']:9.1f} {r['ttft_p99']:9.1f} {r['tpot_p50']:9.1f} "
                  f"{r['tpot_p99']:9.1f} {r['n']:>5}")
    for i, (h, b) in enumerate(zip(results["harness (LoadGen)"], results["vllm bench serve"])):
        print(f"{'harness / bench':<20} {i:>5} " + " ".join(f"{h[k] / b[k]:9.3f}" for k in KEYS))
    ok = True
    for key in KEYS:
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
    return ok


def pool(outputs: list[Path]) -> bool:
    """The verdict over the rounds of several runs, read back from what each printed (its first table)."""
    import re

    row = re.compile(r"^(%s)\s+\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)$"
                     % "|".join(map(re.escape, CLIENTS)))
    results: dict[str, list[dict]] = {name: [] for name in CLIENTS}
    for out in outputs:
        lines = out.read_text().splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("client ")), None)
        if start is None:
            raise SystemExit(f"{out}: no table of rounds (a line starting 'client ')")
        for line in lines[start + 1:]:
            m = row.match(line)
            if not m:
                break  # the first table ends at the first line that is not one of its rows
            results[m.group(1)].append({**dict(zip(KEYS, map(float, m.groups()[1:5]))), "n": int(m.group(6))})
    if not results[CLIENTS[0]] or len(results[CLIENTS[0]]) != len(results[CLIENTS[1]]):
        raise SystemExit(f"no paired rounds in {', '.join(map(str, outputs))}")
    print(f"{len(results[CLIENTS[0]])} rounds of {len(outputs)} runs: " + ", ".join(o.name for o in outputs))
    return verdict(results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2, help="each schedule runs in two rounds (each client first once)")
    ap.add_argument("--seed", type=int, default=0, help="LoadGen's schedule seed of the first two rounds (then +1...)")
    ap.add_argument("--pool", type=Path, nargs="+", metavar="OUTPUT",
                    help="no run: the verdict over the rounds of earlier runs, from what they printed")
    args = ap.parse_args()
    if args.pool:
        pool(args.pool)
        return

    from harness.engines.base import build_engine
    from harness.precision.registry import get_scheme

    from _common import compose

    cfg = compose(f"model={args.model}", f"precision={args.precision}", "engine=vllm")
    built = build_engine(cfg, get_scheme(args.precision), "cpu", "vllm")
    engine = built.engine
    folder = Path(engine.process.cmd[engine.process.cmd.index("--model") + 1])
    results: dict[str, list[dict]] = {"vllm bench serve": [], "harness (LoadGen)": []}
    try:
        with tempfile.TemporaryDirectory(dir=engine.process.home) as tmp:
            prompts = trace_prompts(folder, 64, args.input_len, Path(tmp))
            for i in range(args.rounds):
                seed = args.seed + i // 2  # each schedule twice: harness first, then bench serve first
                log = Path(tmp) / f"lg{i}"
                if i % 2 == 0:
                    h, sent = harness_client(engine, prompts, args.rate, args.requests, args.output_len, log, seed)
                    trace = write_trace(Path(tmp) / f"trace{seed}.jsonl", sent, args.input_len, args.output_len)
                    b = bench_serve(engine.process, folder, trace, len(sent), args.input_len,
                                    Path(tmp) / f"bench{i}.json")
                else:
                    b = bench_serve(engine.process, folder, trace, len(sent), args.input_len,
                                    Path(tmp) / f"bench{i}.json")
                    h, _ = harness_client(engine, prompts, args.rate, args.requests, args.output_len, log, seed)
                results["harness (LoadGen)"].append(h)
                results["vllm bench serve"].append(b)
    finally:
        engine.close()
    print(f"{args.model} {args.precision} on vLLM: {args.requests} requests at {args.rate:g}/s (LoadGen's Poisson "
          f"schedule, replayed by bench serve), {args.input_len} tokens in, {args.output_len} out, {args.rounds} "
          f"rounds (schedule seed {args.seed} + round // 2; the harness first in even rounds), the same token ids, "
          "send times and greedy decoding in both clients")
    verdict(results)
    for i, r in enumerate(results["vllm bench serve"]):
        if r["errors"]:  # requests bench serve saw fail: left out of its figures (n) and named here
            print(f"bench serve round {i}: {len(r['errors'])} request(s) failed, first: {r['errors'][0][:300]!r}")
    import statistics

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
    for key in KEYS:
        h = statistics.median(r["req_" + key] for r in results["harness (LoadGen)"])
        v = statistics.median(r["req_" + key] for r in results["vllm bench serve"])
        lg = statistics.median(r[key] for r in results["harness (LoadGen)"])
        print(f"{key} per request: harness {h:.1f} ms / bench serve {v:.1f} ms = {h / v:.3f}; LoadGen's summary "
              f"{lg:.1f} ms vs the harness client's own {h:.1f} ms")
    last = statistics.median(r["req_tpot_p99_last"] for r in results["harness (LoadGen)"])
    print(f"harness TPOT p99 ending at the last token instead of the stream's end: {last:.1f} ms")


if __name__ == "__main__":
    main()
