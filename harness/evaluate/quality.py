"""Quality loss against the full-precision baseline: KL divergence, top-1 agreement and perplexity on WikiText-2
windows, and per-question flips / agreement / exact McNemar test on the accuracy tasks.

Token set: the shipped WikiText-2 raw test text, tokenised once, cut into non-overlapping windows of
`quality.context` tokens (the first window starting at the text's start), at most `quality.max_tokens` tokens in all.
As llama-perplexity does, only the second half of each window is scored, so every scored token has at least
context/2 tokens of history. This is *token* perplexity; lm-eval's `word_perplexity` normalises by words instead,
so the two are not comparable (lm-eval#2301).

KL(baseline || run) uses the baseline's top-k probabilities per position plus one bucket for the rest of the
vocabulary. By the log-sum inequality this is a lower bound of the full-vocabulary KL, exact when the tail is empty
(set quality.topk to the vocabulary size for the exact value)."""
from __future__ import annotations

import math

import numpy as np
import torch

from harness.config.schema import section
from harness.evaluate.windows import corpus_windows, window_logprobs
from harness.core.logs import get


def kl_topk(ref_idx, ref_logp, logp) -> torch.Tensor:
    """Per-position KL(P || Q) on P's top-k plus one tail bucket (a lower bound of the full KL)."""
    p = ref_logp.exp()
    q_logp = logp.gather(1, ref_idx.long())
    head = (p * (ref_logp - q_logp)).sum(-1)
    p_tail = (1 - p.sum(-1)).clamp_min(0)
    q_tail = (1 - q_logp.exp().sum(-1)).clamp_min(1e-30)
    tail = torch.where(p_tail > 1e-12, p_tail * (p_tail.clamp_min(1e-30).log() - q_tail.log()),
                       torch.zeros_like(p_tail))
    return (head + tail).clamp_min(0)


def compare_logits(reference: dict, engine, windows, full_windows: bool = False) -> dict:
    """KLD (on the reference's top-k), top-1 agreement and perplexity against the reference. An engine whose log-probs
    are not whole distributions (capabilities.full_logprobs false) gets no KLD, and the row says why."""
    kls, agree, nll = [], [], []
    full = engine.capabilities.full_logprobs
    offset = 0
    for lp, target in window_logprobs(engine, windows, full_windows):
        n = lp.shape[0]
        sl = slice(offset, offset + n)
        if full:
            kls.append(kl_topk(reference["topk_idx"][sl], reference["topk_logp"][sl], lp))
        agree.append(lp.argmax(-1) == reference["top1"][sl])
        nll.append(-lp.gather(1, target[:, None])[:, 0])
        offset += n
    nll_q = torch.cat(nll).double().numpy()
    nll_p = reference["nll"].double().numpy()[: len(nll_q)]
    ppl_q, ppl_p = math.exp(nll_q.mean()), math.exp(nll_p.mean())
    kld = {"kld_mean": None, "kld_stderr": None, "kld_median": None, "kld_p99": None,
           "quality_note": f"no KLD: the {engine.name} engine returns the log-probability of the actual next token and "
                           "of its top-1 only, not the distribution KLD needs"}
    if full:
        kld = kld_statistics(torch.cat(kls).double().numpy())
    return {"quality_tokens": len(nll_q), **kld, "top1_agree": float(torch.cat(agree).float().mean()),
            **token_probability_change(nll_q, nll_p), "ppl": ppl_q, "ppl_delta": ppl_q - ppl_p,
            "ppl_delta_stderr": ppl_delta_stderr(nll_q, nll_p)}


def kld_statistics(kl: np.ndarray) -> dict:
    """llama-perplexity's KL summary: mean with its standard error (sqrt(var / (n - 1)), as its
    mean_and_uncertainty), median, and 99th percentile (linear interpolation between order statistics, as its
    `percentile` and numpy's default)."""
    n = len(kl)
    return {"kld_mean": float(kl.mean()), "kld_stderr": float(kl.std() / math.sqrt(n - 1)) if n > 1 else float("nan"),
            "kld_median": float(np.median(kl)), "kld_p99": float(np.percentile(kl, 99))}


def token_probability_change(nll_q: np.ndarray, nll_p: np.ndarray) -> dict:
    """RMS of Δp = p_run(next token) - p_reference(next token) over the scored positions, with its standard error
    (llama-perplexity's "RMS Δp": delta method on the mean of Δp², 0.5 / rms x its standard error)."""
    dp2 = (np.exp(-nll_q) - np.exp(-nll_p[: len(nll_q)])) ** 2
    n = len(dp2)
    rms = float(math.sqrt(dp2.mean()))
    se = float(0.5 / rms * dp2.std() / math.sqrt(n - 1)) if n > 1 and rms > 0 else float("nan")
    return {"rms_dp": rms, "rms_dp_stderr": se}


def ppl_delta_stderr(nll_q: np.ndarray, nll_p: np.ndarray) -> float:
    """Delta-method standard error of exp(mean nll_q) - exp(mean nll_p) on paired tokens (independence assumed
    between positions, as llama-perplexity does)."""
    n = len(nll_q)
    if n < 2:
        return float("nan")
    a, b = math.exp(nll_q.mean()), math.exp(nll_p.mean())
    cov = np.cov(nll_q, nll_p) / n
    var = a * a * cov[0, 0] + b * b * cov[1, 1] - 2 * a * b * cov[0, 1]
    return math.sqrt(max(var, 0.0))


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar test: b, c are the discordant counts; binomial(b + c, 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare_predictions(base: list[dict], run: list[dict]) -> dict:
    """Agreement, flips and McNemar p of a run's per-question predictions against the baseline's (same questions)."""
    base_by = {p["id"]: p for p in base}
    missing = [p["id"] for p in run if p["id"] not in base_by]
    if missing:
        raise ValueError(f"baseline predictions lack {len(missing)} of this run's questions, e.g. {missing[:3]}")
    pairs = [(base_by[p["id"]], p) for p in run]
    b = sum(1 for x, y in pairs if x["pred"] == x["gold"] and y["pred"] != y["gold"])
    c = sum(1 for x, y in pairs if x["pred"] != x["gold"] and y["pred"] == y["gold"])
    agree = sum(1 for x, y in pairs if x["pred"] == y["pred"]) / len(pairs)
    return {"agree": agree, "flips_correct_to_wrong": b, "flips_wrong_to_correct": c, "mcnemar_p": mcnemar_exact_p(b, c)}


def quality_columns(cfg, engine, tokenizer, predictions: dict) -> dict:
    from harness.evaluate.reference import ensure_reference, reference_label

    q = section(cfg, "quality")
    windows = corpus_windows(tokenizer, q.context, q.max_tokens)
    reference = ensure_reference(cfg, windows, engine=engine, tokenizer=tokenizer, predictions=predictions)
    out = {"quality_ref": reference_label(cfg),
           **compare_logits(reference["logits"], engine, windows, q.full_windows)}
    for task, preds in predictions.items():
        base = reference["predictions"].get(task)
        if base is None:
            continue
        try:
            cmp = compare_predictions(base, preds)
        except ValueError as exc:  # a reference from other questions: keep the run, leave these columns empty
            get(__name__).warning(f"{task}: {exc}; agreement columns left empty")
            continue
        out.update({f"{task}_agree": cmp["agree"], f"{task}_mcnemar_p": cmp["mcnemar_p"]})
        if task == "mmlu":
            out.update(mmlu_flips_correct_to_wrong=cmp["flips_correct_to_wrong"],
                       mmlu_flips_wrong_to_correct=cmp["flips_wrong_to_correct"])
    return out
