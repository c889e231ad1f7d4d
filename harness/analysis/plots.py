"""PNG plots a reader understands without the code: titles, units, legends. Points are coloured by engine/library and
shaped by model everywhere; scatter points carry a number and a key beside the axes names them (labels written on
the points overlap once a sweep has a few dozen of them); bars are ordered by stored bits."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

PLAIN = FuncFormatter(lambda v, _: f"{v:g}")  # log axes labelled 0.04, 0.1, 200 rather than 4x10^-2

MARKERS = "osD^v<>Ph*"
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]



def _models(df):
    return sorted(df["model"].unique())


def _styles(df) -> tuple[dict, dict]:
    engines = {e: COLOURS[i % len(COLOURS)] for i, e in enumerate(sorted(df["engine"].astype(str).unique()))}
    models = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(_models(df))}
    return engines, models


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _keyed(ax, df: pd.DataFrame, x: str, y: str, err: str = "", on: pd.Series | None = None) -> list[str]:
    """Numbered points (colour: engine, marker: model), optional 95% error bars, the frontier as a staircase.
    Returns the key lines, in number order."""
    engines, models = _styles(df)
    d = df.dropna(subset=[x, y]).sort_values([x, y])
    key = []
    for n, (idx, r) in enumerate(d.iterrows(), 1):
        yerr = r.get(err) if err else None
        if yerr is not None and not pd.isna(yerr) and yerr > 0:
            ax.errorbar(r[x], r[y], yerr=yerr, fmt="none", ecolor=engines[str(r["engine"])], alpha=0.6, lw=1,
                        capsize=2)
        on_front = on is not None and bool(on.get(idx, False))
        ax.scatter([r[x]], [r[y]], marker=models[r["model"]], s=60 if on_front else 40, color=engines[str(r["engine"])],
                   edgecolors="k" if on_front else "none", linewidths=1.2, zorder=3)
        ax.annotate(str(n), (r[x], r[y]), fontsize=7, xytext=(4, 3), textcoords="offset points", zorder=4)
        key.append(f"{n:>2} {r['model']} / {r['precision']}" + (" *" if on_front else ""))
    if on is not None:
        front = d[on.reindex(d.index).fillna(False).astype(bool)].sort_values(x)
        if len(front):
            ax.step(front[x], front[y], where="post", color="k", lw=1, alpha=0.7, zorder=2)
    handles = [Line2D([], [], marker="o", ls="", color=c, label=e) for e, c in engines.items()]
    handles += [Line2D([], [], marker=m, ls="", color="grey", label=mod) for mod, m in models.items()]
    if on is not None:
        handles.append(Line2D([], [], color="k", lw=1, label="frontier (* on it; outlined)"))
    ax.legend(handles=handles, fontsize=7, loc="best")
    return key


def _with_key(ax, key: list[str]) -> None:
    if not key:
        return
    cols = 1 if len(key) <= 26 else 2
    per = -(-len(key) // cols)
    for c in range(cols):
        ax.text(1.02 + 0.30 * c, 1.0, "\n".join(key[c * per:(c + 1) * per]), transform=ax.transAxes, fontsize=6.5,
                va="top", family="monospace")


def scatter_with_key(df: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str, title: str, path: Path,
                     err: str = "", on: pd.Series | None = None, logx: bool = False) -> Path:
    fig, ax = plt.subplots(figsize=(9, 6))
    key = _keyed(ax, df, x, y, err, on)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(PLAIN)
        ax.xaxis.set_minor_formatter(PLAIN)
        ax.xaxis.set_tick_params(which="minor", labelsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (" (bars: 95% interval)" if err else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _with_key(ax, key)
    return _save(fig, path)


def load_curves(curves: pd.DataFrame, ok: pd.DataFrame, path: Path) -> Path:
    """The standard serving plot as small multiples: a row per model, a panel per engine, all on one shared log scale
    (decode throughput vs per-token latency p50), one line per precision through its concurrency levels (numbers at
    the points), a colour per precision; each panel holds a few lines and its own legend."""
    d = curves.merge(ok[["run_id", "model", "precision", "engine", "bits_per_weight"]], on="run_id")
    models = _models(d)
    engines = sorted(d["engine"].astype(str).unique())
    precisions = list(ok.sort_values("bits_per_weight", ascending=False)["precision"].drop_duplicates())
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(models), len(engines), figsize=(4.2 * len(engines), 3.9 * len(models)),
                             squeeze=False, sharex=True, sharey=True)
    for row, model in enumerate(models):
        for col, engine in enumerate(engines):
            ax = axes[row][col]
            dm = d[(d["model"] == model) & (d["engine"].astype(str) == engine)]
            mine = [p for p in precisions if p in set(dm["precision"])]
            for i, prec in enumerate(mine):
                g = dm[dm["precision"] == prec].sort_values("concurrency")
                ax.plot(g["tpot_ms_p50"], g["decode_tok_s"], "-", marker="o", ms=4, color=cmap(i % 10), label=prec)
                for _, r in g.iterrows():
                    ax.annotate(f"{int(r['concurrency'])}", (r["tpot_ms_p50"], r["decode_tok_s"]), fontsize=6,
                                xytext=(2, 2), textcoords="offset points")
            ax.set_xscale("log")
            ax.set_yscale("log")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(PLAIN)
                axis.set_minor_formatter(PLAIN)
                axis.set_tick_params(which="minor", labelsize=6)
            ax.set_title(f"{model} · {engine}", fontsize=9)
            ax.grid(alpha=0.3, which="both")
            if mine:
                ax.legend(fontsize=6.5, loc="upper left")
            else:
                ax.text(0.5, 0.5, "no curve", transform=ax.transAxes, ha="center", color="grey")
            if row == len(models) - 1:
                ax.set_xlabel("per-token latency p50 (ms, log)")
            if col == 0:
                ax.set_ylabel("decode tok/s, all sequences (log)")
    fig.suptitle("Load curves: throughput vs per-token latency (numbers: concurrency); one scale for all panels")
    fig.tight_layout()
    return _save(fig, path)


def bars_by_bits(df: pd.DataFrame, cols: list[tuple[str, str, str]], title: str, path: Path) -> Path:
    """Per model, one bar per precision ordered by stored bits (high to low), coloured by engine/library; each
    (value, upper, label) column triple is a panel with a whisker from the value to its upper percentile."""
    models = _models(df)
    engines, _ = _styles(df)
    fig, axes = plt.subplots(len(models), len(cols), figsize=(6.5 * len(cols), 3.4 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        d = df[df["model"] == model].sort_values("bits_per_weight", ascending=False)
        colours = [engines[str(e)] for e in d["engine"]]
        for col, (value, upper, label) in enumerate(cols):
            ax = axes[row][col]
            hi = (d[upper] - d[value]).clip(lower=0) if upper else None
            ax.bar(d["precision"], d[value], color=colours,
                   yerr=None if hi is None else [d[value] * 0, hi], capsize=2)
            ax.set_ylabel(label)
            ax.set_title(f"{model}: {label}", fontsize=9)
            ax.tick_params(axis="x", rotation=70, labelsize=7)
            ax.grid(alpha=0.3, axis="y")
    handles = [Line2D([], [], marker="s", ls="", color=c, label=e) for e, c in engines.items()]
    fig.legend(handles=handles, loc="upper right", fontsize=7)
    fig.suptitle(title + " (ordered by stored bits, high to low)")
    fig.tight_layout(rect=(0, 0, 0.93, 0.97))
    return _save(fig, path)


def by_model_size(df: pd.DataFrame, panels: list[tuple[str, str]], title: str, path: Path) -> Path:
    """One panel per column against parameter count (log-log), one line per precision through the model sizes."""
    precisions = list(df.sort_values("bits_per_weight", ascending=False)["precision"].drop_duplicates())
    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.6), squeeze=False)
    for ax, (col, label) in zip(axes[0], panels):
        for i, prec in enumerate(precisions):
            g = df[df["precision"] == prec].dropna(subset=[col]).sort_values("model_params")
            if len(g):
                ax.plot(g["model_params"] / 1e9, g[col], marker=MARKERS[i % len(MARKERS)], color=cmap(i % 10),
                        label=prec)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(PLAIN)
        ax.set_xlabel("parameters (billions, log)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def qps_latency(runs: pd.DataFrame, ok: pd.DataFrame, slos: list, path: Path) -> Path:
    """LoadGen's Server runs as QPS-latency curves: a column per SLO profile, TTFT p99 above and TPOT p99 below (log),
    one line per configuration through the target QPS it was run at (filled: LoadGen judged VALID, hollow: INVALID),
    colour per precision, marker per engine, line style per model, the profile's bound as a dashed black line."""
    d = runs[runs["scenario"] == "server"].merge(ok[["run_id", "model", "precision", "engine"]], on="run_id")
    profiles = [s for s in slos if s.name in set(d["profile"])]
    precisions = sorted(d["precision"].unique())
    colour = {p: plt.get_cmap("tab20")(i % 20) for i, p in enumerate(precisions)}
    engines = sorted(d["engine"].astype(str).unique())
    marker = {e: MARKERS[i % len(MARKERS)] for i, e in enumerate(engines)}
    style = {m: ("-", ":", "--", "-.")[i % 4] for i, m in enumerate(_models(d))}
    fig, axes = plt.subplots(2, max(1, len(profiles)), figsize=(6.2 * max(1, len(profiles)), 8), squeeze=False)
    for col, slo in enumerate(profiles):
        dp = d[d["profile"] == slo.name]
        for row, (metric, bound, label) in enumerate((("ttft_p99_ms", slo.ttft_ms, "TTFT p99 (ms, log)"),
                                                      ("tpot_p99_ms", slo.tpot_ms, "TPOT p99 (ms, log)"))):
            ax = axes[row][col]
            for (model, prec, eng), g in dp.groupby(["model", "precision", "engine"]):
                g = g.sort_values("target_qps")
                c = colour[prec]
                ax.plot(g["target_qps"], g[metric], style[model], color=c, lw=1.2, alpha=0.8)
                for _, r in g.iterrows():
                    ax.plot(r["target_qps"], r[metric], marker[str(eng)], ms=6, color=c,
                            markerfacecolor=c if r["valid"] else "white")
            if bound is not None:
                ax.axhline(bound, ls=(0, (6, 3)), color="k", lw=1)
                ax.annotate(f"{slo.name} bound {bound:g} ms", (0.01, bound), xycoords=("axes fraction", "data"),
                            fontsize=7, xytext=(0, 3), textcoords="offset points")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(PLAIN)
            ax.grid(alpha=0.3, which="both")
            ax.set_ylabel(label)
            ax.set_title(f"profile `{slo.name}`: {'TTFT' if row == 0 else 'TPOT'}", fontsize=9)
            if row == 1:
                ax.set_xlabel("Server target QPS (Poisson arrivals)")
    handles = [Line2D([], [], color=colour[p], lw=2, label=p) for p in precisions]
    handles += [Line2D([], [], color="grey", marker=marker[e], ls="", label=f"engine {e}") for e in engines]
    handles += [Line2D([], [], color="grey", ls=style[m], label=m) for m in _models(d)]
    handles += [Line2D([], [], color="grey", marker="o", ls="", label="VALID (LoadGen)"),
                Line2D([], [], color="grey", marker="o", markerfacecolor="white", ls="", label="INVALID")]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    models = ", ".join(sorted(d["model"].unique()))
    fig.suptitle(f"MLPerf LoadGen Server runs: p99 latency vs offered load ({models})")
    fig.tight_layout()
    return _save(fig, path)
