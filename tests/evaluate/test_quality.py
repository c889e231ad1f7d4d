import math

import pytest
import torch

from harness.engines.base import Capabilities
from harness.engines.torch_engine import TorchEngine
from harness.evaluate.quality import compare_logits, compare_predictions, kl_topk, mcnemar_exact_p
from harness.evaluate.windows import corpus_windows, reference_from
from harness.precision.registry import get_scheme

from tests.conftest import tiny_llama


class FixedLogits:
    """An engine whose next-token distribution is the same fixed vector at every position."""
    name = "fixed"
    capabilities = Capabilities()

    def __init__(self, logits: torch.Tensor):
        self.logp = torch.log_softmax(logits, -1)

    def logprobs(self, seqs, positions, prefix=None):
        return [self.logp.expand(len(p), -1).clone() for p in positions]


def test_self_comparison_is_zero_divergence_full_agreement(tokenizer):
    engine = TorchEngine(tiny_llama())
    windows = corpus_windows(tokenizer, 64, 256)
    ref = reference_from(engine, windows, topk=64)
    m = compare_logits(ref, engine, windows)
    assert m["kld_mean"] == 0 and m["kld_p99"] == 0 and m["top1_agree"] == 1 and m["ppl_delta"] == 0
    assert m["kld_median"] == 0 and m["kld_stderr"] == 0 and m["rms_dp"] == 0
    assert m["quality_tokens"] == 4 * 32  # second half of each of the 4 windows


class ActualAndTop1Only:
    """The torch engine seen through an API like vLLM's: each row keeps the actual next token and the top-1."""
    name = "api"
    capabilities = Capabilities(full_logprobs=False)

    def __init__(self, engine):
        self.engine = engine

    def logprobs(self, seqs, positions, prefix=None):
        out = []
        for seq, pos, lp in zip(seqs, positions, self.engine.logprobs(seqs, positions)):
            keep = torch.full_like(lp, float("-inf"))
            rows = torch.arange(len(pos))
            for idx in (torch.tensor([seq[p + 1] for p in pos]), lp.argmax(-1)):
                keep[rows, idx] = lp[rows, idx]
            out.append(keep)
        return out


def test_an_engine_without_whole_distributions_gets_perplexity_and_agreement_but_no_kld(tokenizer):
    torch.manual_seed(0)
    perturbed = tiny_llama()
    with torch.no_grad():
        for w in perturbed.parameters():
            w.add_(0.05 * torch.randn_like(w))
    ref_engine, other = TorchEngine(tiny_llama()), TorchEngine(perturbed)
    windows = corpus_windows(tokenizer, 64, 256)
    ref = reference_from(ref_engine, windows, topk=64)
    full, partial = compare_logits(ref, other, windows), compare_logits(ref, ActualAndTop1Only(other), windows)
    assert full["kld_mean"] > 0 and partial["kld_mean"] is None and partial["kld_p99"] is None
    assert partial["kld_median"] is None and partial["kld_stderr"] is None
    assert 0 < full["kld_median"] <= full["kld_p99"] and 0 < full["kld_stderr"] < full["kld_mean"]
    assert "no KLD" in partial["quality_note"] and "api engine" in partial["quality_note"]
    # Δp needs only the next token's probability: an engine without whole distributions still has it
    assert 0 < full["rms_dp"] < 1 and 0 < full["rms_dp_stderr"] < full["rms_dp"]
    for key in ("ppl", "ppl_delta", "top1_agree", "quality_tokens", "rms_dp", "rms_dp_stderr"):
        assert partial[key] == pytest.approx(full[key], rel=1e-6), key


def test_uniform_logits_have_perplexity_equal_to_the_vocabulary(tokenizer):
    vocab = 1024
    engine = FixedLogits(torch.zeros(vocab))
    windows = corpus_windows(tokenizer, 64, 128)
    m = compare_logits(reference_from(engine, windows, topk=vocab), engine, windows)
    assert m["ppl"] == pytest.approx(vocab, rel=1e-6)


def test_topk_kl_is_exact_with_full_vocab_and_a_lower_bound_with_a_tail():
    torch.manual_seed(0)
    p_logits, q_logits = torch.randn(5, 50), torch.randn(5, 50)
    p, q = p_logits.log_softmax(-1), q_logits.log_softmax(-1)
    exact = (p.exp() * (p - q)).sum(-1)
    full_v, full_i = p.topk(50, -1)
    assert kl_topk(full_i, full_v, q) == pytest.approx(exact, abs=1e-5)
    part_v, part_i = p.topk(10, -1)
    bound = kl_topk(part_i, part_v, q)
    assert (bound <= exact + 1e-6).all() and (bound > 0).all()


def test_a_perturbation_increases_divergence_with_its_size(tokenizer):
    base = torch.randn(1024, generator=torch.Generator().manual_seed(1))
    windows = corpus_windows(tokenizer, 64, 128)
    ref = reference_from(FixedLogits(base), windows, topk=1024)
    small = compare_logits(ref, FixedLogits(base + 0.1 * torch.randn(1024)), windows)["kld_mean"]
    large = compare_logits(ref, FixedLogits(base + 1.0 * torch.randn(1024)), windows)["kld_mean"]
    assert 0 < small < large


def test_mcnemar_matches_the_exact_binomial_value():
    # b=2, c=8: p = 2 * P(X <= 2), X ~ Binomial(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact_p(2, 8) == pytest.approx(2 * 56 / 1024)
    assert mcnemar_exact_p(8, 2) == mcnemar_exact_p(2, 8)
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(0, 10) == pytest.approx(2 / 1024)


def test_compare_predictions_counts_flips():
    base = [{"id": i, "gold": 0, "pred": p} for i, p in enumerate([0, 0, 1, 1, 0])]
    run = [{"id": i, "gold": 0, "pred": p} for i, p in enumerate([1, 0, 0, 1, 0])]
    cmp = compare_predictions(base, run)
    assert (cmp["flips_correct_to_wrong"], cmp["flips_wrong_to_correct"]) == (1, 1)
    assert cmp["agree"] == pytest.approx(3 / 5) and cmp["mcnemar_p"] == 1.0


def test_quantised_quality_is_bit_identical_when_repeated(tokenizer):
    """Seeds and determinism: the same run twice on CPU gives bit-identical KLD and agreement."""
    windows = corpus_windows(tokenizer, 64, 256)
    ref = reference_from(TorchEngine(tiny_llama()), windows, topk=128)
    results = []
    for _ in range(2):
        model = get_scheme("quanto-int4").apply(tiny_llama(), "cpu", "float32")
        results.append(compare_logits(ref, TorchEngine(model), windows))
    assert results[0] == results[1]
    assert results[0]["kld_mean"] > 0


def test_accuracy_is_bit_identical_when_repeated(tokenizer):
    from harness.evaluate.accuracy import evaluate_task

    runs = []
    for _ in range(2):
        model = get_scheme("int8-dynamic").apply(tiny_llama(), "cpu", "float32")
        runs.append(evaluate_task(TorchEngine(model), tokenizer, "mmlu", 1, 1, 8, progress=False))
    assert runs[0] == runs[1]


def test_baseline_predictions_are_keyed_by_the_subject_subset():
    from omegaconf import OmegaConf

    from harness.evaluate.reference import predictions_path

    base = {"model": {"name": "m", "source": "random"}, "quality": {"reference": "fp32"},
            "eval": {"shots": 5, "per_subject": 5, "limit": None, "subjects": None}}
    every = predictions_path(OmegaConf.create(base), "mmlu")
    base["eval"]["subjects"] = ["anatomy", "virology"]
    two = predictions_path(OmegaConf.create(base), "mmlu")
    base["eval"]["subjects"] = ["virology", "anatomy"]
    assert two != every and predictions_path(OmegaConf.create(base), "mmlu") == two


def test_a_cold_run_builds_both_baselines_in_one_child(tmp_path):
    """Quality reference and capability baseline both missing: one child process, one load of the fp32 model."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "harness", "model=tiny-random", "precision=bf16", "bench=quick",
                           "eval=none", "quality=sweep", "capability=sweep", "capability.tasks=[openbookqa]",
                           "capability.sample=20", f"results.path={tmp_path / 'r.csv'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    builds = [ln for ln in proc.stdout.splitlines() if "building the fp32 reference" in ln]
    assert builds == ["[harness] building the fp32 reference of tiny-random once (reference and capability; cached)"]
    assert list((tmp_path / "cache" / "reference").glob("*-logits-*.pt"))
    assert list((tmp_path / "cache" / "capability").glob("*openbookqa*.json"))
    assert not (tmp_path / "cache" / "jobs").exists()  # the job went on the child's stdin: no file
