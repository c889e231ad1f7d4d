import math

import pytest
import torch

from harness.engines.base import Capabilities
from harness.engines.torch_engine import TorchEngine
from harness.evaluate.accuracy import argmax, binomial_stderr, evaluate_task
from harness.evaluate.scorer import encode_pair, score
from harness.evaluate.tasks import Request, load_task


class KnownLogitsEngine:
    """Puts log-probability -1 on one chosen token at the last position and -10 on every other token."""

    max_length = 4096
    capabilities = Capabilities(batched_logprobs=True)

    def __init__(self, tokenizer, vocab: int, answer_for: dict[str, str]):
        self.tok, self.vocab, self.answer_for = tokenizer, vocab, answer_for

    def logprobs(self, seqs, positions, prefix=None):
        out = []
        for seq, pos in zip(seqs, positions):
            text = self.tok.decode(seq)
            letter = next(v for k, v in self.answer_for.items() if text.endswith(k))
            target = self.tok.encode(" " + letter)[-1]
            lp = torch.full((len(pos), self.vocab), -10.0)
            lp[:, target] = -1.0
            out.append(lp)
        return out


def test_scorer_picks_the_letters_the_logits_favour(tokenizer):
    reqs = [Request(f"g/{i}", "g", f"question {i}\nAnswer:", [" A", " B", " C", " D"], gold=i % 4) for i in range(8)]
    wanted = {f"question {i}\nAnswer:": "ABCD"[(i * 3) % 4] for i in range(8)}
    engine = KnownLogitsEngine(tokenizer, len(tokenizer), wanted)
    scored = score(engine, tokenizer, reqs, batch_size=3, progress=False)
    preds = ["ABCD"[argmax(s.loglikelihoods)] for s in scored]
    assert preds == ["ABCD"[(i * 3) % 4] for i in range(8)]
    assert all(max(s.loglikelihoods) == pytest.approx(-1.0) for s in scored)


def test_ties_go_to_the_first_choice():
    assert argmax([-1.0, -1.0, -2.0]) == 0
    assert argmax([-3.0, -1.0, -1.0]) == 1


def test_trailing_space_moves_to_the_continuation(tokenizer):
    ctx, cont = encode_pair(tokenizer, "Answer: ", "A")
    assert tokenizer.decode(ctx) == "Answer:" and tokenizer.decode(cont) == " A"


def test_binomial_stderr_against_scipy():
    from scipy.stats import binom

    for p, n in ((0.25, 100), (0.6, 2376), (0.05, 40)):  # scipy's binomial: std of the count, divided by n
        assert binomial_stderr(p, n) == pytest.approx(binom.std(n, p) / n, rel=1e-12)


def test_fast_scorer_equals_lm_eval_loglikelihoods(tiny_model, tokenizer):
    """Same log-likelihoods (to float tolerance) and predictions as lm-eval's HFLM on the same loaded model."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    reqs = load_task("mmlu").requests(2, 1)[:12]
    engine = TorchEngine(tiny_model, pad_id=0)
    ours = score(engine, tokenizer, reqs, batch_size=4, progress=False)
    lm = HFLM(pretrained=tiny_model, tokenizer=tokenizer, batch_size=4)
    instances = [Instance("loglikelihood", {}, (r.context, c), i) for r in reqs for i, c in enumerate(r.continuations)]
    theirs = [ll for ll, _ in lm.loglikelihood(instances, disable_tqdm=True)]
    flat = [ll for s in ours for ll in s.loglikelihoods]
    assert flat == pytest.approx(theirs, abs=2e-4)


def test_multi_token_continuations_share_the_context(tiny_model, tokenizer):
    """Continuations of several tokens are scored from one batched pass and equal scoring each one alone."""
    engine = TorchEngine(tiny_model, pad_id=0)
    req = Request("x/0", "x", "The river flows", [" into the sea", " uphill quickly", " ."], gold=0)
    batched = score(engine, tokenizer, [req], batch_size=8, progress=False)[0].loglikelihoods
    for i, cont in enumerate(req.continuations):
        ctx, ids = encode_pair(tokenizer, req.context, cont)
        with torch.no_grad():
            logits = tiny_model(torch.tensor([ctx + ids])).logits[0].log_softmax(-1)
        alone = sum(float(logits[len(ctx) - 1 + k, t]) for k, t in enumerate(ids))
        assert batched[i] == pytest.approx(alone, abs=1e-4)


def test_evaluate_task_counts_and_subset(tiny_model, tokenizer):
    metrics, preds = evaluate_task(TorchEngine(tiny_model), tokenizer, "mmlu", shots=1, per_group=1, batch_size=8,
                                   progress=False)
    assert metrics["n"] == 57 == len(preds)
    assert metrics["subset"] == "first 1 per subject"
    assert metrics["acc"] == sum(p["pred"] == p["gold"] for p in preds) / 57
    metrics, preds = evaluate_task(TorchEngine(tiny_model), tokenizer, "mmlu", shots=1, per_group=2, batch_size=1,
                                   progress=False, groups=["virology", "anatomy"])
    assert metrics["n"] == 4 and metrics["subset"] == "first 2 per subject of 2 subjects (anatomy virology)"
    metrics, _ = evaluate_task(TorchEngine(tiny_model), tokenizer, "arc_easy", shots=0, per_group=3, batch_size=1,
                               progress=False, groups=["anatomy"])  # subjects mean nothing to ARC: ignored
    assert metrics["n"] == 3 and metrics["subset"] == "first 3 of the split"


@pytest.mark.parametrize("shots,per_group", [(0, 3), (2, 2), (5, 2)])
def test_shared_prefix_cache_gives_the_plain_results(tiny_model, tokenizer, shots, per_group):
    """The few-shot prefix computed once and reused equals scoring every input from scratch."""
    reqs = [r for r in load_task("mmlu").requests(shots, per_group) if r.group in ("anatomy", "virology", "marketing")]
    engine = TorchEngine(tiny_model)
    fast = score(engine, tokenizer, reqs, batch_size=4, progress=False, share_prefix=True, min_prefix=1)
    plain = score(engine, tokenizer, reqs, batch_size=4, progress=False, share_prefix=False)
    for f, p in zip(fast, plain):
        assert f.loglikelihoods == pytest.approx(p.loglikelihoods, abs=1e-4)
        assert argmax(f.loglikelihoods) == argmax(p.loglikelihoods)


@pytest.mark.parametrize("task,shots", [("arc_easy", 0), ("mmlu_cloze", 1), ("mmlu", 2)])
@pytest.mark.parametrize("batch_size", [1, 3, None])
def test_prefix_sharing_and_token_budget_batches_give_the_plain_results(tiny_model, tokenizer, task, shots, batch_size):
    """Multi-token choices, shared few-shot prefixes and batches by token budget: the same log-likelihoods."""
    reqs = load_task(task).requests(shots, 2)[:6]
    engine = TorchEngine(tiny_model)
    fast = score(engine, tokenizer, reqs, batch_size=batch_size, progress=False, share_prefix=True, min_prefix=4)
    plain = score(engine, tokenizer, reqs, batch_size=batch_size, progress=False, share_prefix=False)
    for f, p in zip(fast, plain):
        assert f.loglikelihoods == pytest.approx(p.loglikelihoods, abs=1e-4)


def test_units_share_a_subject_prefix_and_batches_respect_the_token_budget(tokenizer):
    from harness.evaluate.scorer import _batches, _plan, _units

    mmlu = load_task("mmlu").requests(5, 2)[:4]  # two subjects, two questions each
    units = list(_units(mmlu, _plan(tokenizer, mmlu, 2048), share_prefix=True, min_prefix=32))
    assert len(units) == 2 and all(len(inps) == 2 and n > 100 for inps, n in units)
    order = [tuple(range(n)) for n in (100, 60, 50, 30, 30, 30, 30, 10)]  # longest first
    sizes = [len(b) for b in _batches(order, 0, None, 128)]
    assert sizes == [1, 2, 4, 1]  # padded size (count x longest) never above 128
    assert [len(b) for b in _batches(order, 0, 3, 128)] == [3, 3, 2]
    assert [len(b) for b in _batches(order, 20, None, 128)] == [1, 3, 4]  # tokens past a shared prefix of 20


class RunsOutOfMemory:
    """The torch engine with a memory ceiling: a forward of more than `most` sequences raises CUDA's out-of-memory
    error (what a GPU raises), so eval batch `auto` must halve."""

    def __init__(self, engine, most: int):
        self.engine, self.most, self.sizes = engine, most, []
        self.capabilities, self.max_length = engine.capabilities, engine.max_length

    def _check(self, n: int) -> None:
        self.sizes.append(n)
        if n > self.most:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def logprobs(self, seqs, positions, prefix=None):
        self._check(len(seqs))
        return self.engine.logprobs(seqs, positions, prefix=prefix)

    def continuation_logprobs(self, items):
        self._check(len(items))
        return self.engine.continuation_logprobs(items)

    def prefix_cache(self, prefix):
        return self.engine.prefix_cache(prefix)


@pytest.mark.parametrize("task,shots", [("mmlu", 5), ("arc_easy", 0)])
def test_eval_batch_halves_on_out_of_memory_with_the_same_answers(tokenizer, task, shots):
    from tests.conftest import tiny_llama

    engine = TorchEngine(tiny_llama())
    limit = 3 if task == "mmlu" else 12
    want, want_preds = evaluate_task(engine, tokenizer, task, shots, limit, 1, progress=False,
                                     groups=["anatomy"] if task == "mmlu" else None)
    tight = RunsOutOfMemory(engine, most=2)
    got, got_preds = evaluate_task(tight, tokenizer, task, shots, limit, 16, progress=False,
                                   groups=["anatomy"] if task == "mmlu" else None)
    assert max(tight.sizes) > 2 and max(n for n in tight.sizes[1:]) <= 8  # it tried big, then halved
    assert [p["pred"] for p in got_preds] == [p["pred"] for p in want_preds]
    for a, b in zip(got_preds, want_preds):
        assert a["loglikelihoods"] == pytest.approx(b["loglikelihoods"], abs=1e-4)
    assert got["acc"] == want["acc"]


def test_an_error_other_than_out_of_memory_is_not_retried(tokenizer):
    from harness.evaluate.scorer import OomBackoff

    def fails(items):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        OomBackoff().run(fails, [1, 2, 3, 4])
