"""The llama-perplexity peer check: its output is read as llama.cpp prints it, a statistic out of tolerance flips the
verdict, and (when the binary is built: make llama-perplexity) the harness and llama-perplexity agree on the embedded
model's GGUF files."""
from pathlib import Path

import pytest

from harness.reproduce.checks import run_claim
from harness.reproduce.llama_perplexity import LlamaPerplexityError, find_binary, parse_statistics
from harness.reproduce.registry import load_claims

OUTPUT = Path(__file__).parent / "data" / "llama-perplexity-kld.txt"  # a real run: SmolLM2 q4_0, 8 chunks of 512


def test_the_summary_is_read_as_llama_perplexity_prints_it():
    s = parse_statistics(OUTPUT.read_text())
    assert s["kld_mean"] == pytest.approx(0.289263) and s["kld_stderr"] == pytest.approx(0.006373)
    assert s["kld_median"] == pytest.approx(0.229165) and s["kld_p99"] == pytest.approx(1.495309)
    assert s["rms_dp"] == pytest.approx(0.11950) and s["rms_dp_stderr"] == pytest.approx(0.00420)  # % -> fraction
    assert s["top1_agree"] == pytest.approx(0.70686) and s["ppl"] == pytest.approx(29.675627)
    assert s["ppl_base"] == pytest.approx(24.451609)
    assert (s["chunks"], s["context"], s["positions"]) == (8, 512, 8 * 255)


def test_output_without_the_summary_is_refused_naming_the_line():
    text = "\n".join(line for line in OUTPUT.read_text().splitlines() if "Median" not in line)
    with pytest.raises(LlamaPerplexityError, match="kld_median"):
        parse_statistics(text)


def _write(tmp_path, harness_kld: float):
    import csv

    from harness.record.store import append_row

    stats = parse_statistics(OUTPUT.read_text())
    append_row(tmp_path / "llama_perplexity.csv", {
        "run_id": "r0", "status": "ok", "model": "m", "precision": "gguf-q4_0", "engine": "llamacpp",
        "config_hash": "h0", "bits_per_weight": 5.35, "quality_tokens": 2048, "kld_mean": harness_kld,
        "kld_stderr": 0.0064, "kld_median": 0.231, "kld_p99": 1.47, "rms_dp": 0.1201, "rms_dp_stderr": 0.0042,
        "top1_agree": 0.7061, "ppl": 29.70, "ppl_delta": 29.70 - 24.47})
    with open(tmp_path / "llama_perplexity.peer.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["model", "precision", *stats])
        w.writeheader()
        w.writerow({"model": "m", "precision": "gguf-q4_0", **stats})


@pytest.mark.parametrize("harness_kld, verdict", [(0.291, "agrees"), (0.35, "disagrees"), (0.20, "disagrees")])
def test_a_statistic_outside_the_tolerance_flips_the_verdict(tmp_path, monkeypatch, harness_kld, verdict):
    import harness.reproduce.checks as checks

    monkeypatch.setattr(checks, "OUT", tmp_path)
    _write(tmp_path, harness_kld)
    (v,) = run_claim(load_claims()["llama-perplexity-peer"], models=["m"], types=["gguf-q4_0"], chunks=8,
                     run=False)
    assert v.verdict == verdict, v.reason
    assert "5.35 bits/weight" in v.item and "2048 harness positions vs 2040 of llama-perplexity" in v.reason
    if verdict == "disagrees":
        assert v.reason.startswith("outside tolerance: kld_mean")


def test_without_the_binary_the_check_says_how_to_build_it(tmp_path, monkeypatch):
    import harness.reproduce.checks as checks

    monkeypatch.setattr(checks, "OUT", tmp_path)
    monkeypatch.setenv("LLAMA_PERPLEXITY", str(tmp_path / "absent"))
    (v,) = run_claim(load_claims()["llama-perplexity-peer"], models=["m"], types=["gguf-q4_0"], chunks=8)
    assert v.verdict == "not comparable" and "make llama-perplexity" in v.reason
    assert not (tmp_path / "llama_perplexity.csv").exists()  # nothing measured for a check that cannot finish


@pytest.mark.integration
@pytest.mark.llamacpp
@pytest.mark.skipif(find_binary() is None, reason="llama-perplexity not built (make llama-perplexity)")
def test_the_harness_agrees_with_llama_perplexity_on_the_embedded_models_files(tmp_path, monkeypatch):
    """Two windows of 128 tokens (llama-perplexity summarises only from 100 positions): the harness's whole quality
    stage (fp32 reference, llama.cpp engine) against the tool, on two GGUF types."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (make llamacpp)")
    import harness.reproduce.checks as checks

    checks.set_out(tmp_path)
    try:
        verdicts = run_claim(load_claims()["llama-perplexity-peer"], models=["smollm2-135m"],
                             types=["gguf-q8_0", "gguf-q4_0"], chunks=2, context=128, topk=4096)
    finally:
        checks.set_out(checks.ROOT / "results" / "reproduce")
    assert [v.verdict for v in verdicts] == ["agrees", "agrees"], [v.reason for v in verdicts]
    assert all("128 harness positions vs 126 of llama-perplexity (2 chunks of 128 tokens)" in v.reason
               for v in verdicts)
    from harness.core.paths import cache_dir

    assert not list(cache_dir("tmp").glob("llama-perplexity-*"))  # the base log-probs file is removed
