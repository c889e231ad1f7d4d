"""Target 4: a sweep's wall time from its results CSV, against a budget, and how fast warm model loads were.

The wall time runs from the first run's start (its finish timestamp minus its `run_s`) to the last run's finish, so
it counts everything the sweep did: process starts, imports, loads, speed, evaluation, quality, the baseline
reference builds, and the gaps between runs. Only rows of the latest attempt of each configuration count.

    python benchmarks/sweep_time.py results/cpu_sweep.csv [--budget-min 30] [--since 2026-11-28T04:00]
"""
from __future__ import annotations

import argparse

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="?", default="results/cpu_sweep.csv")
    ap.add_argument("--budget-min", type=float, default=30.0)
    ap.add_argument("--since", default=None, help="only rows finished at or after this ISO time (one sweep)")
    args = ap.parse_args()

    from harness.record.store import read_rows

    df = pd.DataFrame(read_rows(args.csv, strict=False)).replace("", None)
    for col in ("run_s", "load_s", "bench_s", "curve_s", "eval_s", "capability_s", "quality_s"):
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else float("nan")
    df["finished"] = pd.to_datetime(df["timestamp"])
    if args.since:
        df = df[df["finished"] >= pd.Timestamp(args.since, tz="UTC")]
    if "run_s" not in df or df["run_s"].isna().all():
        raise SystemExit(f"{args.csv} has no run_s column: it was written before phase times were recorded")
    df["started"] = df["finished"] - pd.to_timedelta(df["run_s"], unit="s")
    wall = (df["finished"].max() - df["started"].min()).total_seconds()
    print(f"{len(df)} runs ({(df['status'] == 'ok').sum()} ok, {(df['status'] != 'ok').sum()} not ok), "
          f"{df['model'].nunique()} models x {df['precision'].nunique()} precisions")
    print(f"wall time      : {wall / 60:6.1f} min (budget {args.budget_min:.0f} min): "
          f"{wall / 60 / args.budget_min:.2f} of the budget -> {'within' if wall / 60 <= args.budget_min else 'OVER'}")
    print(f"sum of run_s   : {df['run_s'].sum() / 60:6.1f} min")
    for phase in ("load_s", "bench_s", "curve_s", "eval_s", "capability_s", "quality_s"):
        if df[phase].notna().any():
            print(f"  {phase:<12} : {df[phase].sum() / 60:6.1f} min")
    ok = df[df["status"] == "ok"]
    print("slowest runs:")
    cols = [c for c in ("model", "precision", "run_s", "curve_s", "eval_s", "capability_s", "quality_s")
            if c in ("model", "precision") or ok[c].notna().any()]
    print(ok.nlargest(5, "run_s")[cols].round(1).to_string(index=False))
    print("model load (load_s: weights from the cache, scheme applied and proven), median per model and engine:")
    print(ok.groupby(["model", "engine"])["load_s"].median().round(2).to_string())


if __name__ == "__main__":
    main()
