"""Target 3: roofline fractions from a results CSV: each ok row's measured decode tok/s against bandwidth / bytes
read per step, best CPU scheme at batch 1 first.

    python benchmarks/roofline.py results/cpu_sweep.csv
"""
from __future__ import annotations

import sys

import pandas as pd

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from harness.analysis.report import latest_ok, load_results  # noqa: E402


def main(path: str) -> None:
    ok = latest_ok(load_results(path))
    ok["roofline_tok_s"] = pd.to_numeric(ok["roofline_tok_s"], errors="coerce")
    b1 = ok[ok["batch_size"].astype(int) == 1].sort_values("roofline_frac", ascending=False)
    print(f"memory bandwidth (copy benchmark): {b1['mem_bandwidth_gbs'].iloc[0]:.1f} GB/s")
    print(b1[["model", "precision", "decode_tok_s", "roofline_tok_s", "roofline_frac"]].to_string(index=False))
    best = b1.iloc[0]
    print(f"best at batch 1: {best['model']} {best['precision']} at {best['roofline_frac']:.3f} of its roofline")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/cpu_sweep.csv")
