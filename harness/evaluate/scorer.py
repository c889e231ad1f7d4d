"""Log-likelihood scoring of multiple-choice requests, with lm-evaluation-harness 0.4's tokenisation rules.

lm-eval encodes ``context + continuation`` whole, encodes the context alone, and scores the tokens past the
context's length; trailing spaces of the context move to the continuation; the model input is
``(context_enc + continuation_enc)[-(max_length + 1):][:-1]``. We do the same, but compute each distinct input
once: all single-token continuations of a question share one forward pass of the context; a shared prefix (few-shot
examples, or a question whose choices span several tokens) is computed once; batches group similar lengths.
"""
from __future__ import annotations

from dataclasses import dataclass

from tqdm import tqdm


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
    """Split the distinct inputs into units that share one key/value prefix: a whole group (an MMLU subject, whose
    questions share the few-shot examples) when its common prefix is long enough, else each request on its own (the
    choices of one ARC question share the question). Yields (inputs, prefix length or 0)."""
    groups: dict[str, list] = {}
    for inp, entries in plan.items():
        groups.setdefault(requests[entries[0][0]].group, []).append(inp)
    for inps in groups.values():
        n = _prefix_len(inps, plan) if share_prefix else 0
        if n >= min_prefix or not share_prefix:
            yield inps, n
            continue
        by_request: dict[int, list] = {}
        for inp in inps:
            by_request.setdefault(plan[inp][0][0], []).append(inp)
        for sub in by_request.values():
            m = _prefix_len(sub, plan) if len(sub) > 1 else 0
            yield sub, m if m >= min(min_prefix, 8) else 0


def _prefix_len(inps, plan) -> int:
    first_scored = min(s for inp in inps for (_, _, _, s) in plan[inp])
    return min(_common_prefix(inps), first_scored)


def score(engine, tokenizer, requests, batch_size: int = 8, progress: bool = True, desc: str = "scoring",
          share_prefix: bool = True, min_prefix: int = 32) -> list[Scored]:
    """Score every request. Inputs that share a prefix (the few-shot examples of an MMLU subject, or the question of
    a multi-token-choice task) compute its key/value cache once; each input then only runs its own tokens. Engines
    without `prefix_cache` (llama.cpp) reuse the cache of the previous input themselves: inputs are ordered so that
    those sharing a prefix come one after the other."""
    import torch

    plan = _plan(tokenizer, requests, engine.max_length)
    results = [Scored([0.0] * len(r.continuations), [len(c) for c in r.continuations]) for r in requests]
    bar = tqdm(total=len(requests), desc=desc, disable=not progress, unit="q", mininterval=2)
    pending = [len(r.continuations) for r in requests]
    cached = hasattr(engine, "prefix_cache")
    for inps, n in _units(requests, plan, share_prefix, min_prefix):
        prefix = (engine.prefix_cache(list(inps[0][:n])), n) if cached and n else None
        # similar lengths together (little padding) for batches; token order (shared prefixes adjacent) otherwise
        order = sorted(inps, key=len, reverse=True) if batch_size > 1 else sorted(inps)
        for b in range(0, len(order), batch_size):
            batch = order[b: b + batch_size]
            positions = [sorted({s + k for (_, _, cont, s) in plan[inp] for k in range(len(cont))}) for inp in batch]
            logps = engine.logprobs([list(inp) for inp in batch], positions, prefix=prefix)
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
