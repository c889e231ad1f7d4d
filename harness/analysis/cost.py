"""$ per million tokens from measured throughput only: a hardware profile prices the rows measured on it, at the
throughput a run sustains under an SLO profile (harness/analysis/slo.py).

usd_per_mtok_out = usd_per_hour / (decode tok/s * 3600) * 1e6      (decode throughput at the chosen level)
usd_per_mtok_in  = usd_per_hour / (prefill tok/s * 3600) * 1e6     (prefill throughput at the same level)
usd_per_mtok_blended = (3 * in + 1 * out) / 4      (3:1 input:output, the convention of the AI Index's sources)

No throughput is carried from one machine to another: a profile with no measured rows gets no prices."""
from __future__ import annotations

import pandas as pd

from harness.profiles.hardware import Hardware


def blended(usd_in: float, usd_out: float, ratio_in: float = 3.0, ratio_out: float = 1.0) -> float:
    return (ratio_in * usd_in + ratio_out * usd_out) / (ratio_in + ratio_out)


def measured_on(df: pd.DataFrame, hw: Hardware) -> pd.Series:
    """Rows measured on the profile's hardware: `this-machine` (no device_match) is the CPU that ran a CPU CSV;
    other profiles match their device_match text in the row's device name or CPU name."""
    device = df.get("device", pd.Series("cpu", index=df.index)).fillna("cpu").replace("", "cpu")
    if hw.device_match is None:
        return device == "cpu"
    text = (df.get("device_name", pd.Series("", index=df.index)).fillna("").astype(str) + " "
            + df.get("cpu", pd.Series("", index=df.index)).fillna("").astype(str))
    return text.str.contains(hw.device_match, case=False, regex=False) & (device == hw.device)


def price(df: pd.DataFrame, hw: Hardware, tok_s: str = "slo_tok_s", prefill_tok_s: str = "slo_prefill_tok_s"
          ) -> pd.DataFrame:
    """Cost columns for the rows of `df` measured on `hw` (others are dropped), from the named throughput columns."""
    out = df[measured_on(df, hw)].copy()
    out["hardware"] = hw.name
    dec = pd.to_numeric(out[tok_s], errors="coerce")
    pre = pd.to_numeric(out[prefill_tok_s], errors="coerce")
    out["usd_per_mtok_out"] = hw.usd_per_hour / (dec * 3600) * 1e6
    out["usd_per_mtok_in"] = hw.usd_per_hour / (pre * 3600) * 1e6
    out["usd_per_mtok_blended"] = blended(out["usd_per_mtok_in"], out["usd_per_mtok_out"])
    return out
