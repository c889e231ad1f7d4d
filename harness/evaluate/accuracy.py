"""Accuracy of a multiple-choice task: acc (argmax log-likelihood, first choice wins ties as in lm-eval), acc_norm
(log-likelihood divided by the continuation's length in characters), binomial standard errors, predictions."""
from __future__ import annotations

import json
import math
from pathlib import Path

from harness.evaluate.scorer import score
from harness.evaluate.tasks import load_task


def argmax(values: list[float]) -> int:
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


def normalised_argmax(loglikelihoods: list[float], lengths: list[int]) -> int:
    """acc_norm's choice (lm-eval): log-likelihood divided by the answer text's length in characters."""
    return argmax([ll / max(n, 1) for ll, n in zip(loglikelihoods, lengths)])


def binomial_stderr(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n else float("nan")


def subset_label(task, per_group: int | None, groups=None) -> str:
    """How the questions were chosen, for the row's `<task>_subset` column."""
    if not task.spec.get("group_by"):
        return f"first {per_group} of the split" if per_group else "all"
    kind = task.spec["group_by"]
    label = f"first {per_group} per {kind}" if per_group else "all"
    if groups:
        chosen = task.select_groups(groups)
        label += f" of {len(chosen)} {kind}s ({' '.join(chosen)})"
    return label


def evaluate_task(engine, tokenizer, task_name: str, shots: int, per_group: int | None, batch_size: int,
                  progress: bool = True, groups=None, indices: list[int] | None = None) -> tuple[dict, list[dict]]:
    """`groups` restricts a grouped task (MMLU) to the named subjects; tasks without groups ignore it. `indices`
    picks these questions (positions in the task's fixed order) instead of the first `per_group`."""
    task = load_task(task_name)
    groups = list(groups) if groups and task.spec.get("group_by") else None
    requests = task.requests(shots, None if indices is not None else per_group, groups)
    if indices is not None:
        requests = [requests[i] for i in indices]
    scored = score(engine, tokenizer, requests, batch_size=batch_size, progress=progress, desc=task_name)
    preds = []
    for req, s in zip(requests, scored):
        pred = argmax(s.loglikelihoods)
        lengths = req.choice_lengths or s.lengths_chars
        norm = normalised_argmax(s.loglikelihoods, lengths)
        preds.append({"id": req.doc_id, "gold": req.gold, "pred": pred, "pred_norm": norm,
                      "loglikelihoods": [round(x, 6) for x in s.loglikelihoods]})
    n = len(preds)
    if n == 0:
        raise ValueError(f"{task_name}: no questions selected")
    acc = sum(p["pred"] == p["gold"] for p in preds) / n
    acc_norm = sum(p["pred_norm"] == p["gold"] for p in preds) / n
    chance = sum(1 / len(r.continuations) for r in requests) / n
    shots_used = shots if task.takes_shots else 0
    metrics = {"acc": acc, "acc_norm": acc_norm, "stderr": binomial_stderr(acc, n), "n": n, "chance": chance,
               "shots": shots_used, "subset": subset_label(task, per_group, groups) if indices is None else
               f"{n} chosen questions"}
    return metrics, preds


def save_predictions(path: Path, preds: list[dict]) -> None:
    """One JSON line per question; gzipped (reproducibly) when the name ends in .gz."""
    from harness.core.cache_files import write_gzip

    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(p) + "\n" for p in preds).encode()
    if path.suffix == ".gz":
        write_gzip(path, data)
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)

