import pytest

from harness.record.store import append_row


def make_csv(path, rows):
    for r in rows:
        append_row(path, r)
    return path


def row(model, precision, decode, prefill, acc, kld, wbytes, status="ok", error=None, bits=None):
    return {"run_id": f"{model}-{precision}", "status": status, "error": error, "model": model,
            "precision": precision, "config_hash": f"{model}-{precision}", "batch_size": 1, "prompt_tokens": 64,
            "decode_tok_s": decode, "prefill_tok_s": prefill, "ttft_ms_p50": 100.0, "tpot_ms_p50": 10.0,
            "tpot_ms_p90": 12.0, "weight_bytes": wbytes, "bits_per_weight": bits or (8 * wbytes / 1e8 if wbytes else None),
            "mmlu_acc": acc, "mmlu_stderr": 0.02 if acc is not None else None, "mmlu_n": 300,
            "kld_mean": kld, "mem_bandwidth_gbs": 30.0, "peak_rss_mb": 900.0}


@pytest.fixture
def small_csv(tmp_path):
    return make_csv(tmp_path / "sweep.csv", [
        row("m1", "fp32", 20, 400, 0.50, 0.0, 4e8),
        row("m1", "int8", 40, 500, 0.49, 0.01, 1.2e8),
        row("m1", "int4", 60, 450, 0.40, 0.20, 0.7e8),
        row("m1", "bad4", 30, 450, 0.38, 0.30, 0.7e8),
        row("m2", "fp32", 10, 200, 0.60, 0.0, 8e8),
        row("m2", "gptq", None, None, None, None, None, status="unavailable", error="needs cuda"),
        row("m2", "hqq", None, None, None, None, None, status="failed", error="RuntimeError: boom"),
    ])
