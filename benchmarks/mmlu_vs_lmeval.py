"""Target 1: MMLU scoring rate of the harness vs lm-evaluation-harness on the same model, questions and shots
(`--task arc_easy` or `piqa`: the same comparison on a 0-shot task).

Both score the identical requests (tests/evaluate/test_tasks.py proves our prompts equal lm-eval's): lm-eval through
its `HFLM.loglikelihood` on the already-loaded model (its task building is not timed, which favours lm-eval), the
harness through `harness.evaluate.scorer.score` (one forward per question, few-shot prefix cached per subject).
Prints both rates, the ratio and the agreement of per-question predictions.

Each tool runs at its own batch size: the harness as `eval.batch_size=auto` does on CPU (batches of at most 256
padded new tokens; --batch-size N for fixed batches), lm-eval at its default (1) unless --lmeval-batch-size says
otherwise; both are printed.

    python benchmarks/mmlu_vs_lmeval.py [--per-subject 10] [--subjects 10] [--shots 5] [--batch-size N]
                                        [--lmeval-batch-size 1] [--rounds 1]
    python benchmarks/mmlu_vs_lmeval.py --task arc_easy --limit 200 --lmeval-batch-size 16    # a 0-shot task: the
                                        first N questions (each context computed once for all its choices)
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from _common import load


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="mmlu", help="mmlu (grouped by subject), or a 0-shot task such as arc_easy")
    ap.add_argument("--limit", type=int, default=200, help="questions of an ungrouped task (its first N)")
    ap.add_argument("--per-subject", type=int, default=10)
    ap.add_argument("--subjects", type=int, default=10, help="the first N subjects in alphabetical order")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=None,
                    help="the harness's questions per forward (default: by padded size, as eval.batch_size=auto)")
    ap.add_argument("--lmeval-batch-size", type=int, default=1, help="lm-eval's batch size (its default is 1)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="timed rounds, the two tools alternating (who goes first too); the ratio of the medians")
    args = ap.parse_args()
    torch.manual_seed(0)

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from harness.evaluate.accuracy import argmax
    from harness.evaluate.scorer import score
    from harness.evaluate.tasks import load_task

    model, tok, engine = load(args.model)
    task = load_task(args.task)
    if task.spec.get("group_by"):
        keep = set(task.groups()[: args.subjects])
        every = task.requests(args.shots, args.per_subject)
        reqs = [r for r in every if r.group in keep]
        # warm-up: two questions of the next subject (not timed, not among the timed ones), for both tools
        spare = task.groups()[args.subjects:][:1]
        warm = [r for r in every if r.group in spare][:2]
        what = f"{args.task} {args.shots}-shot, first {args.per_subject} questions of the first {args.subjects} subjects"
    else:
        reqs = task.requests(0, args.limit + 2)
        reqs, warm = reqs[: args.limit], reqs[args.limit:]
        what = f"{args.task} 0-shot, first {args.limit} questions"
    print(f"{args.model} fp32, {what}: {len(reqs)} questions, "
          f"{torch.get_num_threads()} threads; batch size harness {args.batch_size or 'auto (<= 256 padded tokens)'}, "
          f"lm-eval {args.lmeval_batch_size}; each tool warmed up first on {len(warm)} other questions (not timed)")

    def instances_of(rs):
        return [Instance("loglikelihood", {}, (r.context, c), i) for r in rs for i, c in enumerate(r.continuations)]

    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.lmeval_batch_size)
    if warm:  # none when every subject is timed
        score(engine, tok, warm, batch_size=args.batch_size, progress=False)
        lm.loglikelihood(instances_of(warm), disable_tqdm=True)

    instances = instances_of(reqs)
    times: dict[str, list[float]] = {"harness": [], "lm-eval": []}

    def run_ours():
        return score(engine, tok, reqs, batch_size=args.batch_size, progress=False)

    def run_theirs():
        return [ll for ll, _ in lm.loglikelihood(instances, disable_tqdm=True)]

    out = {}
    for i in range(args.rounds):  # interleaved: a drifting machine shifts both tools' rounds alike
        for name, run in ([("harness", run_ours), ("lm-eval", run_theirs)][:: 1 if i % 2 == 0 else -1]):
            t0 = time.perf_counter()
            out[name] = run()
            times[name].append(time.perf_counter() - t0)
        if args.rounds > 1:
            print(f"round {i}: harness {times['harness'][-1]:.1f} s, lm-eval {times['lm-eval'][-1]:.1f} s, "
                  f"ratio {times['lm-eval'][-1] / times['harness'][-1]:.2f}x", flush=True)
    ours, theirs = out["harness"], out["lm-eval"]
    t_ours, t_theirs = statistics.median(times["harness"]), statistics.median(times["lm-eval"])

    starts = [0]
    for r in reqs:
        starts.append(starts[-1] + len(r.continuations))
    per_q = [theirs[a:b] for a, b in zip(starts, starts[1:])]
    preds_ours = [argmax(s.loglikelihoods) for s in ours]
    preds_theirs = [argmax(lls) for lls in per_q]
    agree = sum(a == b for a, b in zip(preds_ours, preds_theirs)) / len(reqs)
    max_diff = max(abs(a - b) for s, lls in zip(ours, per_q) for a, b in zip(s.loglikelihoods, lls))
    acc_ours = sum(p == r.gold for p, r in zip(preds_ours, reqs)) / len(reqs)
    acc_theirs = sum(p == r.gold for p, r in zip(preds_theirs, reqs)) / len(reqs)
    print(f"harness : {len(reqs) / t_ours:7.2f} questions/s ({t_ours:.1f} s), accuracy {acc_ours:.4f}")
    print(f"lm-eval : {len(reqs) / t_theirs:7.2f} questions/s ({t_theirs:.1f} s), accuracy {acc_theirs:.4f}")
    rounds = f" (medians of {args.rounds} rounds)" if args.rounds > 1 else ""
    print(f"ratio   : {t_theirs / t_ours:.2f}x{rounds}   prediction agreement {agree:.4f}   "
          f"max |loglik diff| {max_diff:.2e}")


if __name__ == "__main__":
    main()
