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


class TorchEngine(Engine):
    name = "torch"
    capabilities = Capabilities(prefix_cache=True, batched_logprobs=True, shared_context=True, continuous_batching=True)

    def __init__(self, model, device: str = "cpu", pad_id: int = 0, decode: str = "eager"):
        """`decode`: "eager" (the plain loop with transformers' dynamic cache), "compiled" (a static cache and a
        torch.compile'd step), "cudagraph" (a static cache and each step replayed as a captured CUDA graph; CUDA only)
        or "auto" (cudagraph on CUDA, eager on a CPU): harness/engines/static_decode.py."""
        self.model = model.eval()
        self.device = device
        self.pad_id = pad_id
        if decode not in ("auto", "eager", "compiled", "cudagraph"):
            raise ValueError(f"engine.decode must be auto, eager, compiled or cudagraph, not {decode!r}")
        cuda = str(device).startswith("cuda")
        if decode == "cudagraph" and not cuda:
            raise ValueError("engine.decode=cudagraph needs device=cuda (on a CPU: eager or compiled)")
        how = "cudagraph" if decode == "auto" and cuda else decode
        self.static = None
        self.decode_note = ""
        if how in ("compiled", "cudagraph"):
            from harness.engines.static_decode import StaticDecoder

            self.static = StaticDecoder(model, device, cache_argument(model), how)
            why = self.static.compileable()
            if why:
                self.static, self.decode_note = None, f" (compiled path not taken: {why})"
        cfg = model.config
        self.vocab_size = model.get_input_embeddings().num_embeddings
        self.max_length = int(next((getattr(cfg, a) for a in ("n_positions", "max_position_embeddings", "n_ctx")
                                    if getattr(cfg, a, None)), 2048))
        text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        self.window = min(self.max_length, getattr(text, "sliding_window", None) or self.max_length)
        self.cache_arg = cache_argument(model)

    def close(self) -> None:
        self.model = None
        self.static = None

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

    @property
    def decode_path(self) -> str:
        if self.static is not None:
            return self.static.path
        return "eager loop, dynamic cache" + self.decode_note

    def generate(self, input_ids: torch.Tensor, new_tokens: int,
                 on_token: Callable[[], None] | None = None) -> torch.Tensor:
        """Greedy decoding of exactly `new_tokens` tokens; `on_token` is called as soon as each token exists. The
        compiled path, where asked for, falls back to the eager loop for good if it fails (the first call is a
        warm-up's), and `decode_path` says why."""
        if self.static is not None:
            marks = [0]

            def counted() -> None:
                marks[0] += 1
                if on_token:
                    on_token()

            try:
                return self.static.generate(input_ids, new_tokens, counted)
            except Exception as exc:  # noqa: BLE001 - a model torch.compile cannot take: measured eager, said so
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
                self.static, self.decode_note = None, f" (torch.compile failed: {type(exc).__name__}: {first})"
                if str(self.device).startswith("cuda"):
                    torch.cuda.empty_cache()
                if marks[0] and on_token:
                    raise RuntimeError(f"the compiled decode path failed inside a timed generation{self.decode_note}; "
                                       "give bench.warmup >= 1 (the warm-up finds it) or engine.decode=eager") from exc
        return self._generate_eager(input_ids, new_tokens, on_token)

    @torch.no_grad()  # not inference_mode: optimum-quanto's int4 kernels fail under it
    def _generate_eager(self, input_ids: torch.Tensor, new_tokens: int,
                        on_token: Callable[[], None] | None = None) -> torch.Tensor:
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
    """The model as the scheme prepared it (harness/precision/prepare.py: loaded, quantised, placed, proven), wrapped."""
    from harness.precision.prepare import prepare

    p = prepare(cfg, scheme, device)
    pad = p.tokenizer.pad_token_id if p.tokenizer.pad_token_id is not None else (p.tokenizer.eos_token_id or 0)
    from harness.config.schema import engine_knobs

    decode = engine_knobs(cfg, "torch").decode
    return BuiltEngine(TorchEngine(p.model, device=device, pad_id=pad, decode=decode), p.tokenizer, p.proof,
                       p.source_weights, p.weights,
                       p.load_s, convert_s=p.convert_s, plan=p.plan, placement=p.placement,
                       architecture=p.architecture)
