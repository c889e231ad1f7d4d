"""Greedy decoding without host overhead: a static KV cache (transformers' StaticCache, one buffer per batch shape,
reset between generations so its addresses never move) and the decode step compiled by torch.compile, as
transformers' own `generate(cache_implementation="static")` does: on CUDA in mode "reduce-overhead", whose CUDA
graphs replay a whole step as one launch (the GPU is not left waiting on the host's Python between kernels); on a
CPU in inductor's default mode. Prefill runs eagerly (its length varies); each decode step is one compiled call.

Models transformers marks as not compileable (a quantizer that says so) and a compile that fails fall back to the
eager loop; the engine's `decode_path` says which path ran, and why when it fell back."""
from __future__ import annotations

from typing import Callable

import torch

BUCKET = 128  # cache lengths are rounded up to this, so a warm-up's shorter generation reuses the timed one's graph


class StaticDecoder:
    def __init__(self, model, device: str, cache_arg: str):
        self.model, self.device, self.cache_arg = model, device, cache_arg
        self.cuda = str(device).startswith("cuda")
        self.mode = "reduce-overhead" if self.cuda else "default"
        self.caches: dict[tuple[int, int], object] = {}
        self.step = None
        self.failed = ""

    @property
    def path(self) -> str:
        graphs = " (CUDA graphs)" if self.cuda else ""
        return f"static cache + torch.compile mode={self.mode}{graphs}"

    def compileable(self) -> str:
        """Why this model cannot take the compiled path ('' when it can)."""
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
        return cache

    def _compiled_step(self):
        if self.step is None:
            import torch._dynamo

            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            model, arg = self.model, self.cache_arg

            def step(ids, position, cache):
                logits = model(input_ids=ids, cache_position=position, use_cache=True, **{arg: cache}).logits
                return logits[:, -1, :].argmax(-1, keepdim=True)

            self.step = torch.compile(step, mode=self.mode, dynamic=False)
        return self.step

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        ids = input_ids.to(self.device)
        batch, prompt = ids.shape
        cache = self._cache(batch, prompt + new_tokens)
        out = self.model(input_ids=ids, cache_position=torch.arange(prompt, device=self.device), use_cache=True,
                         logits_to_keep=1, **{self.cache_arg: cache})
        nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
        if on_token:
            on_token()
        tokens = [nxt]
        step = self._compiled_step()
        position = torch.tensor([prompt], device=self.device)
        for _ in range(new_tokens - 1):
            if self.cuda:
                torch.compiler.cudagraph_mark_step_begin()
            nxt = step(nxt, position, cache).clone()  # a CUDA graph's output is overwritten by its next replay
            position = position + 1  # on the device: no host round trip
            if on_token:
                on_token()
            tokens.append(nxt)
        return torch.cat(tokens, dim=1)
