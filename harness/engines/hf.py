"""The torch / transformers engine: a plain greedy KV-cache loop with a per-step hook, and batched log-probs."""
from __future__ import annotations

import copy
from typing import Callable

import torch


class HFEngine:
    name = "hf"

    def __init__(self, model, device: str = "cpu", pad_id: int = 0):
        self.model = model.eval()
        self.device = device
        self.pad_id = pad_id
        cfg = model.config
        self.vocab_size = model.get_input_embeddings().num_embeddings
        self.max_length = int(next((getattr(cfg, a) for a in ("n_positions", "max_position_embeddings", "n_ctx")
                                    if getattr(cfg, a, None)), 2048))

    def kv_bytes_per_token(self) -> int:
        """Bytes of key/value cache one token adds (all layers), in the model's activation dtype."""
        cfg = self.model.config.get_text_config()
        heads = cfg.num_attention_heads
        kv = getattr(cfg, "num_key_value_heads", None) or heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        dtype = self.model.get_input_embeddings().weight.dtype
        return 2 * cfg.num_hidden_layers * kv * head_dim * torch.tensor([], dtype=dtype).element_size()

    def lookup_only_bytes(self) -> int:
        """Bytes of the input embedding when it is not also the output projection: decode reads one row of it."""
        emb = self.model.get_input_embeddings().weight
        out = self.model.get_output_embeddings()
        out_w = getattr(out, "weight", None) if out is not None else None
        if isinstance(out_w, torch.Tensor) and out_w.data_ptr() == emb.data_ptr():
            return 0
        return emb.numel() * emb.element_size()

    @torch.no_grad()  # not inference_mode: optimum-quanto's int4 kernels fail under it
    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        """Greedy decoding of exactly `new_tokens` tokens; `on_token` is called as soon as each token exists."""
        ids = input_ids.to(self.device)
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
        if on_token:
            on_token()
        tokens = [nxt]
        past = out.cache
        for _ in range(new_tokens - 1):
            out = self.model(input_ids=nxt, cache=past, use_cache=True)
            nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
            past = out.cache
            if on_token:
                on_token()
            tokens.append(nxt)
        return torch.cat(tokens, dim=1)

    @torch.no_grad()
    def prefix_cache(self, prefix: list[int]):
        """Key/value cache of a shared prefix (e.g. the few-shot examples of a subject), computed once."""
        out = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True, logits_to_keep=1)
        return out.cache

    @torch.no_grad()
    def logprobs(self, seqs: list[list[int]], positions: list[list[int]], prefix=None) -> list[torch.Tensor]:
        """Log-softmax (float32) at the given positions of each sequence. Sequences are right-padded into one batch
        (causal attention: padding on the right never changes the real positions' logits). With
        ``prefix=(cache, n)`` the first n tokens of every sequence are taken from that cache instead of recomputed."""
        cache, skip = prefix if prefix is not None else (None, 0)
        if cache is not None:
            cache = copy.deepcopy(cache)
            if len(seqs) > 1:
                cache.batch_repeat_interleave(len(seqs))
        longest = max(len(s) for s in seqs) - skip
        ids = torch.full((len(seqs), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), skip + longest), dtype=torch.long)
        mask[:, :skip] = 1
        for i, s in enumerate(seqs):
            ids[i, : len(s) - skip] = torch.tensor(s[skip:])
            mask[i, : len(s)] = 1
        keep = sorted({p - skip for pos in positions for p in pos})
        index = {p + skip: j for j, p in enumerate(keep)}
        kwargs = {"cache": cache, "use_cache": True} if cache is not None else {}
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         logits_to_keep=torch.tensor(keep, device=self.device), **kwargs)
        logits = out.logits.float()
        return [torch.log_softmax(logits[i, [index[p] for p in pos]], dim=-1).cpu() for i, pos in enumerate(positions)]
