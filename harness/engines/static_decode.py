"""Greedy decoding without host overhead, on a static KV cache (transformers' StaticCache, one buffer per batch shape
and cache length, reset between generations so its addresses never move). Prefill runs eagerly (its length varies);
each decode step is then one of:

- `cudagraph` (CUDA's default): the eager step captured once per shape as a CUDA graph (torch.cuda.CUDAGraph) and
  replayed: a whole step is one launch, the GPU never waits on the host's Python between kernels, and capturing costs
  one step, not a compilation (torch.compile costs tens of seconds per shape: a GPU sweep's budget);
- `compiled`: the step compiled by torch.compile, as transformers' own `generate(cache_implementation="static")`
  does: on CUDA mode "reduce-overhead" (its CUDA graphs around inductor's kernels), on a CPU inductor's default.

A model the path cannot take falls back to the eager loop (harness/engines/torch_engine.py): transformers' own
verdict first (a quantizer it marks not compileable), else the failure of the first capture or compile, which happens
in a warm-up; the engine's `decode_path` says which path ran, and why when it fell back."""
from __future__ import annotations

from typing import Callable

import torch

# cache lengths are rounded up to a multiple of this, with room for at least this many new tokens: a warm-up's short
# generation (2 tokens) and the timed ones (up to 128) of one prompt share one cache, hence one graph
BUCKET = 128


class StaticDecoder:
    def __init__(self, model, device: str, cache_arg: str, how: str = "compiled"):
        if how not in ("compiled", "cudagraph"):
            raise ValueError(f"a static decoder is compiled or cudagraph, not {how!r}")
        self.model, self.device, self.cache_arg, self.how = model, device, cache_arg, how
        self.cuda = str(device).startswith("cuda")
        if how == "cudagraph" and not self.cuda:
            raise ValueError("CUDA graphs need a CUDA device")
        self.mode = "reduce-overhead" if self.cuda else "default"
        self.caches: dict[tuple[int, int], object] = {}
        self.graphs: dict[tuple[int, int], tuple] = {}
        self.step = None

    @property
    def path(self) -> str:
        if self.how == "cudagraph":
            return "static cache + CUDA graph per step (captured eager step)"
        graphs = " (CUDA graphs)" if self.cuda else ""
        return f"static cache + torch.compile mode={self.mode}{graphs}"

    def compileable(self) -> str:
        """Why this model cannot take the path ('' when it can)."""
        quantizer = getattr(self.model, "hf_quantizer", None)
        if quantizer is not None and not getattr(quantizer, "is_compileable", False):
            return f"{type(quantizer).__name__} is not compileable (transformers' own verdict)"
        return ""

    def _cache(self, batch: int, length: int):
        from transformers import StaticCache

        size = -(-length // BUCKET) * BUCKET
        key = (batch, size)
        if key not in self.caches:
            self.caches[key] = StaticCache(config=self.model.config, max_cache_len=size, max_batch_size=batch,
                                           device=self.device, dtype=self.model.dtype)
        cache = self.caches[key]
        cache.reset()
        return key, cache

    def _eager_step(self, ids, position, cache):
        logits = self.model(input_ids=ids, cache_position=position, use_cache=True, **{self.cache_arg: cache}).logits
        return logits[:, -1, :].argmax(-1, keepdim=True)

    def _compiled_step(self):
        if self.step is None:
            import torch._dynamo

            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            self.step = torch.compile(self._eager_step, mode=self.mode, dynamic=False)
        return self.step

    def _graph(self, key, ids, position, cache):
        """The captured step of this shape: (graph, its input ids, its position, its output)."""
        if key not in self.graphs:
            static_ids, static_pos = ids.clone(), position.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):  # warm-up outside the capture (cuBLAS workspaces, lazy inits)
                for _ in range(2):
                    self._eager_step(static_ids, static_pos, cache)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self._eager_step(static_ids, static_pos, cache)
            self.graphs[key] = (graph, static_ids, static_pos, out)
        return self.graphs[key]

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        ids = input_ids.to(self.device)
        batch, prompt = ids.shape
        key, cache = self._cache(batch, prompt + max(new_tokens, BUCKET))
        out = self.model(input_ids=ids, cache_position=torch.arange(prompt, device=self.device), use_cache=True,
                         logits_to_keep=1, **{self.cache_arg: cache})
        nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
        if on_token:
            on_token()
        tokens = [nxt]
        position = torch.tensor([prompt], device=self.device)
        if new_tokens > 1 and self.how == "cudagraph":
            # the capture's warm-up steps run this first step itself: they write the same keys and values into the
            # same cache slot as the step they precede, so the cache is as it would be without them
            graph, static_ids, static_pos, static_out = self._graph(key, nxt, position, cache)
            for _ in range(new_tokens - 1):
                static_ids.copy_(nxt)
                static_pos.copy_(position)
                graph.replay()
                nxt = static_out.clone()  # the graph's output buffer is overwritten by its next replay
                position = position + 1
                if on_token:
                    on_token()
                tokens.append(nxt)
            return torch.cat(tokens, dim=1)
        step = self._compiled_step() if new_tokens > 1 else None
        for _ in range(new_tokens - 1):
            if self.cuda:
                torch.compiler.cudagraph_mark_step_begin()
            nxt = step(nxt, position, cache).clone()  # a CUDA graph's output is overwritten by its next replay
            position = position + 1  # on the device: no host round trip
            if on_token:
                on_token()
            tokens.append(nxt)
        return torch.cat(tokens, dim=1)
