"""The ONNX Runtime engine (onnxruntime-genai): the model the builder converted (harness/precision/ort_genai.py), run
by ONNX Runtime GenAI's generator, whose KV cache stays inside the runtime (no cache copied through numpy between
steps). Prompts come as token ids from the same HF tokenizer as the other engines. Scoring reuses the KV cache of the
longest common prefix with the previous sequence (`rewind_to`), as the llama.cpp engine does."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from harness.engines.base import BuiltEngine, Capabilities, Engine, kv_bytes_per_token
from harness.core.errors import Unavailable


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"
    capabilities = Capabilities()

    def __init__(self, folder: Path, threads: int, max_length: int, hf_config):
        import onnxruntime_genai as og

        self.og, self.folder, self.hf_config = og, folder, hf_config
        config = og.Config(str(folder))
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": threads, "inter_op_num_threads": 1}}}}))
        self.model = og.Model(config)
        model_config = json.loads((folder / "genai_config.json").read_text())["model"]
        self.vocab_size = int(model_config["vocab_size"])
        self.max_length = min(max_length, int(model_config["context_length"]))
        self._scorer = None  # a generator kept for scoring, with the tokens its KV cache holds
        self._tokens: list[int] = []

    def _generator(self, batch: int, max_length: int):
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=max_length, do_sample=False, batch_size=batch)
        return self.og.Generator(self.model, params)

    def kv_bytes_per_token(self) -> int:
        return kv_bytes_per_token(self.hf_config, 4)  # the builder's CPU models keep an fp32 cache

    def lookup_only_bytes(self) -> int:
        from harness.precision.onnx_proof import lookup_only_bytes

        return lookup_only_bytes(self.folder)

    def close(self) -> None:
        self._scorer = None
        self.model = None

    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        """Greedy decoding: the prompt (all rows at once) in `append_tokens`, then one `generate_next_token` per
        token; the first picks from the prompt's logits."""
        n, length = input_ids.shape
        gen = self._generator(n, length + new_tokens)
        gen.append_tokens(input_ids.numpy().astype(np.int32))
        out = []
        for _ in range(new_tokens):
            gen.generate_next_token()
            out.append(gen.get_next_tokens().copy())
            if on_token:
                on_token()
        return torch.from_numpy(np.stack(out, axis=1).astype(np.int64))

    def logprobs(self, seqs: list[list[int]], positions: list[list[int]], prefix=None) -> list[torch.Tensor]:
        """Log-softmax at the given positions, one sequence at a time on one scoring generator that keeps the KV cache
        of the longest common prefix with the previous sequence."""
        if prefix is not None:
            raise ValueError("the onnxruntime engine has no explicit prefix cache; pass prefix=None")
        out = []
        for seq, pos in zip(seqs, positions):
            if len(seq) > self.max_length:
                raise ValueError(f"sequence of {len(seq)} tokens exceeds the onnxruntime engine's max_length "
                                 f"{self.max_length}")
            if self._scorer is None:
                self._scorer, self._tokens = self._generator(1, self.max_length), []
            keep = 0
            for a, b in zip(self._tokens, seq):
                if a != b:
                    break
                keep += 1
            keep = min(keep, min(pos))
            if keep < len(self._tokens):
                self._scorer.rewind_to(keep)
            self._scorer.append_tokens(np.array([seq[keep:]], dtype=np.int32))
            self._tokens = list(seq)
            logits = self._scorer.get_output("logits")[0]
            rows = torch.from_numpy(np.stack([logits[p - keep] for p in pos]).astype(np.float32))
            out.append(torch.log_softmax(rows, dim=-1))
        return out


def build(cfg, scheme, device: str) -> BuiltEngine:
    """Convert the model's checkpoint folder once with the builder (cached), prove the ONNX graph, load it."""
    from transformers import AutoConfig

    from harness.models.checkpoint import checkpoint
    from harness.precision.conversion import converted
    from harness.precision.onnx_proof import onnx_proof
    from harness.precision.ort_genai import build_onnx, versions
    from harness.precision.proof import config_param_count

    if device != "cpu":
        raise Unavailable(f"the onnxruntime engine runs on cpu here, not {device}")
    import onnxruntime_genai  # noqa: F401 - imported before the load is timed, as the torch engine does

    ckpt = checkpoint(cfg.model)
    conv = converted("onnx", ckpt.folder, scheme.name, versions(), lambda src, out: build_onnx(src, scheme, out))
    t0 = time.perf_counter()
    hf_config = AutoConfig.from_pretrained(str(ckpt.folder))
    proof = onnx_proof(conv.folder, scheme, config_param_count(hf_config))
    threads = int(cfg.threads or torch.get_num_threads())
    from harness.config.schema import engine_knobs

    engine = OnnxRuntimeEngine(conv.folder, threads, engine_knobs(cfg, "onnxruntime").max_length, hf_config)
    source_weights = f"{ckpt.source_weights}, converted by the onnxruntime-genai model builder"
    return BuiltEngine(engine, ckpt.tokenizer, proof, source_weights, ckpt.weights, time.perf_counter() - t0,
                       convert_s=conv.convert_s)
