"""The OpenVINO engine (the openvino runtime alone): the stateful model optimum-intel's exporter converted
(harness/precision/openvino.py), whose KV cache lives inside the compiled model as its state, so nothing is copied
between steps. Prompts come as token ids from the same HF tokenizer as the other engines. The runtime's precision
knobs are set, not left to the CPU it finds: activations and the KV cache in f32 by default
(conf/engine/openvino.yaml); weight decompression and dynamic quantisation of activations are the runtime's own for
compressed weights. What the compiled model reports is recorded with the proof."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from harness.engines.base import BuiltEngine, Capabilities, Engine, kv_bytes_per_token
from harness.core.errors import Unavailable

_ELEMENT_BYTES = {"f32": 4, "f16": 2, "bf16": 2, "u8": 1, "i8": 1}


class OpenVinoEngine(Engine):
    name = "openvino"
    capabilities = Capabilities(continuous_batching=True)
    folder = None  # the exported folder, for the serving front (set by build)

    def __init__(self, model, threads: int, options: dict, hf_config, max_length: int):
        import openvino as ov

        from harness.precision.openvino import lookup_only_bytes

        self.hf_config, self.max_length = hf_config, max_length
        self.options, self.threads = options, threads
        self._lookup = lookup_only_bytes(model)
        self.compiled = ov.Core().compile_model(model, "CPU", {
            "INFERENCE_NUM_THREADS": str(threads), "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", **options})
        self.request = self.compiled.create_infer_request()
        self.vocab_size = int(model.output("logits").get_partial_shape()[-1].get_length())

    def runtime(self) -> str:
        """What the compiled model runs with, as the runtime reports it."""
        get = self.compiled.get_property
        return (f"runtime: inference {get('INFERENCE_PRECISION_HINT').get_type_name()}, KV cache "
                f"{get('KV_CACHE_PRECISION').get_type_name()}, dynamic quantisation group "
                f"{get('DYNAMIC_QUANTIZATION_GROUP_SIZE')}")

    def kv_bytes_per_token(self) -> int:
        kind = self.compiled.get_property("KV_CACHE_PRECISION").get_type_name()
        return kv_bytes_per_token(self.hf_config, _ELEMENT_BYTES.get(kind, 4))

    def lookup_only_bytes(self) -> int:
        return self._lookup

    def close(self) -> None:
        self.request = self.compiled = None

    def server(self, max_memory_percent: float = 0.05, **_):
        """openvino-genai's continuous batching on the same folder and knobs (harness/engines/openvino_serving.py)."""
        import psutil

        from harness.engines.openvino_serving import OpenVinoServer

        cache_gb = max_memory_percent * psutil.virtual_memory().available / 1e9
        return OpenVinoServer(self.folder, self.options, self.threads, cache_gb)

    def _infer(self, ids: np.ndarray, past: int) -> np.ndarray:
        """One call on the stateful model: `ids` [B, T] after `past` cached tokens; logits [B, T, vocab] (a view of
        the runtime's output buffer, valid until the next call)."""
        b, t = ids.shape
        self.request.infer({"input_ids": ids, "attention_mask": np.ones((b, past + t), np.int64),
                            "position_ids": np.broadcast_to(np.arange(past, past + t, dtype=np.int64), (b, t)),
                            "beam_idx": np.arange(b, dtype=np.int32)})
        return self.request.get_tensor("logits").data

    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        """Greedy decoding: all prompts in one call (prefill), then one call per token for all rows."""
        ids = input_ids.numpy().astype(np.int64)
        self.request.reset_state()
        past, out = 0, []
        for _ in range(new_tokens):
            nxt = self._infer(ids, past)[:, -1, :].argmax(-1)
            past += ids.shape[1]
            ids = nxt[:, None].astype(np.int64)
            out.append(ids)
            if on_token:
                on_token()
        return torch.from_numpy(np.concatenate(out, axis=1))

    def logprobs(self, seqs: list[list[int]], positions: list[list[int]], prefix=None) -> list[torch.Tensor]:
        """Log-softmax at the given positions, each sequence from an empty state."""
        if prefix is not None:
            raise ValueError("the openvino engine has no explicit prefix cache; pass prefix=None")
        out = []
        for seq, pos in zip(seqs, positions):
            if len(seq) > self.max_length:
                raise ValueError(f"sequence of {len(seq)} tokens exceeds the openvino engine's max_length "
                                 f"{self.max_length}")
            self.request.reset_state()
            logits = self._infer(np.array([seq], dtype=np.int64), 0)[0]
            out.append(torch.log_softmax(torch.from_numpy(logits[pos].astype(np.float32)), dim=-1))
        return out


def build(cfg, scheme, device: str) -> BuiltEngine:
    """Export the model's checkpoint folder once with optimum-intel (cached), prove the OpenVINO model, compile it."""
    from transformers import AutoConfig

    from harness.models.checkpoint import checkpoint
    from harness.precision.conversion import converted
    from harness.precision.openvino import DATA_AWARE, check_exporter, export, exporter_versions, ov_proof
    from harness.precision.proof import config_param_count

    if device != "cpu":
        raise Unavailable(f"the openvino engine runs on cpu here, not {device}")
    check_exporter()
    import openvino as ov

    ckpt = checkpoint(cfg.model)
    from harness.precision.calibrated import calibration_of

    calibration = calibration_of(cfg) if scheme.name in DATA_AWARE else None
    conv = converted("openvino", ckpt.folder, scheme.name, exporter_versions(scheme.name, calibration),
                     lambda src, out: export(src, scheme, out, calibration))
    t0 = time.perf_counter()
    hf_config = AutoConfig.from_pretrained(str(ckpt.folder))
    model = ov.Core().read_model(str(conv.folder / "openvino_model.xml"))
    from harness.config.schema import engine_knobs

    knobs = engine_knobs(cfg, "openvino")  # harness/config/schema.py's defaults also under engine=auto
    options = {"INFERENCE_PRECISION_HINT": knobs.inference_precision, "KV_CACHE_PRECISION": knobs.kv_cache_precision}
    threads = int(cfg.threads or torch.get_num_threads())
    engine = OpenVinoEngine(model, threads, options, hf_config, knobs.max_length)
    engine.folder = conv.folder
    proof = ov_proof(model, scheme, config_param_count(hf_config), engine.runtime())
    source_weights = f"{ckpt.source_weights}, exported by optimum-intel"
    return BuiltEngine(engine, ckpt.tokenizer, proof, source_weights, ckpt.weights, time.perf_counter() - t0,
                       convert_s=conv.convert_s)
