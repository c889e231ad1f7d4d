"""What one speed measurement (a run's, or one load-curve level's) reports, declared once: the percentiles taken of
TTFT and per-token latency, and the statistics a level records. The run's columns (harness/record/schema.py), the
load-curve side table (harness/record/curves.py) and the latency targets (harness/profiles/slo.py) read these."""
from __future__ import annotations

PERCENTILES = (50, 90, 99)  # of TTFT (over timed generations) and of TPOT (over every decode step)
LATENCY_KEYS = tuple(f"{what}_ms_p{p}" for what in ("ttft", "tpot") for p in PERCENTILES)
LEVEL_KEYS = (*LATENCY_KEYS, "ttft_n", "tpot_n", "decode_tok_s", "prefill_tok_s", "e2e_s_p50")
