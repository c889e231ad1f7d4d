"""The capability estimator on synthetic answers with known truth: its 95% interval covers the full-set accuracy at
about its nominal rate, the baseline is exact, and a sample without disagreements still has an interval."""
import random

import pytest

from harness.evaluate.capability import TaskSample, estimate, next_sample, sample_indices, sampled_estimate


def _population(n, base_acc, flip_rate, improve_share, rng):
    """Baseline correctness at `base_acc`; the scheme answers `flip_rate` of the questions differently: a right
    answer changed is wrong, a wrong one changed becomes right with probability `improve_share`."""
    base = [int(rng.random() < base_acc) for _ in range(n)]
    run = [b if rng.random() >= flip_rate else 0 if b else int(rng.random() < improve_share) for b in base]
    return base, run


@pytest.mark.parametrize("flip_rate,sample", [(0.05, 300), (0.25, 200)])
def test_interval_covers_the_full_set_accuracy_at_its_nominal_rate(flip_rate, sample):
    rng = random.Random(1)
    tasks = [_population(2376, 0.58, flip_rate, 0.4, rng), _population(1838, 0.64, flip_rate, 0.4, rng)]
    truth = sum(sum(run) for _, run in tasks) / sum(len(run) for _, run in tasks)
    trials, covered, widths = 400, 0, []
    for seed in range(trials):
        parts = []
        for base, run in tasks:
            idx = sample_indices(len(base), sample, seed)
            parts.append(TaskSample(len(base), sum(base) / len(base), [base[i] for i in idx], [run[i] for i in idx]))
        est = estimate(parts)
        covered += abs(est["capability"] - truth) <= est["capability_ci95"]
        widths.append(est["capability_ci95"])
    assert 0.91 <= covered / trials <= 0.99, covered / trials
    # paired differences: far narrower than an unpaired binomial interval on the same sample
    unpaired = 1.96 * (0.6 * 0.4 / (2 * sample)) ** 0.5
    assert sum(widths) / trials < unpaired * (0.6 if flip_rate < 0.1 else 1.0)


def test_the_baseline_is_exact_and_a_sample_without_disagreement_is_not():
    base = [1, 0, 1, 1] * 250
    idx = sample_indices(len(base), 100, 0)
    part = TaskSample(len(base), 0.75, [base[i] for i in idx], [base[i] for i in idx])
    exact = estimate([part], exact=True)
    assert exact["capability"] == 0.75 and exact["capability_ci95"] == 0.0
    sampled = estimate([part])
    assert sampled["capability"] == 0.75 and 0 < sampled["capability_ci95"] < 0.03
    assert sampled["capability_set_ci95"] == pytest.approx(1.96 * (0.75 * 0.25 / 1000) ** 0.5)


def test_whole_set_sample_has_no_sampling_error_and_indices_are_seeded():
    part = TaskSample(10, 0.5, [1, 0] * 5, [1, 1] * 5)
    est = estimate([part])
    assert est["capability"] == 1.0 and est["capability_ci95"] == 0.0
    assert sample_indices(1000, 10, 3) == sample_indices(1000, 10, 3) != sample_indices(1000, 10, 4)
    assert sample_indices(5, 10, 0) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("flip_rate", [0.05, 0.25])
def test_a_sample_grown_to_the_target_reaches_it_and_still_covers_the_truth(flip_rate):
    """Two-stage sampling to +-0.02: the first sample's interval sets the second's size; the final interval is at
    most the target in nearly every trial and covers the full-set accuracy at about its nominal rate."""
    rng = random.Random(2)
    pops = {"a": _population(2376, 0.58, flip_rate, 0.4, rng), "b": _population(1838, 0.64, flip_rate, 0.4, rng)}
    truth = sum(sum(run) for _, run in pops.values()) / sum(len(run) for _, run in pops.values())
    baselines = {t: base for t, (base, _) in pops.items()}
    trials, covered, met, scored = 300, 0, 0, []
    for seed in range(trials):
        asked: list[int] = []

        def score(task, indices):
            asked.extend(indices)
            return [pops[task][1][i] for i in indices]

        est = sampled_estimate(baselines, score, 100, seed, target=0.02)
        assert len(asked) == est["capability_n"]  # no question scored twice across samples
        covered += abs(est["capability"] - truth) <= est["capability_ci95"]
        met += est["capability_ci95"] <= 0.02
        scored.append(est["capability_n"])
    assert 0.91 <= covered / trials <= 0.99, covered / trials
    assert met / trials >= 0.9, met / trials
    if flip_rate < 0.1:
        assert sorted(scored)[trials // 2] < 1200  # few answers changed: a few hundred questions suffice
    else:
        assert sorted(scored)[trials // 2] > 1500  # many changed: a large share of the 4,214


def test_a_fixed_sample_does_not_grow_and_samples_are_nested():
    base = [1, 0, 1] * 400
    run = [1 - b if i % 5 == 0 else b for i, b in enumerate(base)]
    est = sampled_estimate({"t": base}, lambda t, idx: [run[i] for i in idx], 100, 0, target=None)
    assert est["capability_n"] == 100 and est["capability_ci95"] > 0.02
    assert set(sample_indices(1200, 100, 0)) <= set(sample_indices(1200, 300, 0))
    assert 440 <= next_sample(100, 1200, 0.04, 0.02) <= 441 and next_sample(100, 1200, 0.021, 0.02) == 150
    assert next_sample(100, 1200, 0.2, 0.02) == 1200
