"""Every task in `eval.tasks` on one engine: accuracy columns for the row and per-question predictions, saved
beside the CSV (and compared with the baseline's by the quality step)."""
from __future__ import annotations

from harness.config.schema import section, setting


def auto_batch_size(engine) -> int | None:
    """On CPU None (batches of at most 256 padded new tokens); on CUDA 64, halved where a batch runs out of memory
    (harness/evaluate/scorer.py OomBackoff, as lm-eval's batch_size=auto)."""
    return None if engine.device == "cpu" else 64


def eval_batch_size(cfg, engine) -> int | None:
    """`eval.batch_size`, with `auto` resolved: on CPU None, i.e. batches of at most 256 padded new tokens (one MMLU
    question per forward, several short ARC answers: padding a batch to its longest input costs more there than
    batching gains; measured 1.5x faster than 8 on MMLU 5-shot), 64 on CUDA, halved on out-of-memory."""
    bs = section(cfg, "eval").batch_size  # checked by harness/config/schema.py: auto or an integer >= 1
    return auto_batch_size(engine) if bs == "auto" else int(bs)


def evaluate_tasks(cfg, engine, tokenizer, predictions_dir, run_id) -> tuple[dict, dict]:
    """Every task in eval.tasks: accuracy columns, and per-question predictions saved beside the CSV."""
    from harness.evaluate.accuracy import evaluate_task, save_predictions
    from harness.evaluate.tasks import load_task

    out: dict = {}
    by_task: dict = {}
    ev = section(cfg, "eval")
    for task in ev.tasks:
        limit = ev.per_subject if load_task(task).spec.get("group_by") else ev.limit
        m, preds = evaluate_task(engine, tokenizer, task, ev.shots, limit, eval_batch_size(cfg, engine),
                                 progress=setting(cfg, "progress"), groups=ev.subjects)
        out.update({f"{task}_acc": m["acc"], f"{task}_acc_norm": m["acc_norm"], f"{task}_stderr": m["stderr"],
                    f"{task}_n": m["n"], f"{task}_shots": m["shots"], f"{task}_subset": m["subset"],
                    f"{task}_chance": m["chance"]})
        if task == "mmlu":
            out["mmlu_ci95"] = 1.96 * m["stderr"]
        if predictions_dir is not None:
            path = predictions_dir / f"{run_id}.{task}.jsonl.gz"
            save_predictions(path, preds)
            out.setdefault("predictions_path", str(path))
        by_task[task] = preds
    return out, by_task
