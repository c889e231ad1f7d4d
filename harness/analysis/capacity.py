"""Memory capacity: how many concurrent sequences of a stated context fit in a hardware profile's memory beside a
run's weights, from two measured numbers: the bytes its weights occupy and the KV-cache bytes one token adds.

sequences = floor((memory_gb * 1e9 * usable - weight_bytes) / (kv_bytes_per_token * context))

memory_gb is in GB (10^9 bytes), as hardware vendors and cloud price lists state it.

`usable` (0.9) leaves a tenth of the memory to the runtime and activations; 0 when the weights alone do not fit.
This is arithmetic on measured bytes, not a measurement on that hardware (an engine's own overheads differ)."""
from __future__ import annotations

import math

import pandas as pd

USABLE = 0.9


def sequences_that_fit(memory_gb: float, weight_bytes: float, kv_bytes_per_token: float, context: int) -> float:
    if any(pd.isna(v) for v in (memory_gb, weight_bytes, kv_bytes_per_token)) or kv_bytes_per_token <= 0:
        return math.nan
    free = memory_gb * 1e9 * USABLE - weight_bytes
    return max(0, math.floor(free / (kv_bytes_per_token * context)))


def capacity_table(ok: pd.DataFrame, hardware: list, context: int) -> pd.DataFrame:
    """`fits_<profile>` columns: sequences of `context` tokens that fit, per run and profile."""
    out = ok[["config", "run_id", "weight_mb"]].copy()
    kv = pd.to_numeric(ok.get("kv_bytes_per_token", pd.Series(index=ok.index, dtype=float)), errors="coerce")
    out["kv_kib_per_token"] = kv / 1024
    for hw in hardware:
        if hw.memory_gb is None:
            continue
        out[f"fits_{hw.name}"] = [sequences_that_fit(hw.memory_gb, w, k, context)
                                  for w, k in zip(ok["weight_bytes"], kv)]
    return out
