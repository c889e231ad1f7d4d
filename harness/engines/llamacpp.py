"""The llama.cpp engine (llama-cpp-python): the same narrow interface as the torch engine, so speed, memory,
accuracy and quality are measured by the same code. Prompts are tokenised with the model's HF tokenizer (converted
from the same GGUF) and fed to llama.cpp as token ids, so both engines see identical tokens."""
from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from harness.paths import cache_dir, cached_file_ok, discard, record_size
from harness.precision.proof import Proof, ProofError

LINEAR_SUFFIXES = ("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "ffn_gate.weight",
                   "ffn_up.weight", "ffn_down.weight")


def requantise(source: Path, scheme, threads: int) -> Path:
    """The scheme's GGUF file, produced once from `source` by llama.cpp's quantize function."""
    import llama_cpp

    from harness.precision.gguf import GGUF_TYPES

    target = cache_dir("gguf") / f"{source.stem}.{scheme.gguf_type}.gguf"
    if cached_file_ok(target):
        return target
    discard(target, "has no recorded size or another size (truncated?)")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = GGUF_TYPES[scheme.name][0]
    params.nthread = threads
    params.allow_requantize = True
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    rc = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), params)
    if rc != 0 or not tmp.exists():
        raise RuntimeError(f"llama_model_quantize({source.name} -> {scheme.gguf_type}) failed with code {rc}")
    os.replace(tmp, target)
    record_size(target)
    return target


def tensor_inventory(path: Path) -> list[tuple[str, int, int, str]]:
    """(name, elements, stored bytes, type) of every tensor in the file. Reading a GGUF header with gguf's reader
    walks every metadata string (Gemma 3's 262k-token vocabulary: ~10 s), so the inventory is cached beside the file
    and keyed by its size and modification time."""
    import json

    stat = path.stat()
    key = f"{stat.st_size}:{stat.st_mtime_ns}"
    cached = path.with_name(path.name + ".tensors.json")
    if cached.exists():
        data = json.loads(cached.read_text())
        if data.get("key") == key:
            return [tuple(t) for t in data["tensors"]]
    from gguf import GGUFReader

    tensors = [(t.name, int(t.n_elements), int(t.n_bytes), t.tensor_type.name) for t in GGUFReader(str(path)).tensors]
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"key": key, "tensors": tensors}))
    os.replace(tmp, cached)
    return tensors


def gguf_proof(path: Path, scheme) -> Proof:
    """Tensor types and stored bytes read from the file itself."""
    types: Counter[str] = Counter()
    total = params = lin_params = lin_bytes = quantised = 0
    float_linear = []
    for name, n, b, kind in tensor_inventory(path):
        total += b
        params += n
        if kind not in ("F32", "F16", "BF16"):
            quantised += n
        if name.endswith(LINEAR_SUFFIXES):
            lin_params += n
            lin_bytes += b
            types[kind] += 1
            if kind in ("F32", "F16", "BF16"):
                float_linear.append(name)
    if scheme.quantizes and float_linear:
        raise ProofError(f"{scheme.name}: {len(float_linear)} linear tensors stored as float, e.g. {float_linear[:3]}")
    summary = "; ".join(f"GGUF {k} x{v}" for k, v in types.most_common())
    return Proof(weight_bytes=total, model_params=params, linear_params=lin_params, linear_bytes=lin_bytes,
                 quantized_params=quantised, types=summary)


class LlamaCppEngine:
    name = "llamacpp"
    device = "cpu"

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

    def kv_bytes_per_token(self) -> int:
        cfg = self.hf_config
        heads = cfg.num_attention_heads
        kv = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        return 2 * cfg.num_hidden_layers * kv * head_dim * 2  # f16 cache

    def close(self) -> None:
        """Free llama.cpp's model and context now (left to interpreter exit, its finaliser can fail noisily)."""
        self.llm.close()

    def lookup_only_bytes(self) -> int:
        """Bytes of token_embd when the file has its own output.weight: decode reads one row of the embedding."""
        tensors = {name: b for name, _, b, _ in tensor_inventory(self.path)}
        return tensors.get("token_embd.weight", 0) if "output.weight" in tensors else 0

    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        if input_ids.shape[0] != 1:
            raise ValueError("the llama.cpp engine measures batch size 1 only (bench.batch_size=1)")
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
        sequence is reused (llama.cpp keeps it), which makes few-shot prompts of one subject cheap."""
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


def prepare(cfg, scheme):
    """Build the llama.cpp engine for a GGUF scheme: (engine, tokenizer, loaded, proof, load_s)."""
    from transformers import AutoConfig, AutoTokenizer

    from harness.models import LoadedModel
    from harness.models import packaged_gguf

    if cfg.model.source != "packaged_gguf":
        from harness.run import Unavailable

        raise Unavailable(f"{scheme.name} needs a model shipped as GGUF (smollm2-135m, gemma3-270m), "
                          f"not {cfg.model.name}")
    if cfg.bench.batch_size != 1:
        from harness.run import Unavailable

        raise Unavailable("the llama.cpp engine measures batch size 1 only")
    import llama_cpp  # noqa: F401 - imported before the load is timed, as the torch path does

    t0 = time.perf_counter()
    source = packaged_gguf.gguf_path(cfg.model)
    converted = packaged_gguf.converted_dir(cfg.model, source)
    if not (converted / "config.json").exists():
        packaged_gguf.load(cfg.model)  # converts once: the HF tokenizer and config come from it
    threads = int(cfg.threads or torch.get_num_threads())
    path = requantise(source, scheme, threads)
    proof = gguf_proof(path, scheme)
    tok = AutoTokenizer.from_pretrained(str(converted))
    engine = LlamaCppEngine(path, threads, int(cfg.get("llamacpp", {}).get("n_ctx", 4096)),
                            AutoConfig.from_pretrained(str(converted)))
    load_s = time.perf_counter() - t0
    baseline = (f"GGUF {scheme.gguf_type} requantised by llama.cpp from the {cfg.model.source_quant} source "
                f"(cannot be better than its {cfg.model.source_quant} source)")
    loaded = LoadedModel(model=None, tokenizer=tok, name=cfg.model.name, baseline=baseline, family=cfg.model.family)
    return engine, tok, loaded, proof, load_s
