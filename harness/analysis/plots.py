"""PNG plots a reader understands without the code: titles, units, legends."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

MARKERS = "osD^v<>Ph*"


def _models(df):
    return sorted(df["model"].unique())


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _frontier_scatter(ax, df: pd.DataFrame, on: pd.Series, x: str, y: str) -> None:
    """One marker per model, each point labelled with its precision, and the frontier as a staircase."""
    for i, model in enumerate(_models(df)):
        d = df[df["model"] == model]
        ax.scatter(d[x], d[y], marker=MARKERS[i % len(MARKERS)], s=45, label=model)
        for _, r in d.iterrows():
            ax.annotate(r["precision"], (r[x], r[y]), fontsize=7, xytext=(3, 2), textcoords="offset points")
    front = df[on].sort_values(x)
    ax.step(front[x], front[y], where="post", color="k", lw=1.2, label="Pareto frontier")


def cost_vs_quality(df: pd.DataFrame, on: pd.Series, quality: str, quality_label: str, hw: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 6))
    _frontier_scatter(ax, df, on, "usd_per_mtok_blended", quality)
    ax.set_xscale("log")
    projected = " (projected from this machine by bandwidth ratio)" if df["projected"].any() else ""
    ax.set_xlabel("US$ per million tokens, blended 3:1 input:output (log scale)")
    ax.set_ylabel(quality_label)
    ax.set_title(f"Cost vs quality on {hw}{projected}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def memory_vs_quality(df: pd.DataFrame, on: pd.Series, quality: str, quality_label: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 6))
    _frontier_scatter(ax, df, on, "weight_mb", quality)
    ax.set_xlabel("weight memory (MiB, as stored)")
    ax.set_ylabel(quality_label)
    ax.set_title("Weight memory vs quality")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def speed_memory_vs_bits(df: pd.DataFrame, path: Path) -> Path:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 5))
    for i, model in enumerate(_models(df)):
        d = df[df["model"] == model].sort_values("bits_per_weight")
        m = MARKERS[i % len(MARKERS)]
        a.scatter(d["bits_per_weight"], d["decode_tok_s"], marker=m, label=model)
        b.scatter(d["bits_per_weight"], d["weight_mb"], marker=m, label=model)
        for _, r in d.iterrows():
            a.annotate(r["precision"], (r["bits_per_weight"], r["decode_tok_s"]), fontsize=6, xytext=(2, 2),
                       textcoords="offset points")
    a.set_xlabel("stored bits per weight (whole model)")
    a.set_ylabel("decode tokens/s (batch as measured)")
    a.set_title("Decode speed vs bits per weight")
    b.set_xlabel("stored bits per weight (whole model)")
    b.set_ylabel("weight memory (MiB)")
    b.set_title("Weight memory vs bits per weight")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def accuracy_vs_bits(df: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 6))
    d0 = df.dropna(subset=["mmlu_acc"])
    for i, model in enumerate(_models(d0)):
        d = d0[d0["model"] == model]
        ax.errorbar(d["bits_per_weight"], d["mmlu_acc"], yerr=1.96 * d["mmlu_stderr"], fmt=MARKERS[i % len(MARKERS)],
                    capsize=3, label=f"{model} (95% interval)")
    ax.axhline(0.25, color="grey", ls="--", lw=1, label="chance (4 choices)")
    n = int(d0["mmlu_n"].max()) if len(d0) else 0
    ax.set_xlabel("stored bits per weight (whole model)")
    ax.set_ylabel("MMLU accuracy")
    ax.set_title(f"MMLU accuracy vs bits per weight ({n} questions, 5-shot)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def latency_by_precision(df: pd.DataFrame, path: Path) -> Path:
    models = _models(df)
    fig, axes = plt.subplots(len(models), 2, figsize=(13, 3.2 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        d = df[df["model"] == model].sort_values("precision")
        axes[row][0].bar(d["precision"], d["ttft_ms_p50"], color="tab:blue")
        axes[row][0].set_ylabel("TTFT p50 (ms)")
        axes[row][0].set_title(f"{model}: time to first token ({int(d['prompt_tokens'].iloc[0])}-token prompt)")
        axes[row][1].bar(d["precision"], d["tpot_ms_p50"], color="tab:orange",
                         yerr=[d["tpot_ms_p50"] * 0, d["tpot_ms_p90"] - d["tpot_ms_p50"]], capsize=2)
        axes[row][1].set_ylabel("per-token decode p50 (ms), bar to p90")
        axes[row][1].set_title(f"{model}: per-token decode latency")
        for ax in axes[row]:
            ax.tick_params(axis="x", rotation=70, labelsize=7)
            ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)
