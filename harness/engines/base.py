"""The engine contract: what measurement and evaluation may ask of any engine, and the registry of engines.

An engine turns token ids into tokens (greedy, fixed length, a hook per token) and into log-probabilities at chosen
positions; it reports the bytes one decode step reads, and it is closed when the run ends. What an engine can do
beyond that is declared in `Capabilities` (flags, never probed with hasattr). Building an engine for a (model,
scheme) is one function per engine, registered here, returning one `BuiltEngine`.

Adding an engine: one module in this package with an `Engine` subclass and a `build` function, one line in
`ENGINES`, one `conf/engine/<name>.yaml`, and the engine's name in the `engines` of the schemes it runs."""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from harness.engines.timer import StepTimer
from harness.core.errors import Unavailable
from harness.core.registry import Registry


@dataclass(frozen=True)
class Capabilities:
    prefix_cache: bool = False  # `prefix_cache(ids)` + `logprobs(..., prefix=)` share a prefix's KV cache
    batched_logprobs: bool = False  # `logprobs` takes several sequences in one call efficiently
    max_batch: int | None = None  # largest batch `generate` takes (None: any)
    shared_context: bool = False  # `continuation_logprobs` computes each context once for all its continuations
    continuous_batching: bool = False  # `server()` admits requests as they arrive and lets them leave when done
    full_logprobs: bool = True  # `logprobs` rows are whole distributions (False: the actual next token and top-1 only)


class Engine(ABC):
    """One loaded model behind one runtime."""

    name: str = ""
    capabilities = Capabilities()
    device: str = "cpu"
    vocab_size: int
    max_length: int  # longest sequence `logprobs` takes
    decode_path: str = ""  # how decode steps run, where an engine has more than one way (torch: eager or compiled)

    @abstractmethod
    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        """Greedy decoding of exactly `new_tokens` tokens per row of `input_ids` [B, T] -> [B, new_tokens];
        `on_token` is called as soon as each token exists (the first after prefill)."""

    @abstractmethod
    def logprobs(self, seqs: list[list[int]], positions: list[list[int]], prefix: Any = None) -> list[torch.Tensor]:
        """Log-softmax (float32, [len(positions_i), vocab]) at the given positions of each sequence. `prefix` is what
        `prefix_cache` returned, with the number of tokens it covers; only for engines that declare prefix_cache."""

    def continuation_logprobs(self, items: list[tuple[list[int], list[list[int]]]]) -> list[list[float]]:
        """For each (context ids, [continuation ids]): the summed log-probability of each continuation after the
        context, the context computed once for all its continuations; only for engines that declare
        shared_context."""
        raise NotImplementedError(f"the {self.name} engine does not score continuations on a shared context "
                                  "(capabilities.shared_context is false)")

    def prefix_cache(self, prefix: list[int]) -> Any:
        raise NotImplementedError(f"the {self.name} engine has no prefix cache (capabilities.prefix_cache is false)")

    def server(self, **options) -> Any:
        """A serving front (continuous batching): `submit(request_id, prompt_ids, new_tokens, on_first_token,
        on_done)`, greedy, fixed length (EOS ignored), and `close()`. See harness/measure/loadgen.py."""
        raise NotImplementedError(f"the {self.name} engine does not batch continuously "
                                  "(capabilities.continuous_batching is false)")

    @abstractmethod
    def kv_bytes_per_token(self) -> int:
        """Bytes of key/value cache one token adds, all layers."""

    def lookup_only_bytes(self) -> int:
        """Bytes of an input embedding that decode only looks up (one row per token), not also the output projection."""
        return 0

    def step_bytes(self, weight_bytes: int, context_tokens: int, batch_size: int) -> int:
        """Bytes one decode step reads: every weight except lookup-only tables, plus each sequence's KV cache."""
        lookup = self.lookup_only_bytes()
        if not 0 <= lookup < weight_bytes:
            raise ValueError(f"lookup-only bytes {lookup} must be in [0, weight bytes {weight_bytes})")
        return weight_bytes - lookup + batch_size * self.kv_bytes_per_token() * context_tokens

    def external_rss_mb(self) -> float | None:
        """Resident memory of the engine's own processes outside the harness (a server), or None when it runs in the
        harness's process (its memory is then in peak_rss_mb)."""
        return None

    def timer(self) -> StepTimer:
        """The per-token timer for this engine's device (CUDA events on a GPU)."""
        return StepTimer(self.device)

    def close(self) -> None:
        """Free the runtime's memory now; calling it twice is harmless."""


@dataclass
class BuiltEngine:
    """What building an engine returns, from one place (`build_engine`)."""
    engine: Engine
    tokenizer: Any
    proof: Any  # harness.precision.proof.Proof: types and bytes really stored
    source_weights: str  # what the full-precision weights every scheme starts from are
    weights: str  # real | random
    load_s: float  # seconds to load, apply the scheme and prove it
    convert_s: float | None = None  # seconds a one-off conversion for this engine took (cached: when it was made)
    plan: Any = None  # harness.precision.plan.LoadPlan, where the engine loads through one
    placement: dict = field(default_factory=dict)  # device -> bytes of weights there
    architecture: str = ""  # the checkpoint's architecture class


def kv_bytes_per_token(config, element_size: int) -> int:
    """Key/value cache bytes per token from a transformers config: 2 (K and V) x layers x kv heads x head dim."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = cfg.num_attention_heads
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return 2 * cfg.num_hidden_layers * kv * head_dim * element_size


# engine name -> module in this package with `build(cfg, scheme, device) -> BuiltEngine` (imported when used)
ENGINES: Registry[str] = Registry("engine", Unavailable)
for _name, _module in (("torch", "torch_engine"), ("llamacpp", "llamacpp"), ("onnxruntime", "ort_engine"),
                       ("openvino", "openvino_engine"), ("vllm", "vllm_engine")):
    ENGINES.register(_name, f"harness.engines.{_module}")


def engine_names() -> list[str]:
    return ENGINES.names()


def resolve_engine(requested: str, scheme) -> str:
    """The engine a run uses: `auto` is the scheme's first engine. A pair that cannot run is Unavailable, before any
    load."""
    if requested == "auto":
        return scheme.engines[0]
    ENGINES.get(requested)  # an unknown engine: Unavailable with the choices
    if requested not in scheme.engines:
        raise Unavailable(f"{scheme.name} runs on the {'/'.join(scheme.engines)} engine, not {requested} "
                          f"(engine=auto picks {scheme.engines[0]})")
    return requested


def build_engine(cfg, scheme, device: str, engine: str) -> BuiltEngine:
    """Load the model, apply the scheme, prove it and wrap it in the named engine: the one place engines are built."""
    return importlib.import_module(ENGINES.get(engine)).build(cfg, scheme, device)
