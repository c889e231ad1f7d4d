"""Log-likelihood scoring of multiple-choice requests, with lm-evaluation-harness 0.4's tokenisation rules.

lm-eval encodes ``context + continuation`` whole, encodes the context alone, and scores the tokens past the
context's length; trailing spaces of the context move to the continuation; the model input is
``(context_enc + continuation_enc)[-(max_length + 1):][:-1]``. We do the same, but compute each distinct input
once: all single-token continuations of a question share one forward pass of the context; the few-shot prefix of a
group is computed once; batches group similar lengths. Where no few-shot prefix is shared (0-shot tasks such as
ARC-Easy and PIQA) and the engine can (capabilities.shared_context), each question's context is computed once for
all its choices, several questions to a forward (engines/shared_context.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from tqdm import tqdm


class OomBackoff:
    """lm-eval's `batch_size="auto"` behaviour, per call rather than once: a batch that runs out of memory is split in
    halves and retried, and later batches are capped at the size that fitted. A question's score does not depend on
    the batch it is in (right padding; the shared prefix's cache is copied per batch), so answers are the same."""

    def __init__(self):
        self.cap: int | None = None
        self.halvings = 0

    def run(self, fn, items: list) -> list:
        if self.cap is not None and len(items) > self.cap:
            out: list = []
            for i in range(0, len(items), self.cap):
                out += self.run(fn, items[i:i + self.cap])
            return out
        try:
            return list(fn(items))
        except (MemoryError, RuntimeError) as exc:
            if not _out_of_memory(exc) or len(items) == 1:
                raise
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(items) // 2
        self.cap, self.halvings = half, self.halvings + 1
        from harness.core.logs import get

        get(__name__).warning(f"out of memory at a batch of {len(items)}: scoring in batches of at most {half}")
        return self.run(fn, items[:half]) + self.run(fn, items[half:])


def _out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(exc).lower()


@dataclass
class Scored:
    loglikelihoods: list[float]
    lengths_chars: list[int]


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer.encode(context + continuation)
    ctx = tokenizer.encode(context)
    return ctx, whole[len(ctx):]


def _plan(tokenizer, requests, max_length: int):
    """Turn requests into distinct (input ids, [(request, choice, target ids, first position)])."""
    inputs: dict[tuple[int, ...], list] = {}
    for r_i, req in enumerate(requests):
        for c_i, cont in enumerate(req.continuations):
            ctx, cont_ids = encode_pair(tokenizer, req.context, cont)
            full = (ctx + cont_ids)[-(max_length + 1):]
            inp = tuple(full[:-1])
            start = len(inp) - len(cont_ids)  # logits at this position predict cont_ids[0]
            inputs.setdefault(inp, []).append((r_i, c_i, cont_ids, start))
    return inputs


def _common_prefix(seqs) -> int:
    first, n = seqs[0], min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != first[i] for s in seqs):
            return i
    return n


def _units(requests, plan, share_prefix: bool, min_prefix: int):
    """The distinct inputs of each group (an MMLU subject, whose questions share the few-shot examples) with the
    length of their shared prefix when it is worth caching (>= min_prefix tokens), else 0."""
    groups: dict[str, list] = {}
    for inp, entries in plan.items():
        groups.setdefault(requests[entries[0][0]].group, []).append(inp)
    for inps in groups.values():
        n = _prefix_len(inps, plan) if share_prefix else 0
        yield inps, n if n >= min_prefix else 0


def _batches(order, skip: int, batch_size: int | None, batch_tokens: int):
    """Fixed-size batches, or (batch_size None) batches whose padded size stays within `batch_tokens` new tokens:
    short inputs (ARC answers) go many to a forward, long ones (MMLU questions) few or one, as padding a batch to its
    longest input costs more on a CPU than batching gains."""
    if batch_size:
        yield from (order[b: b + batch_size] for b in range(0, len(order), batch_size))
        return
    batch: list = []
    for inp in order:  # longest first
        longest = len(batch[0]) - skip if batch else len(inp) - skip
        if batch and (len(batch) + 1) * longest > batch_tokens:
            yield batch
            batch = []
        batch.append(inp)
    if batch:
        yield batch


def _shared_contexts(requests, plan, inps) -> dict[int, tuple[list[int], list[list[int]]]] | None:
    """Each request of these inputs as (its context, its continuations) when all its choices share one context
    (the position before a continuation ends the context; a left-truncated input can break this), else None."""
    items: dict[int, dict] = {}
    for inp in inps:
        for r_i, c_i, cont, s in plan[inp]:
            ctx = inp[: s + 1]
            item = items.setdefault(r_i, {"ctx": ctx, "conts": {}})
            if item["ctx"] != ctx:
                return None
            item["conts"][c_i] = list(cont)
    return {r_i: (list(it["ctx"]), [it["conts"][c] for c in sorted(it["conts"])]) for r_i, it in items.items()}


def _question_batches(items: dict, batch_size: int | None, batch_tokens: int):
    """Questions to a forward, longest first: `batch_size` of them, or as many as fit `batch_tokens` packed tokens."""
    sizes = {r_i: len(ctx) + sum(len(c) - 1 for c in conts) for r_i, (ctx, conts) in items.items()}
    batch: list[int] = []
    total = 0
    for r_i in sorted(items, key=sizes.get, reverse=True):
        if batch and (len(batch) == batch_size if batch_size else total + sizes[r_i] > batch_tokens):
            yield batch
            batch, total = [], 0
        batch.append(r_i)
        total += sizes[r_i]
    if batch:
        yield batch


def _prefix_len(inps, plan) -> int:
    first_scored = min(s for inp in inps for (_, _, _, s) in plan[inp])
    return min(_common_prefix(inps), first_scored)


def score(engine, tokenizer, requests, batch_size: int | None = 8, progress: bool = True, desc: str = "scoring",
          share_prefix: bool = True, min_prefix: int = 32, batch_tokens: int = 256,
          shared_tokens: int = 512) -> list[Scored]:
    """Score every request. Inputs of one group (an MMLU subject) share their few-shot prefix: its key/value cache
    is computed once and every question of the group only runs its own tokens. `batch_size=None` batches by padded
    size (`batch_tokens`). Engines without a prefix cache (capabilities; llama.cpp: one input per call) reuse the cache of the
    previous input themselves: their inputs go in token order, so those sharing a prefix (the choices of one
    question) come one after the other."""
    import torch

    plan = _plan(tokenizer, requests, engine.max_length)
    results = [Scored([0.0] * len(r.continuations), [len(c) for c in r.continuations]) for r in requests]
    bar = tqdm(total=len(requests), desc=desc, disable=not progress, unit="q", mininterval=2)
    pending = [len(r.continuations) for r in requests]
    cached = engine.capabilities.prefix_cache
    batched = engine.capabilities.batched_logprobs
    backoff = OomBackoff()
    for inps, n in _units(requests, plan, share_prefix, min_prefix):
        shared = _shared_contexts(requests, plan, inps) if share_prefix and not n and \
            engine.capabilities.shared_context else None
        if shared:  # no few-shot prefix to cache: each question's context once for all its choices
            for batch in _question_batches(shared, batch_size if batched else None, shared_tokens):
                for r_i, lls in zip(batch, backoff.run(engine.continuation_logprobs, [shared[r_i] for r_i in batch])):
                    results[r_i].loglikelihoods = lls
                bar.update(len(batch))
            continue
        prefix = (engine.prefix_cache(list(inps[0][:n])), n) if cached and n else None
        order = sorted(inps, key=len, reverse=True) if cached else sorted(inps)
        for batch in _batches(order, n if prefix else 0, batch_size if batched else 1, batch_tokens):
            positions = [sorted({s + k for (_, _, cont, s) in plan[inp] for k in range(len(cont))}) for inp in batch]
            logps = backoff.run(lambda part: engine.logprobs([list(inp) for inp, _ in part], [p for _, p in part],
                                                             prefix=prefix), list(zip(batch, positions)))
            for inp, pos, lp in zip(batch, positions, logps):
                row = {p: j for j, p in enumerate(pos)}
                for r_i, c_i, cont, s in plan[inp]:
                    idx = torch.tensor([row[s + k] for k in range(len(cont))])
                    results[r_i].loglikelihoods[c_i] = float(lp[idx, torch.tensor(cont)].sum())
                    pending[r_i] -= 1
                    if pending[r_i] == 0:
                        bar.update(1)
    bar.close()
    return results
