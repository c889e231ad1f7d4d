"""The llama.cpp engine (llama-cpp-python): the same contract as the torch engine, so speed, memory, accuracy and
quality are measured by the same code. Prompts are tokenised with the model's HF tokenizer (converted from the same
GGUF) and fed to llama.cpp as token ids, so both engines see identical tokens. The GGUF file it runs, and its proof,
come from the precision scheme (harness/precision/gguf.py)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from harness.engines.base import BuiltEngine, Capabilities, Engine, kv_bytes_per_token
from harness.core.errors import Unavailable
from harness.precision.gguf import gguf_proof, requantise, tensor_inventory


@dataclass
class _MultiContext:
    """A llama.cpp context with `n_seq` sequence ids and room for `n_ctx` tokens, and its batch."""
    n_seq: int
    n_ctx: int
    context: Any
    batch: Any


class LlamaCppEngine(Engine):
    name = "llamacpp"
    capabilities = Capabilities(max_batch=256, continuous_batching=True)  # 256: llama.cpp's LLAMA_MAX_SEQ

    def __init__(self, path: Path, threads: int, n_ctx: int, hf_config, pad_id: int = 0):
        from llama_cpp import Llama

        self.path, self.threads, self.n_ctx, self.hf_config = path, threads, n_ctx, hf_config
        self.max_length = n_ctx - 1
        # One context for speed and scoring. No logits_all: scoring asks llama.cpp for the logits of the positions
        # it needs only (one per MMLU question), instead of a vocabulary-wide row for every prompt token.
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_batch=512, n_threads=threads, logits_all=False,
                         verbose=False, seed=0)
        self.vocab_size = self.llm.n_vocab()
        self._tokens: list[int] = []  # what the KV cache holds, for prefix reuse between scored sequences
        self._multi: _MultiContext | None = None  # for n-sequence generation, kept while its shape fits

    def kv_bytes_per_token(self) -> int:
        return kv_bytes_per_token(self.hf_config, 2)  # llama.cpp's default f16 cache

    def close(self) -> None:
        """Free llama.cpp's model and context now (left to interpreter exit, its finaliser can fail noisily)."""
        llm, self.llm = self.llm, None
        self._close_multi()
        if llm is not None:
            llm.close()

    def lookup_only_bytes(self) -> int:
        """Bytes of token_embd when the file has its own output.weight: decode reads one row of the embedding."""
        tensors = {name: b for name, _, b, _ in tensor_inventory(self.path)}
        return tensors.get("token_embd.weight", 0) if "output.weight" in tensors else 0

    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        """Greedy decoding. One sequence runs in the scoring context; n sequences are decoded together in a context
        with n sequence ids: one `llama_batch` holds every prompt (prefill), then one token of each sequence per
        step, never one sequence after another."""
        n = input_ids.shape[0]
        if n > self.capabilities.max_batch:
            raise ValueError(f"the llama.cpp engine decodes at most {self.capabilities.max_batch} sequences at once")
        if n > 1:
            return self._generate_many(input_ids.tolist(), new_tokens, on_token)
        llm = self.llm
        llm.reset()
        self._tokens = []
        n_vocab = self.vocab_size
        llm.eval(input_ids[0].tolist())
        out = []
        for i in range(new_tokens):
            if i:
                llm.eval([out[-1]])
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))
            out.append(int(logits.argmax()))
            if on_token:
                on_token()
        return torch.tensor([out])

    def server(self, slots: int = 16, **_):
        """Sequence slots that free and refill, as llama.cpp's server (harness/engines/llamacpp_serving.py)."""
        from harness.engines.llamacpp_serving import LlamaCppServer

        return LlamaCppServer(self, slots)

    def _context_for(self, n_seq: int, n_tokens: int):
        """A llama.cpp context (and batch) with `n_seq` sequence ids and room for `n_tokens` tokens in all; kept
        while the shape fits, so repeated generations at one concurrency reuse it."""
        m = self._multi
        if m is not None and m.n_seq >= n_seq and m.n_ctx >= n_tokens:
            return m.context, m.batch
        import ctypes

        from llama_cpp import _internals

        self._close_multi()
        src = self.llm.context_params
        params = type(src)()
        ctypes.memmove(ctypes.addressof(params), ctypes.addressof(src), ctypes.sizeof(src))  # same settings
        params.n_seq_max = n_seq
        params.n_ctx = max(n_tokens, 256)
        params.n_batch = max(n_tokens, 512)  # a whole prefill of n prompts in one llama_decode
        params.kv_unified = True
        ctx = _internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        batch = _internals.LlamaBatch(n_tokens=params.n_batch, embd=0, n_seq_max=1, verbose=False)
        self._multi = _MultiContext(n_seq, params.n_ctx, ctx, batch)
        return ctx, batch

    def _close_multi(self) -> None:
        if self._multi is not None:
            self._multi.batch.close()
            self._multi.context.close()
            self._multi = None

    def _generate_many(self, prompts: list[list[int]], new_tokens: int, on_token) -> torch.Tensor:
        n, length = len(prompts), len(prompts[0])
        ctx, batch = self._context_for(n, n * (length + new_tokens))
        ctx.kv_cache_clear()
        b = batch.batch
        batch.reset()
        for seq, ids in enumerate(prompts):
            batch.add_sequence(ids, seq, logits_all=False)  # positions 0..T-1, logits of the last token only
        last = [(seq + 1) * length - 1 for seq in range(n)]
        out = [[] for _ in range(n)]
        for step in range(new_tokens):
            if step:
                b.n_tokens = n
                for seq in range(n):
                    b.token[seq], b.pos[seq], b.n_seq_id[seq] = out[seq][-1], length + step - 1, 1
                    b.seq_id[seq][0], b.logits[seq] = seq, True
                last = list(range(n))
            ctx.decode(batch)
            for seq, i in enumerate(last):
                row = np.ctypeslib.as_array(ctx.get_logits_ith(i), shape=(self.vocab_size,))
                out[seq].append(int(row.argmax()))
            if on_token:
                on_token()
        return torch.tensor(out)

    def _decode(self, tokens: list[int], start: int, wanted: set[int]) -> dict[int, np.ndarray]:
        """Run tokens[start:] on top of the cached tokens[:start]; return the logits of the `wanted` positions."""
        llm, batch = self.llm, self.llm._batch
        llm._ctx.kv_cache_seq_rm(-1, start, -1)
        n_batch = llm.n_batch
        out: dict[int, np.ndarray] = {}
        for b0 in range(start, len(tokens), n_batch):
            chunk = tokens[b0: b0 + n_batch]
            batch.set_batch(batch=chunk, n_past=b0, logits_all=False)
            flagged = [p for p in range(b0, b0 + len(chunk)) if p in wanted]
            for j in range(len(chunk)):
                batch.batch.logits[j] = False  # set_batch always asks for the last token's logits
            for p in flagged:
                batch.batch.logits[p - b0] = True
            llm._ctx.decode(batch)
            for p in flagged:
                row = llm._ctx.get_logits_ith(p - b0)
                out[p] = np.ctypeslib.as_array(row, shape=(self.vocab_size,)).copy()
        llm.n_tokens = len(tokens)
        return out

    def logprobs(self, seqs: list[list[int]], positions: list[list[int]], prefix=None) -> list[torch.Tensor]:
        """Log-softmax at the given positions; the KV cache of the longest common prefix with the previous
        sequence is reused (llama.cpp keeps it), which makes few-shot prompts of one subject cheap. No explicit
        prefix cache (capabilities.prefix_cache is false): `prefix` must be None."""
        if prefix is not None:
            raise ValueError("the llama.cpp engine has no explicit prefix cache; pass prefix=None")
        out = []
        for seq, pos in zip(seqs, positions):
            if len(seq) > self.n_ctx:
                raise ValueError(f"sequence of {len(seq)} tokens exceeds llamacpp n_ctx={self.n_ctx}")
            keep = 0
            for a, b in zip(self._tokens, seq):
                if a != b:
                    break
                keep += 1
            keep = min(keep, len(seq) - 1, min(pos))
            logits = self._decode(list(seq), keep, set(pos))
            self._tokens = list(seq)
            rows = torch.from_numpy(np.stack([logits[p] for p in pos]).astype(np.float32))
            out.append(torch.log_softmax(rows, dim=-1))
        return out


def build(cfg, scheme, device: str) -> BuiltEngine:
    """The scheme's GGUF file (requantised once from the model's shipped GGUF, proven from the file itself), run by
    llama.cpp, with the HF tokenizer and config of the dequantised baseline."""
    from transformers import AutoConfig, AutoTokenizer

    from harness.models import packaged_gguf

    if cfg.model.source != "packaged_gguf":
        raise Unavailable(f"{scheme.name} needs a model shipped as GGUF (smollm2-135m, gemma3-270m), "
                          f"not {cfg.model.name}")
    import llama_cpp  # noqa: F401 - imported before the load is timed, as the torch engine does

    t0 = time.perf_counter()
    source = packaged_gguf.gguf_path(cfg.model)
    converted = packaged_gguf.dequantised_folder(cfg.model)  # the HF tokenizer and config come from it
    threads = int(cfg.threads or torch.get_num_threads())
    path = requantise(source, scheme, threads)
    proof = gguf_proof(path, scheme)
    tok = AutoTokenizer.from_pretrained(str(converted))
    from harness.config.schema import section

    engine = LlamaCppEngine(path, threads, section(cfg, "llamacpp").n_ctx,
                            AutoConfig.from_pretrained(str(converted)))
    source_weights = (f"GGUF {scheme.gguf_type} requantised by llama.cpp from the {cfg.model.source_quant} source "
                      f"(cannot be better than its {cfg.model.source_quant} source)")
    return BuiltEngine(engine, tok, proof, source_weights, "real", time.perf_counter() - t0)
