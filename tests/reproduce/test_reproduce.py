"""The claims registry validates; entries 1, 2, 3 and 6 produce verdicts from values measured here (small inputs)."""
from pathlib import Path

import pytest
import yaml

from harness.reproduce.checks import run_claim, verdict_table
from harness.reproduce.registry import CLAIMS, ClaimError, load_claims, runnable_here, validate


def test_registry_files_validate():
    claims = load_claims()
    assert {"memory-proportional", "quality-kept", "ai-index-cost", "gguf-kld-order", "lm-eval-mmlu",
            "gptq-opt125m", "model-card-mmlu"} <= set(claims)


@pytest.mark.parametrize("field", ["source", "published", "check"])
def test_an_entry_with_a_missing_field_is_refused(field):
    data = yaml.safe_load((CLAIMS / "03-ai-index-cost.yaml").read_text())
    del data[field]
    with pytest.raises(ClaimError, match=f"missing field '{field}'"):
        validate(data, Path("broken.yaml"))


def test_not_runnable_entries_say_what_they_need():
    claims = load_claims()
    ok, why = runnable_here(claims["gptq-opt125m"])  # offline here (HF_HUB_OFFLINE=1): it needs the hub
    assert not ok and why.startswith("needs the hub") and "opt-125m" in why
    ok, why = runnable_here(claims["model-card-mmlu"])
    assert not ok and "hub access" in why


def _claims_csv(path, rows):
    from harness.record.store import append_row

    for i, (model, precision, ppl, delta, se, kld) in enumerate(rows):
        append_row(path, {"run_id": f"r{i}", "status": "ok", "model": model, "precision": precision,
                          "engine": "torch", "config_hash": f"h{i}", "ppl": ppl, "ppl_delta": delta,
                          "ppl_delta_stderr": se, "kld_mean": kld, "quality_tokens": 1024})
    return path


@pytest.mark.parametrize("claim, better, worse", [("gptq-beats-rtn", "gptq-w4a16-g64", "rtn-w4a16-g64"),
                                                  ("nncf-data-aware-int4", "ov-int4-awq", "ov-int4")])
@pytest.mark.parametrize("gptq, rtn, verdict", [(22.0, 25.0, "agrees"), (25.0, 22.0, "disagrees"),
                                                (22.0, 22.1, "not distinguishable")])
def test_a_paper_ordering_flips_its_verdict_when_the_measured_order_flips(tmp_path, monkeypatch, gptq, rtn, verdict,
                                                                          claim, better, worse):
    import harness.reproduce.checks as checks

    monkeypatch.setattr(checks, "PAPER_CSV", _claims_csv(tmp_path / "c.csv", [
        ("m", better, gptq, gptq - 20.0, 0.2, 0.1), ("m", worse, rtn, rtn - 20.0, 0.2, 0.2)]))
    (v,) = run_claim(load_claims()[claim], models=["m"], run=False)
    assert v.verdict == verdict
    assert "reference 20.00" in v.measured and "allowance 1.0%" in v.reason


@pytest.mark.parametrize("smooth, naive, verdict", [(20.1, 30.0, "agrees"),  # near bf16, naive degrades
                                                    (24.0, 30.0, "disagrees"),  # SmoothQuant itself degrades
                                                    (20.1, 20.2, "not distinguishable"),  # naive does not degrade
                                                    (20.1, 15.0, "disagrees")])  # naive better: reversed
def test_a_near_pair_holds_when_it_is_not_distinguishable(tmp_path, monkeypatch, smooth, naive, verdict):
    import harness.reproduce.checks as checks

    monkeypatch.setattr(checks, "PAPER_CSV", _claims_csv(tmp_path / "c.csv", [
        ("m", "bf16", 20.0, 0.0, 0.05, 0.0), ("m", "w8a8-int8", smooth, smooth - 20.0, 0.05, 0.01),
        ("m", "w8a8-int8-naive", naive, naive - 20.0, 0.2, 0.3)]))
    (v,) = run_claim(load_claims()["smoothquant-vs-naive"], models=["m"], run=False, engine="torch")
    assert v.verdict == verdict and v.published == "bf16 ~ w8a8-int8 < w8a8-int8-naive"


def test_near_lossless_needs_both_the_kld_and_the_perplexity(tmp_path, monkeypatch):
    import harness.reproduce.checks as checks

    monkeypatch.setattr(checks, "PAPER_CSV", _claims_csv(tmp_path / "c.csv", [
        ("m", "torchao-int8wo", 20.05, 0.05, 0.02, 0.002), ("m", "ov-int8", 21.0, 1.0, 0.05, 0.03)]))
    verdicts = run_claim(load_claims()["int8-near-lossless"], models=["m"], run=False, engine="torch")
    assert [v.verdict for v in verdicts] == ["agrees", "disagrees"]


def test_awq_folds_its_scales_into_gemmas_norms_only_after_the_swap():
    from harness.precision.llmcompressor_oneshot import scales_norms

    assert scales_norms("awq-w4a16-g64") and scales_norms("awq-w4a16-g128") and scales_norms("w8a8-int8")
    assert not scales_norms("gptq-w4a16-g64") and not scales_norms("rtn-w4a16-asym-g64")


def test_opts_config_without_intermediate_size_gives_its_linear_widths():
    from transformers import OPTConfig

    from harness.precision.calibrated import group_fits
    from harness.precision.proof import linear_widths

    config = OPTConfig(hidden_size=768, ffn_dim=3072, num_attention_heads=12)
    assert linear_widths(config) == {"q/k/v/gate/up": 768, "o_proj": 768, "down_proj": 3072}
    assert group_fits("gptq-w4a16-g128", config) == ""


def test_run_all_runs_every_claim_on_a_stand_in_model_and_states_its_time(tmp_path):
    """The short variant of `run --all` (the full one is timed in results/reproduce): two claims on tiny-random."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run([sys.executable, "-m", "harness.reproduce", "run", "ai-index-cost", "llm-int8-threshold",
                           "--models", "tiny-random", "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (tmp_path / "verdicts-ai-index-cost-llm-int8-threshold.md").read_text()
    assert "| llm-int8-threshold | tiny-random |" in text and "min of wall time on 2 claims" in text
    assert (tmp_path / "paper_claims.csv").exists()


def test_entry_3_recovers_the_ai_index_ratio(tmp_path, monkeypatch):
    import harness.reproduce.checks as checks

    monkeypatch.setattr(checks, "OUT", tmp_path)
    verdicts = run_claim(load_claims()["ai-index-cost"])
    assert [v.verdict for v in verdicts] == ["agrees"] * 3
    assert "285.7x" in verdicts[1].measured
    assert (tmp_path / "ai_index_cost.png").stat().st_size > 5000


def test_entry_1_memory_on_a_tiny_model(tmp_path):
    verdicts = run_claim(load_claims()["memory-proportional"], models=["tiny-random"],
                         precisions=["fp32", "int8-dynamic", "quanto-int4"], csv=str(tmp_path / "m.csv"))
    assert {v.item for v in verdicts} == {"tiny-random int8-dynamic", "tiny-random quanto-int4"}
    # the tiny model is mostly embedding (kept in fp32): its linear layers shrink as claimed, the model does not
    assert all(v.verdict == "partly" and "linear layers" in v.measured and "embeddings" in v.reason
               for v in verdicts), verdict_table(verdicts)


def test_quality_kept_is_a_non_inferiority_decision(tmp_path):
    from harness.record.store import append_row

    csv = tmp_path / "q.csv"
    for precision, cap, ci, kld in (("fp32", 0.600, 0.0, 0.0), ("inside", 0.595, 0.010, 0.01),
                                    ("wide", 0.600, 0.025, 0.01), ("lossy", 0.550, 0.010, 0.30)):
        append_row(csv, {"run_id": precision, "status": "ok", "model": "m", "precision": precision,
                         "config_hash": precision, "capability": cap, "capability_ci95": ci, "kld_mean": kld})
    by = {v.item: v for v in run_claim(load_claims()["quality-kept"], csv=str(csv))}
    assert by["m inside"].verdict == "agrees"  # loss 0.005 + 0.010 = 0.015 < 0.02
    assert by["m wide"].verdict == "partly" and "not shown non-inferior" in by["m wide"].reason  # no loss, wide CI
    assert by["m lossy"].verdict == "disagrees"


def test_entry_6_lm_eval_gives_our_predictions(tokenizer):
    from tests.conftest import tiny_llama

    (v,) = run_claim(load_claims()["lm-eval-mmlu"], model="tiny-random", per_subject=2, shots=2,
                     subjects=["anatomy", "college_mathematics"], engine_model=tiny_llama(), tokenizer=tokenizer)
    assert v.verdict == "agrees", v
    assert "4/4 predictions equal" in v.measured


@pytest.mark.parametrize("q3_kld, verdict", [(0.13, "agrees"), (0.30, "disagrees")])
def test_gguf_types_are_expected_in_the_order_of_their_measured_bits(tmp_path, q3_kld, verdict):
    """q3_k_m measured larger than q4_0 (as on SmolLM2's shapes): a lower KLD for it is what its bits predict."""
    from harness.record.store import append_row

    csv = tmp_path / "sweep.csv"
    for i, (precision, bits, kld) in enumerate([("gguf-q8_0", 8.5, 0.004), ("gguf-q4_0", 5.35, 0.25),
                                                 ("gguf-q3_k_m", 5.46, q3_kld)]):
        append_row(csv, {"run_id": f"r{i}", "status": "ok", "model": "smollm2-135m", "precision": precision,
                         "engine": "llamacpp", "config_hash": f"h{i}", "bits_per_weight": bits, "kld_mean": kld})
    (v,) = run_claim(load_claims()["gguf-kld-order"], csv=str(csv))
    assert v.verdict == verdict, v.reason
    assert v.published.startswith("q8_0 (8.50 b/w) < q3_k_m (5.46 b/w) < q4_0 (5.35 b/w)")
    assert "reversed for [('q4_0', 'q3_k_m')]" in v.reason
    assert ("discordant: []" in v.reason) == (verdict == "agrees")


@pytest.mark.parametrize("acc, acc_norm, verdict, said", [(0.56, 0.50, "agrees", "acc held; acc_norm did not"),
                                                          (0.45, 0.70, "disagrees", "none held")])
def test_a_model_card_figure_without_its_metric_is_held_by_either_and_says_which(tmp_path, monkeypatch, acc,
                                                                                 acc_norm, verdict, said):
    import harness.reproduce.checks as checks
    from harness.record.store import append_row

    monkeypatch.setattr(checks, "OUT", tmp_path)
    append_row(tmp_path / "model_card.csv", {
        "run_id": "r0", "status": "ok", "model": "gemma3-270m", "precision": "fp32", "engine": "torch",
        "config_hash": "h0", "arc_easy_acc": acc, "arc_easy_acc_norm": acc_norm, "arc_easy_stderr": 0.0101,
        "arc_easy_n": 2376, "arc_easy_subset": "all"})
    claim = load_claims()["model-card-tasks"]
    (v,) = run_claim(claim, models=["gemma3-270m"], tasks=["arc_easy"], run=False,
                     published={"gemma3-270m": {"arc_easy": claim.published["gemma3-270m"]["arc_easy"]}})
    assert v.verdict == verdict and said in v.reason and "±5.0 points" in v.reason
    assert v.published.startswith("57.7% (unstated; google/gemma-3-270m card)")


def test_recorded_gives_the_verdicts_of_the_rows_there_and_measures_nothing(tmp_path):
    """A claim part-way through (one of its four rows recorded): `--recorded` says the verdict of what is there and
    'no ok row' for the rest, in seconds, starting no sweep."""
    import subprocess
    import sys

    from harness.record.store import append_row
    from tests.conftest import ROOT

    append_row(tmp_path / "model_card.csv", {
        "run_id": "r0", "status": "ok", "model": "smollm2-135m", "precision": "fp32", "engine": "torch",
        "config_hash": "h0", "arc_easy_acc": 0.53, "arc_easy_acc_norm": 0.47, "arc_easy_stderr": 0.0102,
        "arc_easy_n": 2376, "arc_easy_subset": "all"})
    before = (tmp_path / "model_card.csv").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "harness.reproduce", "run", "model-card-tasks", "--recorded",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[harness]" not in proc.stdout + proc.stderr  # no sweep ran
    text = (tmp_path / "verdicts-model-card-tasks.md").read_text()
    assert "| model-card-tasks | smollm2-135m arc_easy (0-shot) |" in text and "acc 53.0%" in text
    assert text.count("no ok row") == 3 and "nothing measured" in text
    assert (tmp_path / "model_card.csv").read_bytes() == before
