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

from harness.paths import cache_dir
from harness.precision.proof import Proof, ProofError

LINEAR_SUFFIXES = ("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight", "ffn_gate.weight",
                   "ffn_up.weight", "ffn_down.weight")


def requantise(source: Path, scheme, threads: int) -> Path:
    """The scheme's GGUF file, produced once from `source` by llama.cpp's quantize function."""
    import llama_cpp

    from harness.precision.gguf import GGUF_TYPES

    target = cache_dir("gguf") / f"{source.stem}.{scheme.gguf_type}.gguf"
    if target.exists():
        return target
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = GGUF_TYPES[scheme.name][0]
    params.nthread = threads
    params.allow_requantize = True
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    rc = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), params)
    if rc != 0 or not tmp.exists():
        raise RuntimeError(f"llama_model_quantize({source.name} -> {scheme.gguf_type}) failed with code {rc}")
    os.replace(tmp, target)
    return target


def gguf_proof(path: Path, scheme) -> Proof:
    """Tensor types and stored bytes read from the file itself."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    types: Counter[str] = Counter()
    total = params = lin_params = lin_bytes = quantised = 0
    float_linear = []
    for t in reader.tensors:
        n, b, kind = int(t.n_elements), int(t.n_bytes), t.tensor_type.name
        total += b
        params += n
        if kind not in ("F32", "F16", "BF16"):
            quantised += n
        if t.name.endswith(LINEAR_SUFFIXES):
            lin_params += n
            lin_bytes += b
            types[kind] += 1
            if kind in ("F32", "F16", "BF16"):
                float_linear.append(t.name)
    if scheme.quantizes and float_linear:
        raise ProofError(f"{scheme.name}: {len(float_linear)} linear tensors stored as float, e.g. {float_linear[:3]}")
    summary = "; ".join(f"GGUF {k} x{v}" for k, v in types.most_common())
    return Proof(weight_bytes=total, model_params=params, linear_params=lin_params, linear_bytes=lin_bytes,
                 quantized_params=quantised, types=summary)


class LlamaCppEngine:
    name = "llamacpp"
    device = "cpu"

    def __init__(self, path: Path, threads: int, n_ctx: int, hf_config, pad_id: int = 0):
        self.path, self.threads, self.n_ctx, self.hf_config = path, threads, n_ctx, hf_config
        self.max_length = n_ctx - 1
        self._speed = None
        self._score = None
        self._tokens: list[int] = []
        self.vocab_size = self._model(False).n_vocab()

    def _model(self, logits_all: bool):
        from llama_cpp import Llama

        attr = "_score" if logits_all else "_speed"
        if getattr(self, attr) is None:
            other = "_speed" if logits_all else "_score"
            setattr(self, other, None)  # one llama.cpp context at a time keeps memory honest
            setattr(self, attr, Llama(model_path=str(self.path), n_ctx=self.n_ctx, n_batch=512, n_threads=self.threads,
                                      logits_all=logits_all, verbose=False, seed=0))
            self._tokens = []
        return getattr(self, attr)

    def kv_bytes_per_token(self) -> int:
        cfg = self.hf_config
        heads = cfg.num_attention_heads
        kv = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        return 2 * cfg.num_hidden_layers * kv * head_dim * 2  # f16 cache

    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        if input_ids.shape[0] != 1:
            raise ValueError("the llama.cpp engine measures batch size 1 only (bench.batch_size=1)")
        llm = self._model(False)
        llm.reset()
        n_vocab = llm.n_vocab()
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

    def logprobs(self, seqs: list[list[int]], positions: list[list[int]], prefix=None) -> list[torch.Tensor]:
        """Log-softmax at the given positions; the KV cache of the longest common prefix with the previous
        sequence is reused (llama.cpp keeps it), which makes few-shot prompts of one subject cheap."""
        llm = self._model(True)
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
            llm.n_tokens = keep
            llm.eval(seq[keep:])
            self._tokens = list(seq)
            logits = torch.from_numpy(np.array(llm.scores[pos, :], dtype=np.float32))
            out.append(torch.log_softmax(logits, dim=-1))
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
