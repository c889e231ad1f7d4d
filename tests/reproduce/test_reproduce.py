"""The claims registry validates; entries 1, 3, 4 and 6 produce verdicts from values measured here (small inputs)."""
from pathlib import Path

import pytest
import yaml

from harness.reproduce.checks import run_claim, verdict_table
from harness.reproduce.registry import CLAIMS, ClaimError, load_claims, runnable_here, validate


def test_registry_files_validate():
    claims = load_claims()
    assert {"memory-proportional", "quality-kept", "ai-index-cost", "gguf-bpw", "gguf-kld-order", "lm-eval-mmlu",
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
    assert all(v.verdict == "agrees" for v in verdicts), verdict_table(verdicts)


@pytest.mark.integration
@pytest.mark.llamacpp
def test_entry_4_gguf_bits_per_weight_exact():
    pytest.importorskip("llama_cpp")
    verdicts = run_claim(load_claims()["gguf-bpw"], models=["smollm2-135m"], precisions=["gguf-q8_0", "gguf-q4_0"])
    by = {v.item: v for v in verdicts}
    assert by["Q8_0"].verdict == by["Q4_0"].verdict == by["Q4_1"].verdict == "agrees"  # Q4_1: the shipped source
    assert by["Q2_K"].verdict == "not comparable"  # not produced in this small run


def test_entry_6_lm_eval_gives_our_predictions(tokenizer):
    from tests.conftest import tiny_llama

    (v,) = run_claim(load_claims()["lm-eval-mmlu"], model="tiny-random", per_subject=2, shots=2,
                     subjects=["anatomy", "college_mathematics"], engine_model=tiny_llama(), tokenizer=tokenizer)
    assert v.verdict == "agrees", v
    assert "4/4 predictions equal" in v.measured
