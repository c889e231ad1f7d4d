"""The quality token set: WikiText-2 raw test windows, the positions scored in each, and the log-probs an engine
gives there; `reference_from` keeps what the baseline's comparison needs (top-k, NLL, argmax)."""
from __future__ import annotations

import torch

from harness.core.corpus import wikitext_test


def corpus_windows(tokenizer, context: int, max_tokens: int) -> list[list[int]]:
    ids = tokenizer.encode(wikitext_test(max(max_tokens * 12, 4096)), add_special_tokens=False)
    bos = tokenizer.bos_token_id
    add_bos = bos is not None and tokenizer.encode("a")[:1] == [bos]
    windows = []
    for start in range(0, min(len(ids), max_tokens) - context + 1, context):
        w = ids[start: start + context]
        if add_bos:
            w = [bos] + w[1:]
        windows.append(w)
    if not windows:
        raise ValueError(f"quality.max_tokens={max_tokens} is smaller than one window of quality.context={context}")
    return windows


def scored_positions(context: int, full: bool = False) -> list[int]:
    """Positions whose logits predict the second half of the window (llama-perplexity's convention), or (`full`,
    GPTQ's protocol: quality.full_windows) every next token of the window."""
    return list(range(0 if full else context // 2 - 1, context - 1))


def window_logprobs(engine, windows: list[list[int]], full: bool = False):
    """Yield (log-probs [P, V] at the scored positions, next-token targets [P]) per window."""
    for w in windows:
        pos = scored_positions(len(w), full)
        (lp,) = engine.logprobs([w], [pos])
        yield lp, torch.tensor([w[p + 1] for p in pos])


def reference_from(engine, windows: list[list[int]], topk: int, full: bool = False) -> dict:
    idx, vals, nll, top1 = [], [], [], []
    for lp, target in window_logprobs(engine, windows, full):
        v, i = lp.topk(min(topk, lp.shape[-1]), dim=-1)
        idx.append(i.to(torch.int32))
        vals.append(v)
        nll.append(-lp.gather(1, target[:, None])[:, 0])
        top1.append(lp.argmax(-1))
    return {"topk_idx": torch.cat(idx), "topk_logp": torch.cat(vals), "nll": torch.cat(nll), "top1": torch.cat(top1)}
