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
    ok, why = runnable_here(claims["gptq-opt125m"])
    assert not ok and "opt-125m" in why
    (v,) = run_claim(claims["gptq-opt125m"])
    assert v.verdict == "not comparable" and v.measured == "not measured"


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
