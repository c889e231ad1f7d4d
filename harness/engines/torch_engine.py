"""The torch engine (transformers models in eager PyTorch): a plain greedy KV-cache loop with a per-step hook,
batched log-probs with a shared-prefix KV cache, and `build`: load the weights, apply the scheme, prove it."""
from __future__ import annotations

import copy
import inspect
import time
from typing import Callable

import torch

from harness.engines.base import BuiltEngine, Capabilities, Engine, kv_bytes_per_token
from harness.engines.shared_context import pack, rows, sees
from harness.errors import Unavailable


class TorchEngine(Engine):
    name = "torch"
    capabilities = Capabilities(prefix_cache=True, batched_logprobs=True, shared_context=True, continuous_batching=True)

    def __init__(self, model, device: str = "cpu", pad_id: int = 0):
        self.model = model.eval()
        self.device = device
        self.pad_id = pad_id
        cfg = model.config
        self.vocab_size = model.get_input_embeddings().num_embeddings
        self.max_length = int(next((getattr(cfg, a) for a in ("n_positions", "max_position_embeddings", "n_ctx")
                                    if getattr(cfg, a, None)), 2048))
        text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        self.window = min(self.max_length, getattr(text, "sliding_window", None) or self.max_length)
        self.cache_arg = cache_argument(model)

    def close(self) -> None:
        self.model = None

    def server(self, **options):
        """transformers' continuous batching behind the serving interface (harness/engines/torch_serving.py)."""
        from harness.engines.torch_serving import TorchServer

        return TorchServer(self.model, pad_id=self.pad_id, **options)

    def kv_bytes_per_token(self) -> int:
        """In the model's activation dtype (that of its input embedding)."""
        return kv_bytes_per_token(self.model.config, self.model.get_input_embeddings().weight.element_size())

    def lookup_only_bytes(self) -> int:
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
        past = returned_cache(out)
        for _ in range(new_tokens - 1):
            out = self.model(input_ids=nxt, use_cache=True, **{self.cache_arg: past})
            nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
            past = returned_cache(out)
            if on_token:
                on_token()
            tokens.append(nxt)
        return torch.cat(tokens, dim=1)

    @torch.no_grad()
    def prefix_cache(self, prefix: list[int]):
        """Key/value cache of a shared prefix (e.g. the few-shot examples of a subject), computed once."""
        out = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True, logits_to_keep=1)
        return returned_cache(out)

    @torch.no_grad()
    def continuation_logprobs(self, items: list[tuple[list[int], list[list[int]]]]) -> list[list[float]]:
        """All items in one row of one forward, packed as engines/shared_context.py lays them out, with the 4D
        attention mask that lets each token see its own question's context and its own continuation only. The mask
        replaces the model's own, sliding windows included: questions longer than the window are scored one
        continuation at a time instead."""
        packed = pack(items)
        if packed.longest_question() > self.window:
            return [[self._alone(ctx, cont) for cont in conts] for ctx, conts in items]
        mask = sees(packed)[None, None]
        if self.model.config._attn_implementation != "sdpa":  # eager attention adds a float mask
            dtype = self.model.get_input_embeddings().weight.dtype
            mask = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)
        keep = rows(packed)
        index = {r: j for j, r in enumerate(keep)}
        logits = self.model(input_ids=torch.tensor([packed.tokens], device=self.device),
                            attention_mask=mask.to(self.device),
                            position_ids=torch.tensor([packed.positions], device=self.device),
                            logits_to_keep=torch.tensor(keep, device=self.device)).logits[0].float()
        logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
        return [[float(logp[[index[r] for r, _ in cont], [tok for _, tok in cont]].sum()) for cont in question]
                for question in packed.targets]

    def _alone(self, context: list[int], continuation: list[int]) -> float:
        seq = context + continuation[:-1]
        (lp,) = self.logprobs([seq], [list(range(len(context) - 1, len(seq)))])
        return float(lp[torch.arange(len(continuation)), torch.tensor(continuation)].sum())

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
        kwargs = {self.cache_arg: cache, "use_cache": True} if cache is not None else {}
        out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                         logits_to_keep=torch.tensor(keep, device=self.device), **kwargs)
        logits = out.logits.float()
        return [torch.log_softmax(logits[i, [index[p] for p in pos]], dim=-1).cpu() for i, pos in enumerate(positions)]


def cache_argument(model) -> str:
    """The forward argument that takes the KV cache: `cache` since transformers 5.2x (this project's 5.24),
    `past_key_values` before (5.17, the GPU machine's). Read from the signature, so both work."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def returned_cache(out):
    """The KV cache a forward returned, under either name (see cache_argument)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def build(cfg, scheme, device: str) -> BuiltEngine:
    """Load the model (with the scheme's load-time config, if any), apply the scheme, prove it, wrap it."""
    from harness.models import load_model, warm_imports
    from harness.precision.proof import config_param_count, count_params, linear_inventory, prove

    warm_imports(cfg.model, scheme.requires)
    t0 = time.perf_counter()
    if scheme.how == "calibrated":  # llm-compressor's checkpoint, decompressed by transformers (precision/calibrated.py)
        from harness.precision.calibrated import torch_model

        model, tok, proof, baseline, weights, convert_s, load_s = torch_model(cfg.model, scheme, device)
        pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        torch.manual_seed(int(cfg.seed))
        return BuiltEngine(TorchEngine(model, device=device, pad_id=pad), tok, proof, baseline, weights, load_s,
                           convert_s=convert_s)
    built_here = cfg.model.get("source") == "random"  # weights created on the device in the scheme's dtype
    load_kwargs = scheme.load_kwargs() if scheme.load_kwargs and not built_here else {}
    if load_kwargs and device == "cuda":
        load_kwargs["device_map"] = "cuda"
    loaded = load_model(cfg.model, device=device, load_kwargs=load_kwargs, dtype=scheme.dtype)
    model = loaded.model
    params = config_param_count(model.config) if load_kwargs else count_params(model)
    inventory = linear_inventory(model)
    if not load_kwargs and device != "cpu":  # cast first, then move: the device never holds an fp32 copy
        model = model.to(dtype=getattr(torch, scheme.dtype)).to(device)
    if scheme.fits and (why := scheme.fits(model)):
        raise Unavailable(f"{scheme.name}: {why}")
    if scheme.apply and not load_kwargs:
        model = scheme.apply(model, device)
    model.eval()
    proof = prove(model, scheme, inventory, params)
    load_s = time.perf_counter() - t0
    tok = loaded.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    torch.manual_seed(int(cfg.seed))
    return BuiltEngine(TorchEngine(model, device=device, pad_id=pad), tok, proof, loaded.baseline, loaded.weights,
                       load_s)
