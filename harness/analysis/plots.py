"""PNG figures a reader understands at a glance, each designed for its question, in one look (harness/analysis/
style.py): a colour per precision family, the same in every figure; a marker per engine; plain log ticks; legends
outside the data; at most eight series in a panel (more become more panels); no line joins two engines; titles name
the machine, the SLO profile and the dates of the rows. Every figure is checked by harness/analysis/legibility.py as
it is saved (overlapping text, a legend over data, unlabelled axes, crowded panels: `PROBLEMS` records what failed),
and carries a digest of the data it shows in its PNG metadata, so `make check-results` can tell a stale picture."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from harness.analysis import style  # noqa: E402
from harness.analysis.legibility import MAX_SERIES, problems  # noqa: E402

DATA_KEY = "harness-data"  # PNG text chunk: sha256 of the data drawn
PROBLEMS: dict[str, list[str]] = {}  # figure file name -> what the legibility check found, for the last save
LINESTYLES = ("-", "--", ":", "-.")


def data_digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_csv(index=False, float_format="%.6g").encode()).hexdigest()[:32]


def _save(fig, path: Path, data: pd.DataFrame) -> Path:
    PROBLEMS[path.name] = problems(fig)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None, DATA_KEY: data_digest(data)})
    plt.close(fig)
    return path


def read_digest(path: Path) -> str | None:
    """The data digest a PNG written here carries (None for another PNG)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.text.get(DATA_KEY) if hasattr(im, "text") else None


def _legend_outside(fig, handles, title: str = "", ncol: int = 1):
    """One legend for the figure, to the right of every panel, below the title: it covers no data."""
    return fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.94), fontsize=8, frameon=False,
                      title=title or None, title_fontsize=8, ncol=ncol)


def _family_handles(precisions) -> list:
    families = list(dict.fromkeys(style.family(p) for p in precisions))
    return [Line2D([], [], marker="o", ls="", color=style.FAMILIES[f], label=f) for f in style.FAMILIES
            if f in families]


def _engine_handles(engines) -> list:
    seen: dict = {}
    return [Line2D([], [], marker=style.engine_marker(e, seen), ls="", color="grey", label=f"engine {e}")
            for e in engines]


def _chunks(items: list, size: int = MAX_SERIES) -> list[list]:
    """Items split into as few groups of at most `size` as possible, in order (so a family stays together)."""
    n = max(1, math.ceil(len(items) / size))
    per = math.ceil(len(items) / n) if items else 1
    return [items[i:i + per] for i in range(0, len(items), per)] or [[]]


def _place_labels(ax, points: list[tuple[float, float, str]], fontsize: float = 7.5) -> list[str]:
    """Label points directly without overlap: for each point (in order) the first of eight offsets whose box
    overlaps no label already placed, no point marker and stays in the panel; a label that fits nowhere is left
    out. Returns the labels left out (the caller lists them). Written here because the check must hold, not be
    likely: a placer that may leave overlaps (adjustText) would fail the legibility test."""
    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    inside = ax.get_window_extent(r)
    marks = [ax.transData.transform((x, y)) for x, y, _ in points]
    placed, dropped = [], []
    for (x, y, text), (px, py) in zip(points, marks):
        for dx, dy, ha, va in ((6, 4, "left", "bottom"), (6, -4, "left", "top"), (-6, 4, "right", "bottom"),
                               (-6, -4, "right", "top"), (0, 9, "center", "bottom"), (0, -9, "center", "top"),
                               (12, 0, "left", "center"), (-12, 0, "right", "center")):
            t = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, ha=ha,
                            va=va, zorder=5)
            box = t.get_window_extent(r)
            clash = (box.x0 < inside.x0 or box.x1 > inside.x1 or box.y0 < inside.y0 or box.y1 > inside.y1
                     or any(box.overlaps(b) for b in placed)
                     or any(box.x0 - 3 < mx < box.x1 + 3 and box.y0 - 3 < my < box.y1 + 3 for mx, my in marks))
            if not clash:
                placed.append(box)
                break
            t.remove()
        else:
            dropped.append(text)
    return dropped


# -- cost (or memory, capacity) against quality, the frontier labelled ------------------------------------------------
def scatter_with_key(df: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str, title: str, path: Path,
                     err: str = "", on: pd.Series | None = None, logx: bool = False) -> Path:
    """A panel per model on shared axes (so models compare), every configuration a point (colour: precision family,
    marker: engine; error bars: 95% intervals); the frontier, which is computed across models, outlined, joined by a
    thick staircase within each panel and labelled directly with its precisions. A frontier label that finds no room
    is left out and counted under the panel (the table beside the figure lists every point)."""
    d = df.dropna(subset=[x, y]).sort_values([x, y])
    models = sorted(d["model"].unique()) or [""]
    cols = min(3, len(models))
    rows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 5.0 * rows), squeeze=False, sharex=True, sharey=True)
    seen: dict = {}
    front_all = pd.Series(False, index=d.index) if on is None else on.reindex(d.index).fillna(False).astype(bool)
    for k, model in enumerate(models):
        ax = axes[k // cols][k % cols]
        dm = d[d["model"] == model]
        front = front_all.reindex(dm.index)
        drawn: set = set()
        for (fam, engine), g in dm.groupby([dm["precision"].map(style.family), dm["runtime"].astype(str)], sort=False):
            colour, marker = style.FAMILIES[fam], style.engine_marker(engine, seen)
            if err:
                e = pd.to_numeric(g[err], errors="coerce")
                ok = e.notna() & (e > 0)
                if ok.any():
                    ax.errorbar(g.loc[ok, x], g.loc[ok, y], yerr=e[ok], fmt="none", ecolor=colour, alpha=0.5, lw=1,
                                capsize=2, zorder=2)
            # a series is a family (its colour); the engine is a second encoding of the same points
            ax.scatter(g[x], g[y], s=[70 if front.get(i, False) else 32 for i in g.index], marker=marker,
                       color=colour, edgecolors=["k" if front.get(i, False) else "none" for i in g.index],
                       linewidths=1.3, zorder=3, alpha=0.9, gid="series" if fam not in drawn else "series-part")
            drawn.add(fam)
        if front.any():
            f = dm[front].sort_values(x)
            ax.step(f[x], f[y], where="post", color="k", lw=2, alpha=0.8, zorder=2.5)
        ax.set_title(model, fontsize=9, loc="left")
        ax.grid(alpha=0.3, which="major")
    for k in range(len(models), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    for ax in fig.axes:
        if ax.get_visible() and logx:
            ax.set_xscale("log")
            style.log_axis(ax.xaxis, *sorted(ax.get_xlim()))
    for c in range(cols):
        axes[-1][c].set_xlabel(xlabel, fontsize=8)
    for r in range(rows):
        axes[r][0].set_ylabel(ylabel + (" (bars: 95% interval)" if err else ""), fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    for k, model in enumerate(models):
        ax = axes[k // cols][k % cols]
        dm = d[d["model"] == model]
        front = front_all.reindex(dm.index)
        labels = [(r[x], r[y], str(r["precision"]) + (" @ " + str(r["runtime"]) if "@" in str(r.get("config", ""))
                                                      else "")) for _, r in dm[front].iterrows()]
        dropped = _place_labels(ax, labels)
        if dropped:
            ax.set_title(f"{model} ({len(dropped)} frontier label(s) left out for room)", fontsize=9, loc="left")
    handles = _family_handles(d["precision"]) + _engine_handles(sorted(d["runtime"].astype(str).unique()))
    if front_all.any():
        handles.append(Line2D([], [], color="k", lw=2, marker="o", markerfacecolor="white",
                              label="frontier across models\n(outlined, labelled)"))
    _legend_outside(fig, handles)
    return _save(fig, path, d[["model", "precision", "runtime", x, y] + ([err] if err else [])].assign(front=front_all))


# -- load curves ------------------------------------------------------------------------------------------------------
def load_curves(curves: pd.DataFrame, ok: pd.DataFrame, path: Path, where: str = "") -> Path:
    """The serving plot as small multiples: a panel per (model, engine, and at most eight precisions), all on one log
    scale (decode throughput of all sequences vs per-token latency p50), a line per precision through its
    concurrency levels (left to right as concurrency grows), colour by family, line style within a family."""
    d = curves.merge(ok[["run_id", "model", "precision", "runtime", "bits_per_weight", "machine"]], on="run_id")
    d = d.dropna(subset=["tpot_ms_p50", "decode_tok_s"])
    if d["machine"].nunique() > 1:  # a panel holds one machine's rows: the engine name carries it
        d["runtime"] = d["runtime"].astype(str) + " on " + d["machine"].str.split(",").str[0]
    order = list(ok.sort_values("bits_per_weight", ascending=False)["precision"].drop_duplicates())
    panels = []
    for model in sorted(d["model"].unique()):
        for engine in sorted(d["runtime"].astype(str).unique()):
            dm = d[(d["model"] == model) & (d["runtime"].astype(str) == engine)]
            mine = [p for p in order if p in set(dm["precision"])]
            for part, group in enumerate(_chunks(mine)):
                if group:
                    panels.append((model, engine, group, dm))
    cols = min(3, max(1, len(panels)))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 4.0 * rows), squeeze=False, sharex=True, sharey=True)
    for k, (model, engine, group, dm) in enumerate(panels):
        ax = axes[k // cols][k % cols]
        for prec in group:
            g = dm[dm["precision"] == prec].sort_values("concurrency")
            fam = style.family(prec)
            n_same = sum(1 for p in group[:group.index(prec)] if style.family(p) == fam)
            ax.plot(g["tpot_ms_p50"], g["decode_tok_s"], LINESTYLES[n_same % len(LINESTYLES)], marker="o", ms=3.5,
                    color=style.colour(prec), label=prec, gid="series")
        ax.set_title(f"{model} · {engine}", fontsize=9)
        ax.grid(alpha=0.3, which="major")
        ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    for k in range(len(panels), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    for ax in fig.axes:
        if ax.get_visible():
            ax.tick_params(labelbottom=True, labelleft=True)
            ax.set_xscale("log")
            ax.set_yscale("log")
            style.log_axis(ax.xaxis, *sorted(ax.get_xlim()))
            style.log_axis(ax.yaxis, *sorted(ax.get_ylim()))
    for ax in fig.axes:
        if ax.get_visible():
            ax.set_xlabel("per-token latency p50 (ms, log)", fontsize=8)
            ax.set_ylabel("decode tok/s, all sequences (log)", fontsize=8)
    fig.suptitle("Load curves: throughput vs per-token latency, points left to right at rising concurrency"
                 + (f"\n{where}" if where else ""))
    fig.tight_layout(w_pad=9, rect=(0, 0, 1, 0.96))
    return _save(fig, path, d[["model", "runtime", "precision", "concurrency", "tpot_ms_p50", "decode_tok_s"]])


# -- bars per precision -----------------------------------------------------------------------------------------------
def bars_by_bits(df: pd.DataFrame, cols: list[tuple[str, str, str]], title: str, path: Path) -> Path:
    """Per model, a horizontal bar per precision ordered by stored bits (high to low, top to bottom), coloured by
    family; each (value, upper, label) column triple is a panel, with a whisker from the value to its upper
    percentile. Precision names are the rows' labels: they never crowd."""
    key = "panel" if "panel" in df else "model"
    models = sorted(df[key].unique())
    heights = [max(2.0, 0.22 * len(df[df[key] == m]) + 0.9) for m in models]
    fig, axes = plt.subplots(len(models), len(cols), figsize=(5.2 * len(cols), sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for row, model in enumerate(models):
        d = df[df[key] == model].sort_values("bits_per_weight", ascending=True)
        labels = [f"{p} @ {e}" if dup else p for p, e, dup in
                  zip(d["precision"], d["runtime"], d["precision"].duplicated(keep=False))]
        for col, (value, upper, label) in enumerate(cols):
            ax = axes[row][col]
            hi = (d[upper] - d[value]).clip(lower=0) if upper else None
            ax.barh(range(len(d)), d[value], color=[style.colour(p) for p in d["precision"]],
                    xerr=None if hi is None else [d[value] * 0, hi], capsize=2, gid=None)
            ax.set_yticks(range(len(d)))
            ax.set_yticklabels(labels if col == 0 else [""] * len(d), fontsize=7)
            ax.set_xlabel(label, fontsize=8)
            ax.set_title(model, fontsize=9, loc="left")
            ax.grid(alpha=0.3, axis="x")
    fig.suptitle(title + " (ordered by stored bits)")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    _legend_outside(fig, _family_handles(df["precision"]), title="precision family")
    shown = dict.fromkeys(c for v, u, _ in cols for c in (v, u) if c)  # ordered: the digest must not vary
    return _save(fig, path, df[["model", "precision", "runtime", *shown]])


# -- model size x precision -------------------------------------------------------------------------------------------
def size_x_precision(df: pd.DataFrame, panels: list[tuple[str, str]], title: str, path: Path) -> Path:
    """Model size against precision as a dot plot: a row of panels per engine (no line joins two engines), one row
    per precision (ordered by stored bits, coloured by family), a marker per model size on each metric's log
    axis. A reader reads across a row how a precision scales with size, and down a column which precision is
    fastest or cheapest at a size."""
    engines = sorted(df["runtime"].astype(str).unique())
    models = list(df.sort_values("model_params").drop_duplicates("model")["model"])
    if len(models) > MAX_SERIES:
        models = models[:MAX_SERIES]
    size_of = dict(zip(df["model"], df["model_params"]))
    markers = dict(zip(models, "osD^vP*X"))
    counts = [max(1, df[df["runtime"].astype(str) == e]["precision"].nunique()) for e in engines]
    fig, axes = plt.subplots(len(engines), len(panels), figsize=(4.2 * len(panels), sum(0.28 * c + 1.0 for c in counts)),
                             squeeze=False, gridspec_kw={"height_ratios": [0.28 * c + 1.0 for c in counts]})
    for row, engine in enumerate(engines):
        d = df[df["runtime"].astype(str) == engine]
        precisions = list(d.sort_values("bits_per_weight", ascending=True)["precision"].drop_duplicates())
        ypos = {p: i for i, p in enumerate(precisions)}
        for col, (metric, label) in enumerate(panels):
            ax = axes[row][col]
            for model in models:
                g = d[(d["model"] == model)].dropna(subset=[metric])
                if len(g):
                    ax.scatter(g[metric], [ypos[p] for p in g["precision"]], marker=markers[model], s=36,
                               c=[style.colour(p) for p in g["precision"]], edgecolors="k", linewidths=0.5,
                               zorder=3, gid="series")
            ax.set_yticks(range(len(precisions)))
            ax.set_yticklabels(precisions if col == 0 else [""] * len(precisions), fontsize=7)
            for tick, p in zip(ax.get_yticklabels(), precisions):
                tick.set_color(style.colour(p) if style.colour(p) != "#000000" else "#333333")
            ax.set_ylim(-0.7, len(precisions) - 0.3)
            if d[metric].notna().any():
                ax.set_xscale("log")
                style.log_axis(ax.xaxis, *sorted(ax.get_xlim()))
            ax.grid(alpha=0.3, axis="x", which="major")
            ax.set_xlabel(label, fontsize=8)
            if col == 0:
                ax.set_title(f"engine {engine}", fontsize=9, loc="left")
    handles = [Line2D([], [], marker=markers[m], ls="", color="grey", markeredgecolor="k",
                      label=f"{m} ({style.params_label(size_of[m])})") for m in models]
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    _legend_outside(fig, handles + _family_handles(df["precision"]), title="model (size) · precision family")
    return _save(fig, path, df[["model", "model_params", "runtime", "precision", *[m for m, _ in panels]]])


# -- LoadGen Server runs ----------------------------------------------------------------------------------------------
def qps_latency(runs: pd.DataFrame, ok: pd.DataFrame, slos: list, path: Path, where: str = "") -> Path:
    """LoadGen's Server runs as QPS-latency curves: a row of panels per (SLO profile, model, at most eight
    configurations), TTFT p99 left and TPOT p99 right (log), a line per configuration through the target QPS it ran
    at (filled: LoadGen judged VALID, hollow: INVALID), colour by family, marker by engine, the profile's bound as a
    dashed line."""
    d = runs[runs["scenario"] == "server"].merge(ok[["run_id", "model", "precision", "runtime"]], on="run_id")
    d["label"] = d["precision"] + " @ " + d["runtime"].astype(str)
    rows = []
    for slo in [s for s in slos if s.name in set(d["profile"])]:
        for model in sorted(d["model"].unique()):
            dm = d[(d["profile"] == slo.name) & (d["model"] == model)]
            labels = sorted(dm["label"].unique(), key=lambda s: (style.family(s.split(" @ ")[0]), s))
            rows += [(slo, model, group, dm) for group in _chunks(labels) if group]
    fig, axes = plt.subplots(max(1, len(rows)), 2, figsize=(12, 3.6 * max(1, len(rows))), squeeze=False)
    seen: dict = {}
    engines = sorted(d["runtime"].astype(str).unique())
    for r, (slo, model, group, dm) in enumerate(rows):
        for c, (metric, bound, label) in enumerate((("ttft_p99_ms", slo.ttft_ms, "TTFT p99 (ms, log)"),
                                                    ("tpot_p99_ms", slo.tpot_ms, "TPOT p99 (ms, log)"))):
            ax = axes[r][c]
            for lab in group:
                g = dm[dm["label"] == lab].sort_values("target_qps")
                prec, eng = lab.split(" @ ")
                col, mk = style.colour(prec), style.engine_marker(eng, seen)
                ax.plot(g["target_qps"], g[metric], "-", color=col, lw=1.2, alpha=0.8, gid="series", label=lab)
                for valid, gv in g.groupby("valid"):
                    ax.plot(gv["target_qps"], gv[metric], mk, ls="", ms=6, color=col,
                            markerfacecolor=col if valid else "white")
            if bound is not None:
                ax.axhline(bound, ls=(0, (6, 3)), color="k", lw=1)
            ax.set_yscale("log")
            style.log_axis(ax.yaxis, *sorted(ax.get_ylim()))
            ax.grid(alpha=0.3, which="major")
            ax.set_ylabel(label, fontsize=8)
            ax.set_xlabel("Server target QPS (queries/s)", fontsize=8)
            ax.set_title(f"{model}, profile {slo.name}" + (f" (bound {bound:g} ms: dashed)" if bound else ""),
                         fontsize=9)
            if c == 1:
                ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    handles = _engine_handles(engines) + [
        Line2D([], [], color="grey", marker="o", ls="", label="VALID (LoadGen)"),
        Line2D([], [], color="grey", marker="o", markerfacecolor="white", ls="", label="INVALID")]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 1.0 + 0.25 / max(1, len(rows))), fontsize=8,
               ncol=len(handles), frameon=False)
    fig.suptitle("MLPerf LoadGen Server runs: p99 latency vs offered load" + (f", {where}" if where else ""),
                 y=1.0 + 0.5 / max(1, len(rows)))
    fig.tight_layout()
    return _save(fig, path, d[["model", "precision", "runtime", "profile", "target_qps", "valid", "ttft_p99_ms",
                               "tpot_p99_ms"]])
