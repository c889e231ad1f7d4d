"""The vllm engine: vLLM's OpenAI-compatible server (harness/engines/vllm_process.py), driven over HTTP on loopback.

- Speed: streaming completions (`/v1/completions`, prompt as token ids, greedy, `min_tokens` = `max_tokens`,
  `ignore_eos`), each streamed chunk's token ids marking when tokens exist: TTFT and per-token times are the client's
  view of the stream, as in vLLM's own `bench serve`. A batch is that many concurrent requests (vLLM batches them
  continuously); a step of the batch is complete when every request has its next token.
- Scoring: prompt log-probabilities (`prompt_logprobs=1`): for each position vLLM returns the log-probability of the
  actual next token and of its own top-1. Continuation scores, task accuracy, perplexity and top-1 agreement need no
  more; KLD needs the whole distribution, which the API does not return (`full_logprobs` is false: quality leaves
  the KLD columns empty and says why).
- Serving: `server()` submits each request as it arrives; vLLM's scheduler batches them continuously.
- Prefix caching is off unless `engine.prefix_caching=true`: the harness's request sets reuse prompts (the speed
  measurement's repeats, LoadGen's 64-prompt sample set for 500 queries), and with vLLM's default automatic prefix
  caching a repeated prompt's prefill would be a cache hit, which distinct user prompts would not get (the torch
  engine's continuous batching turns its block sharing off likewise). vLLM caches whole KV blocks, 128 tokens on a
  CPU (16 on a GPU): the committed CPU rows, measured with caching on and 64-token prompts, could not hit (and the
  peer check's TPOT p99 did not move with it off); on a GPU, or with longer prompts, they would.

Models: the float checkpoint folder with `--dtype` (fp32, bf16), or a compressed-tensors checkpoint made by
llm-compressor (harness/precision/calibrated.py)."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import torch

from harness.engines.base import BuiltEngine, Capabilities, Engine, kv_bytes_per_token
from harness.core.errors import Unavailable

_DTYPE = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


class VllmEngine(Engine):
    name = "vllm"
    capabilities = Capabilities(shared_context=True, batched_logprobs=True, continuous_batching=True,
                                full_logprobs=False)

    def __init__(self, process, hf_config, max_length: int, kv_element_size: int):
        self.process = process
        self.hf_config = hf_config
        self.vocab_size = int(hf_config.get_text_config().vocab_size)
        self.max_length = max_length
        self._kv_element_size = kv_element_size
        self.pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="vllm-client")

    # -- generation -------------------------------------------------------------------------------------------
    def _stream(self, prompt: list[int], new_tokens: int, on_token: Callable[[int], None] | None = None) -> list[int]:
        body = {"model": "harness", "prompt": prompt, "max_tokens": new_tokens, "min_tokens": new_tokens,
                "ignore_eos": True, "temperature": 0.0, "return_token_ids": True}
        out: list[int] = []
        finish = None
        for event in self.process.stream("/v1/completions", body):
            if "error" in event:  # vLLM reports a failed request inside the stream (HTTP 200 already sent)
                err = event["error"]
                message = err.get("message", err) if isinstance(err, dict) else err
                raise RuntimeError(f"vLLM failed the request after {len(out)} of {new_tokens} tokens: "
                                   f"{str(message)[:300]} (server log: {self.process.log_tail()})")
            for choice in event.get("choices", []):
                finish = choice.get("finish_reason") or finish
                ids = choice.get("token_ids") or []
                for t in ids:
                    out.append(int(t))
                    if on_token is not None:
                        on_token(len(out))
        if len(out) != new_tokens:
            raise RuntimeError(f"vLLM streamed {len(out)} tokens, {new_tokens} were asked for (finish_reason "
                               f"{finish!r}; server log: {self.process.log_tail()})")
        return out

    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        rows = [list(map(int, r)) for r in input_ids.tolist()]
        counts = [0] * len(rows)
        lock = threading.Lock()
        done_steps = [0]

        def tick(i: int, n: int) -> None:
            with lock:
                counts[i] = n
                while min(counts) > done_steps[0]:  # a step of the batch: every request has its next token
                    done_steps[0] += 1
                    if on_token is not None:
                        on_token()

        futures = [self.pool.submit(self._stream, r, new_tokens, lambda n, i=i: tick(i, n))
                   for i, r in enumerate(rows)]
        return torch.tensor([f.result() for f in futures], dtype=torch.long)

    # -- scoring ----------------------------------------------------------------------------------------------
    def _prompt_logprobs(self, seq: list[int]) -> list[dict[int, float] | None]:
        body = {"model": "harness", "prompt": seq, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}
        choice = self.process.post("/v1/completions", body)["choices"][0]
        return [None if d is None else {int(k): float(v["logprob"]) for k, v in d.items()}
                for d in choice["prompt_logprobs"]]

    def logprobs(self, seqs: list[list[int]], positions: list[list[int]], prefix: Any = None) -> list[torch.Tensor]:
        """Rows of -inf except the actual next token and vLLM's top-1 at each position (all the API returns)."""
        if prefix is not None:
            raise NotImplementedError("the vllm engine has no prefix handle (vLLM caches prefixes itself)")
        results = list(self.pool.map(lambda s: self._prompt_logprobs(list(map(int, s))), seqs))
        out = []
        for seq, pos, plp in zip(seqs, positions, results):
            t = torch.full((len(pos), self.vocab_size), float("-inf"), dtype=torch.float32)
            for j, p in enumerate(pos):
                entry = plp[p + 1] if p + 1 < len(plp) else None  # prompt_logprobs[i]: token i given tokens < i
                if entry is None:
                    raise ValueError(f"position {p} has no next token in a sequence of {len(seq)}")
                for tok, lp in entry.items():
                    t[j, tok] = lp
            out.append(t)
        return out

    def continuation_logprobs(self, items: list[tuple[list[int], list[list[int]]]]) -> list[list[float]]:
        """Each continuation scored after its context in one request (vLLM 0.32 never reads its prefix cache for a
        request that asks for prompt log-probabilities: every request computes its whole prompt)."""
        jobs = [(ctx, cont) for ctx, conts in items for cont in conts]

        def one(job) -> float:
            ctx, cont = job
            plp = self._prompt_logprobs(list(map(int, ctx)) + list(map(int, cont)))
            return sum(plp[len(ctx) + k][int(t)] for k, t in enumerate(cont))

        scores = list(self.pool.map(one, jobs))
        out, i = [], 0
        for _, conts in items:
            out.append(scores[i:i + len(conts)])
            i += len(conts)
        return out

    # -- serving ----------------------------------------------------------------------------------------------
    def server(self, **options) -> Any:
        return VllmServer(self)

    def kv_bytes_per_token(self) -> int:
        return kv_bytes_per_token(self.hf_config, self._kv_element_size)

    def external_rss_mb(self) -> float | None:
        """vLLM's server and engine-core processes (its process group), resident now."""
        import os

        import psutil

        total = 0
        for proc in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(proc.pid) == self.process.proc.pid:
                    total += proc.memory_info().rss
            except (ProcessLookupError, psutil.Error):
                continue
        return total / 2**20

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.process.stop()


class VllmServer:
    """LoadGen's serving front: each submitted request is one streaming request, admitted by vLLM as it arrives."""

    def __init__(self, engine: VllmEngine):
        self.engine = engine
        self.pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix="vllm-serve")
        self.tokens: dict[str, list[int]] = {}
        self.pending: set = set()
        self.lock = threading.Lock()
        self.errors: list[str] = []  # requests that failed (each completed for LoadGen with 0 tokens)
        # per request, as this client saw it (perf_counter s): submitted, first token, last token, end of the stream, and
        # the token count; the peer check compares these with LoadGen's own percentiles
        self.timings: dict = {}

    def submit(self, request_id, prompt_ids, new_tokens: int, on_first_token, on_done) -> None:
        submitted = time.perf_counter()

        def run() -> None:
            def tick(n: int) -> None:
                if n == 1:
                    self.timings[request_id] = [submitted, time.perf_counter(), None, None, 0]
                    on_first_token()
                if n == new_tokens and request_id in self.timings:
                    self.timings[request_id][2] = time.perf_counter()

            try:
                out = self.engine._stream(list(map(int, prompt_ids)), int(new_tokens), tick)
            except Exception as exc:  # noqa: BLE001 - LoadGen must hear of every query; the run is then refused
                self.errors.append(f"request {request_id}: {type(exc).__name__}: {exc}")
                on_done(0)
                return
            self.tokens[f"r{request_id}"] = out
            if request_id in self.timings:
                self.timings[request_id][3:] = [time.perf_counter(), len(out)]
            on_done(len(out))

        future = self.pool.submit(run)
        with self.lock:
            self.pending.add(future)
        future.add_done_callback(self._finished)

    def _finished(self, future) -> None:
        with self.lock:
            self.pending.discard(future)

    def wait_idle(self, timeout_s: float = 120) -> None:
        deadline = time.time() + timeout_s
        while self.pending and time.time() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def build(cfg, scheme, device: str) -> BuiltEngine:
    """The model folder for the scheme (the float checkpoint, or llm-compressor's calibrated checkpoint, made once),
    its proof, and a vLLM server on it."""
    from transformers import AutoConfig

    from harness.engines.vllm_process import VllmProcess, check_vllm, vllm_version
    from harness.models.checkpoint import checkpoint
    from harness.precision.proof import Proof, config_param_count

    from harness.config.schema import engine_knobs

    knobs = engine_knobs(cfg, "vllm")  # harness/config/schema.py's defaults also under engine=auto
    python = check_vllm(device, knobs.python)
    ckpt = checkpoint(cfg.model)
    hf_config = AutoConfig.from_pretrained(str(ckpt.folder))
    params = config_param_count(hf_config)
    convert_s = None
    if scheme.how == "calibrated":
        from harness.precision.calibrated import calibrated, calibration_of, ct_proof

        conv = calibrated(ckpt.folder, scheme.name, calibration_of(cfg))
        folder, convert_s = conv.folder, conv.convert_s
        proof = ct_proof(folder, scheme.name, params)
        dtype = "bfloat16"
        source_weights = f"{ckpt.source_weights}, calibrated by llm-compressor"
    elif scheme.how == "shipped":  # published quantised: served as it is, its scheme read from its config
        from harness.precision.calibrated import ct_proof, declared

        grid = declared(ckpt.folder)
        folder = ckpt.folder
        proof = ct_proof(folder, scheme.name, params, grid["bits"], grid["float"])
        dtype = "bfloat16"
        source_weights = f"{ckpt.source_weights}, quantised as published (compressed-tensors)"
    elif scheme.how == "dtype":
        from harness.precision.calibrated import safetensors_headers

        folder, dtype = ckpt.folder, _DTYPE[scheme.dtype]
        size = torch.tensor([], dtype=getattr(torch, dtype)).element_size()
        stored = {t["dtype"] for t in safetensors_headers(folder).values()}
        proof = Proof(weight_bytes=params * size, model_params=params, linear_params=0, linear_bytes=0,
                      quantized_params=0, types=f"checkpoint {sorted(stored)}, cast by vLLM at load (--dtype {dtype})")
        source_weights = ckpt.source_weights
    else:
        raise Unavailable(f"{scheme.name} does not run on the vllm engine (it serves float and llm-compressor "
                          "checkpoints)")
    max_length = knobs.max_length
    t0 = time.perf_counter()
    caching = knobs.prefix_caching
    tp = knobs.tensor_parallel_size
    process = VllmProcess(folder, dtype, max_length, kv_cache_gib=knobs.kv_cache_gib,
                          threads=int(cfg.threads) if cfg.get("threads") else None,
                          extra_args=["--enable-prefix-caching" if caching else "--no-enable-prefix-caching"],
                          device=device, python=python, tensor_parallel_size=tp,
                          gpu_memory_utilization=knobs.gpu_memory_utilization, enforce_eager=knobs.enforce_eager)
    engine = VllmEngine(process, hf_config, max_length, 2 if dtype != "float32" else 4)
    engine.device = device
    graphs = "eager" if "--enforce-eager" in process.cmd else "CUDA graphs"
    where = f"{device}, tensor parallel {tp}, {graphs}" if device == "cuda" else device
    proof.types += (f"; vLLM {vllm_version(python)} server ({where}) started in {process.start_s:.1f} s, prefix "
                    f"caching {'on' if caching else 'off'}")
    return BuiltEngine(engine, ckpt.tokenizer, proof, source_weights, ckpt.weights, time.perf_counter() - t0,
                       convert_s=convert_s)
