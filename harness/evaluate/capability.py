"""Capability: accuracy that ranks models, on tasks where the fp32 baselines are above chance (ARC-Easy, PIQA), with a
95% interval, without scoring every question for every scheme.

Target: the accuracy a run would score on the tasks' full sets (ARC-Easy test 2,376 + PIQA validation 1,838
questions, question-weighted), i.e. what lm-eval prints when run on them. Estimator (a difference estimator from
survey sampling, paired on questions):

  - each model's baseline (capability.reference, fp32) is scored once on the full sets and cached: its accuracy B_t
    on task t is known exactly;
  - every other run scores a seeded simple random sample of n_t questions of each task (the same questions for every
    run of the model), and d_i = correct_run(i) - correct_baseline(i) on them;
  - estimate_t = B_t + mean(d), variance_t = (1 - n_t / N_t) * S2_t / n_t (finite-population correction), where S2_t
    is the sample variance of d, floored at p~ - mean(d)^2 with p~ = (k + 1) / (n_t + 2), k the number of questions
    answered differently (one pseudo-disagreement, so that a sample without disagreements does not claim zero
    uncertainty);
  - capability = sum_t w_t estimate_t and its variance sum_t w_t^2 variance_t, with w_t = N_t / sum N; the 95%
    interval is +- 1.96 sqrt(variance).
Paired differences have small variance because most answers agree: a scheme that changes 4% of the answers gets
+- 0.02 from about 300 sampled questions of each task instead of the whole 4,214.

The baseline run itself is exact (its full-set accuracy, interval 0). `capability_set_ci95` is the full sets' own
binomial half-width (the question-sampling error of the benchmark itself): common to all runs of one model, it
matters when models are compared, and the frontier adds it there (harness/analysis/frontier.py).

This module is the statistics and the run's columns; the baseline's cache is harness/evaluate/reference_cache.py and
the child process that builds it harness/evaluate/reference_process.py."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from harness.config.schema import setting


@dataclass
class TaskSample:
    """One task: full-set size, the baseline's full-set accuracy, and both runs' correctness on the sample."""
    full_n: int
    reference_acc: float
    reference_correct: list[int]
    run_correct: list[int]


def sample_indices(full_n: int, n: int, seed: int) -> list[int]:
    """A seeded simple random sample of question positions (all of them when n >= full_n), sorted: the first n of one
    seeded permutation, so a larger sample contains every smaller one of the same seed."""
    order = list(range(full_n))
    random.Random(seed).shuffle(order)
    return sorted(order[:n])


def _task_variance(t: TaskSample) -> tuple[float, float]:
    n = len(t.run_correct)
    d = [r - b for r, b in zip(t.run_correct, t.reference_correct)]
    mean = sum(d) / n
    if n >= t.full_n:
        return mean, 0.0
    s2 = sum((x - mean) ** 2 for x in d) / (n - 1) if n > 1 else 1.0
    k = sum(1 for x in d if x)
    s2 = max(s2, (k + 1) / (n + 2) - mean ** 2)
    return mean, (1 - n / t.full_n) * s2 / n


def estimate(tasks: list[TaskSample], exact: bool = False) -> dict:
    """The capability estimate and its 95% half-width; `exact`: the run is the baseline (no sampling error)."""
    total = sum(t.full_n for t in tasks)
    value = var = set_var = 0.0
    for t in tasks:
        w = t.full_n / total
        mean, v = (0.0, 0.0) if exact else _task_variance(t)
        value += w * (t.reference_acc + mean)
        var += w * w * v
        set_var += w * w * t.reference_acc * (1 - t.reference_acc) / t.full_n
    return {"capability": value, "capability_ci95": 1.96 * math.sqrt(var),
            "capability_set_ci95": 1.96 * math.sqrt(set_var),
            "capability_n": sum(len(t.run_correct) for t in tasks), "capability_full_n": total}


# the cached full-set baseline ---------------------------------------------------------------------------------------
def score_full(cfg, engine, tokenizer, task: str) -> list[dict]:
    from harness.evaluate.accuracy import evaluate_task
    from harness.evaluate.run_tasks import auto_batch_size

    _, preds = evaluate_task(engine, tokenizer, task, 0, None, auto_batch_size(engine),
                             progress=setting(cfg, "progress"))
    return [{"id": p["id"], "correct": int(p["pred"] == p["gold"])} for p in preds]


def ensure_reference(cfg, engine=None, tokenizer=None) -> dict[str, list[dict]]:
    """The baseline's full-set correctness per task: from the cache, else scored by `engine` when this run is the
    baseline (any other run has it built before its model loads: harness/run.py)."""
    from harness.evaluate.reference_cache import atomic_save, capability_reference_path, load_capability, missing_capability

    missing = missing_capability(cfg)
    if missing and engine is not None:
        for task in missing:
            atomic_save(score_full(cfg, engine, tokenizer, task), capability_reference_path(cfg, task), as_json=True)
    elif missing:
        raise RuntimeError(f"the capability baseline ({cfg.capability.reference}) of {cfg.model.name} is not in the "
                           f"cache for {', '.join(missing)} (it is built before the run's model loads: "
                           "harness/run.py)")
    return load_capability(cfg)


def is_reference_run(cfg, engine_name: str) -> bool:
    from harness.precision.registry import get_scheme

    base = cfg.capability.reference
    return cfg.precision.name == base and engine_name == get_scheme(base).engines[0]


def next_sample(n: int, full_n: int, ci95: float, target: float) -> int:
    """Stage two of a two-stage (Stein-type) sample: the size the first stage's interval says reaches `target`
    (half-widths shrink as 1/sqrt(n)), 10% over, at least 1.5x the first stage, at most the full set."""
    return min(full_n, max(math.ceil(n * 1.5), math.ceil(n * 1.1 * (ci95 / target) ** 2)))


def sampled_estimate(baselines: dict[str, list[int]], score, sample: int, seed: int,
                     target: float | None = None, max_stages: int = 3) -> dict:
    """The capability of a run from its answers on seeded samples (`score(task, indices)` -> correctness per index)
    and the baselines' full-set correctness. With `target`, a sample whose 95% half-width is over it grows to the
    size its interval says is needed (each task by the same factor, questions already scored kept), at most
    `max_stages` samples in all; a task sampled whole has no sampling error."""
    sizes = {t: min(sample, len(b)) for t, b in baselines.items()}
    answers: dict[str, dict[int, int]] = {t: {} for t in baselines}
    for _ in range(max_stages):
        parts = []
        for task, base in baselines.items():
            idx = sample_indices(len(base), sizes[task], seed)
            new = [i for i in idx if i not in answers[task]]
            if new:
                answers[task].update(zip(new, score(task, new)))
            parts.append(TaskSample(len(base), sum(base) / len(base), [base[i] for i in idx],
                                    [answers[task][i] for i in idx]))
        out = estimate(parts)
        if target is None or out["capability_ci95"] <= target:
            break
        sizes = {t: next_sample(sizes[t], len(b), out["capability_ci95"], target) for t, b in baselines.items()}
    return out


def capability_columns(cfg, engine, tokenizer, predictions_dir: Path | None, run_id: str) -> dict:
    from harness.evaluate.accuracy import evaluate_task, save_predictions
    from harness.evaluate.run_tasks import auto_batch_size

    c = cfg.capability
    exact = is_reference_run(cfg, engine.name)
    full = ensure_reference(cfg, engine if exact else None, tokenizer)
    baselines = {task: [b["correct"] for b in full[task]] for task in c.tasks}
    if exact:  # the baseline itself: its full-set accuracy, no sampling error
        out = estimate([TaskSample(len(b), sum(b) / len(b), b, b) for b in baselines.values()], exact=True)
        out["capability_tasks"] = "+".join(c.tasks)
        return out
    preds_by_task: dict[str, list[dict]] = {task: [] for task in c.tasks}

    def score(task: str, indices: list[int]) -> list[int]:
        _, preds = evaluate_task(engine, tokenizer, task, 0, None, auto_batch_size(engine),
                                 progress=setting(cfg, "progress"), indices=indices)
        preds_by_task[task] += preds
        return [int(p["pred"] == p["gold"]) for p in preds]

    out = sampled_estimate(baselines, score, int(c.sample), int(c.seed), c.get("target_ci95"))
    for task, preds in preds_by_task.items():
        if preds and predictions_dir is not None:
            save_predictions(predictions_dir / f"{run_id}.{task}.capability.jsonl.gz", preds)
    out["capability_tasks"] = "+".join(c.tasks)
    return out
