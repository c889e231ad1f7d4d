"""$ per million tokens from measured throughput, always at the batch size the throughput was measured at.

usd_per_mtok_out = usd_per_hour / (decode_tok_s * 3600) * 1e6
usd_per_mtok_in  = usd_per_hour / (prefill_tok_s * 3600) * 1e6
usd_per_mtok_blended = (3 * in + 1 * out) / 4      (3:1 input:output, the convention of the AI Index's sources)

On a profile other than the measuring machine, throughput is projected by the bandwidth ratio (memory-bound decode)
and the row is marked projected."""
from __future__ import annotations

import pandas as pd

from harness.analysis.hardware import Hardware


def usd_per_mtok(usd_per_hour: float, tok_s: float) -> float:
    return usd_per_hour / (tok_s * 3600) * 1e6


def blended(usd_in: float, usd_out: float, ratio_in: float = 3.0, ratio_out: float = 1.0) -> float:
    return (ratio_in * usd_in + ratio_out * usd_out) / (ratio_in + ratio_out)


def price(df: pd.DataFrame, hw: Hardware) -> pd.DataFrame:
    """Cost columns for the ok rows of a results frame on one hardware profile."""
    out = df.copy()
    measured_bw = out["mem_bandwidth_gbs"].astype(float)
    if hw.mem_bandwidth_gbs is None:
        scale = pd.Series(1.0, index=out.index)
        out["projected"] = False
    else:
        scale = hw.mem_bandwidth_gbs / measured_bw
        out["projected"] = True
    out["hardware"] = hw.name
    dec = out["decode_tok_s"].astype(float) * scale
    pre = out["prefill_tok_s"].astype(float) * scale
    out["usd_per_mtok_out"] = hw.usd_per_hour / (dec * 3600) * 1e6
    out["usd_per_mtok_in"] = hw.usd_per_hour / (pre * 3600) * 1e6
    out["usd_per_mtok_blended"] = blended(out["usd_per_mtok_in"], out["usd_per_mtok_out"])
    return out
