"""Architecture-only rows (random weights, no quality) measured on a GPU are priced per SLO profile from that GPU's
hourly price, and the size x precision table and plot are drawn; no frontier is claimed without a quality value."""
import pandas as pd

from harness.analysis.report import analyse, write_report
from harness.record.store import append_row


def _gpu_row(model, params, precision, tok_s, bits):
    return {"run_id": f"{model}-{precision}", "status": "ok", "model": model, "precision": precision,
            "weights": "random", "config_hash": f"{model}-{precision}", "model_params": params, "batch_size": 1,
            "prompt_tokens": 64, "decode_tok_s": tok_s, "prefill_tok_s": 50 * tok_s, "ttft_ms_p50": 20.0,
            "ttft_ms_p99": 25.0, "tpot_ms_p50": 1000 / tok_s, "tpot_ms_p90": 1000 / tok_s,
            "tpot_ms_p99": 1000 / tok_s, "weight_bytes": params * bits / 8, "bits_per_weight": bits,
            "device": "cuda", "device_name": "NVIDIA H200", "kv_bytes_per_token": 131072}


def test_speed_only_rows_are_priced_and_tabled(tmp_path):
    csv = tmp_path / "2026-12-01-h200.csv"
    for model, params in (("small-arch", 5e8), ("big-arch", 8e9)):
        for precision, tok_s, bits in (("bf16", 200.0 if params < 1e9 else 80.0, 16), ("int4", 300.0, 4.5)):
            append_row(csv, _gpu_row(model, params, precision, tok_s, bits))
    a = analyse(csv, hardware=["h200"], slos=["batch1"])
    (p,) = a.priced
    assert not a.unpriced and len(p.rows) == 4
    d = p.rows.set_index("config")
    # $13.72/hour at 80 tok/s of output: 13.72 / (80 * 3600) * 1e6 = 47.64 $/M output tokens
    assert abs(d.loc["big-arch / bf16", "usd_per_mtok_out"] - 47.64) < 0.01
    assert not p.rows["on_frontier"].any() and p.recommendation == "no configuration with a quality value and a price"
    report = write_report(csv, tmp_path / "out", hardware=["h200"], slos=["batch1"]).read_text()
    assert "## Model size x precision" in report and "prices only, no frontier" in report
    assert (tmp_path / "out" / "2026-12-01-h200_size_x_precision.png").stat().st_size > 10_000
    assert not pd.isna(d.loc["small-arch / int4", "usd_per_mtok_blended"])
