"""CSV -> Markdown report + PNG plots: frontier tables per hardware profile, what each config off the frontier loses,
a recommendation per profile, and the runs that did not produce numbers."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.analysis import plots
from harness.analysis.cost import price
from harness.analysis.frontier import losses, pareto_mask
from harness.analysis.hardware import Hardware, load_hardware

NUMERIC = ["decode_tok_s", "prefill_tok_s", "ttft_ms_p50", "ttft_ms_p90", "tpot_ms_p50", "tpot_ms_p90", "tpot_ms_p99",
           "weight_bytes",
           "bits_per_weight", "mmlu_acc", "mmlu_stderr", "mmlu_n", "kld_mean", "top1_agree", "ppl",
           "mem_bandwidth_gbs", "prompt_tokens", "peak_rss_mb", "roofline_frac", "mmlu_mcnemar_p"]


def load_results(path: str | Path) -> pd.DataFrame:
    from harness.record.store import read_rows

    df = pd.DataFrame(read_rows(path, strict=False))
    if df.empty:
        raise ValueError(f"{path} has no rows")
    for c in NUMERIC:
        df[c] = pd.to_numeric(df[c].replace("", None), errors="coerce")
    df["config"] = df["model"] + " / " + df["precision"]
    df["engine"] = [engine_of(r) for _, r in df.iterrows()]
    df["weight_mb"] = df["weight_bytes"] / 2**20
    df["one_minus_kld"] = 1 - df["kld_mean"]
    return df


def engine_of(row) -> str:
    """The engine/library that ran a row: llama.cpp, or the Python library that applied the scheme."""
    if row.get("engine") == "llamacpp":
        return "llama.cpp"
    return str(row.get("library") or "").split(" ")[0] or str(row.get("engine") or "?")


def latest_ok(df: pd.DataFrame) -> pd.DataFrame:
    ok = df[df["status"] == "ok"]
    return ok.drop_duplicates(subset=["config_hash"], keep="last").reset_index(drop=True)


def choose_quality(ok: pd.DataFrame, requested: str = "auto") -> tuple[str, str]:
    """MMLU accuracy, unless every model's fp32 accuracy is within its 95% interval of chance (0.25): then 1 - KLD.
    Any accuracy column (e.g. arc_easy_acc) can be asked for by name."""
    if requested not in ("auto", "mmlu_acc", "one_minus_kld"):
        if requested not in ok.columns:
            raise KeyError(f"no quality column {requested!r} in the results")
        ok[requested] = pd.to_numeric(ok[requested].replace("", None), errors="coerce")
        return requested, f"{requested} (from the CSV)"
    if requested == "mmlu_acc" or (requested == "auto" and ok["mmlu_acc"].notna().any() and not _at_chance(ok)):
        return "mmlu_acc", "MMLU accuracy (5-shot)"
    if requested in ("auto", "one_minus_kld") and ok["kld_mean"].notna().any():
        return "one_minus_kld", "1 - mean KL divergence from the model's fp32 baseline (nats)"
    return "mmlu_acc", "MMLU accuracy (5-shot)"


def _at_chance(ok: pd.DataFrame) -> bool:
    base = ok[ok["precision"] == "fp32"].dropna(subset=["mmlu_acc"])
    if base.empty:
        return False
    return bool(((base["mmlu_acc"] - 1.96 * base["mmlu_stderr"]) <= 0.25).all())


def recommend(priced: pd.DataFrame, quality: str, margin: float) -> str:
    lines = []
    for model, d in priced.groupby("model"):
        base = d[d["precision"] == "fp32"]
        if base.empty or d[quality].isna().all():
            continue
        floor = float(base[quality].iloc[0]) - margin
        good = d[d[quality] >= floor].sort_values("usd_per_mtok_blended")
        if not good.empty:
            g = good.iloc[0]
            lines.append(f"{model}: **{g['precision']}** at ${g['usd_per_mtok_blended']:.4g}/M tokens "
                         f"({quality} {g[quality]:.4g}, within {margin} of fp32's {floor + margin:.4g})")
    return "; ".join(lines) if lines else "no configuration with a quality value"


def _table(df: pd.DataFrame, cols: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for _, r in df.iterrows()]
    return "\n".join(lines)


@dataclass
class Priced:
    """One hardware profile's prices of the ok rows, its frontier and its recommendation."""
    hw: Hardware
    rows: pd.DataFrame
    on: pd.Series
    recommendation: str


@dataclass
class Analysis:
    """Everything the Markdown and HTML reports show, computed once."""
    csv: Path
    df: pd.DataFrame  # every row
    ok: pd.DataFrame  # the latest ok row of each configuration
    qcol: str = ""
    qlabel: str = ""
    qerr: str = ""  # column with the 95% half-width of qcol, or "" when the quality axis has none
    ok_q: pd.DataFrame = field(default_factory=pd.DataFrame)  # ok rows with a quality value
    mem_on: pd.Series = field(default_factory=lambda: pd.Series(dtype=bool))
    priced: list[Priced] = field(default_factory=list)
    margin: float = 0.02


def quality_error(ok: pd.DataFrame, qcol: str) -> str:
    """Adds `<qcol>_ci95` (1.96 x the binomial standard error) for an accuracy axis; 1 - KLD has no interval."""
    if not qcol.endswith("_acc"):
        return ""
    se = pd.to_numeric(ok[qcol.removesuffix("_acc") + "_stderr"].replace("", None), errors="coerce")
    ok[qcol + "_ci95"] = 1.96 * se
    return qcol + "_ci95"


def analyse(csv: str | Path, hardware: list[str] | None = None, price_override: float | None = None,
            margin: float = 0.02, quality: str = "auto") -> Analysis:
    csv = Path(csv)
    df = load_results(csv)
    a = Analysis(csv=csv, df=df, ok=latest_ok(df), margin=margin)
    if a.ok.empty:
        return a
    a.qcol, a.qlabel = choose_quality(a.ok, quality)
    a.qerr = quality_error(a.ok, a.qcol)
    a.ok_q = a.ok.dropna(subset=[a.qcol])
    a.mem_on = pareto_mask(a.ok_q["weight_mb"], a.ok_q[a.qcol])
    for name in hardware or ["this-machine", "h100"]:
        hw = load_hardware(name, price_override if name == "this-machine" else None)
        priced = price(a.ok_q, hw)
        on = pareto_mask(priced["usd_per_mtok_blended"], priced[a.qcol])
        priced["on_frontier"] = on
        priced["off_frontier_loses"] = losses(priced, "usd_per_mtok_blended", a.qcol, on)
        a.priced.append(Priced(hw, priced, on, recommend(priced, a.qcol, margin)))
    return a


def write_report(csv: str | Path, out_dir: str | Path | None = None, hardware: list[str] | None = None,
                 price_override: float | None = None, margin: float = 0.02, quality: str = "auto") -> Path:
    """The Markdown report with its PNGs, and the self-contained HTML page, from one analysis."""
    from harness.analysis.html import write_html

    a = analyse(csv, hardware, price_override, margin, quality)
    out_dir = Path(out_dir) if out_dir else a.csv.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    write_html(a, out_dir / f"{a.csv.stem}.html")
    return write_markdown(a, out_dir)


def write_markdown(a: Analysis, out_dir: Path) -> Path:
    stem, df, ok = a.csv.stem, a.df, a.ok
    md = [f"# Report: `{a.csv.name}`", "",
          f"{len(df)} rows: " + ", ".join(f"{n} {s}" for s, n in df["status"].value_counts().items()) + ".", "",
          f"Interactive version (hover, filters, sortable table; opens from disk): [{stem}.html]({stem}.html)", ""]
    bad = df[df["status"] != "ok"]
    if len(bad):
        md += ["## Runs without numbers", "", _table(bad, ["model", "precision", "status", "error"]), ""]
    if ok.empty:
        md.append("No ok rows: nothing to price or plot.")
        path = out_dir / f"{stem}_report.md"
        path.write_text("\n".join(md) + "\n")
        return path
    qcol, qlabel, ok_q, mem_on = a.qcol, a.qlabel, a.ok_q, a.mem_on
    md += [f"Quality axis: **{qlabel}** (`{qcol}`)" + (
        "; MMLU accuracy of the fp32 baselines is within its 95% interval of chance, so it cannot rank schemes."
        if qcol == "one_minus_kld" else "."), ""]
    if qcol == "one_minus_kld":
        md += ["1 - KLD measures fidelity to each model's own fp32 baseline: across models it compares how much each "
               "scheme changes its model, not which model is more capable.", ""]
    plots.memory_vs_quality(ok_q, mem_on, qcol, qlabel, out_dir / f"{stem}_memory_vs_quality.png")
    plots.speed_memory_vs_bits(ok, out_dir / f"{stem}_speed_memory_vs_bits.png")
    plots.accuracy_vs_bits(ok, out_dir / f"{stem}_accuracy_vs_bits.png")
    plots.latency_by_precision(ok, out_dir / f"{stem}_latency_by_precision.png")
    for p in a.priced:
        hw, priced, on = p.hw, p.rows, p.on
        plots.cost_vs_quality(priced, on, qcol, qlabel, hw.name, out_dir / f"{stem}_cost_vs_quality_{hw.name}.png")
        note = ("projected from this machine's throughput by the bandwidth ratio "
                f"{hw.mem_bandwidth_gbs:g} GB/s / measured" if hw.mem_bandwidth_gbs else "measured throughput")
        md += [f"## {hw.name}: ${hw.usd_per_hour:g}/hour ({hw.price_source}, {hw.price_as_of}); {note}", "",
               f"Recommendation (quality within {a.margin} of fp32): {p.recommendation}", "",
               f"![cost vs quality]({stem}_cost_vs_quality_{hw.name}.png)", "",
               _table(priced.sort_values("usd_per_mtok_blended"),
                      ["config", "batch_size", "usd_per_mtok_out", "usd_per_mtok_in", "usd_per_mtok_blended", qcol,
                       "on_frontier", "off_frontier_loses"]), ""]
    md += ["## Memory vs quality frontier", "", f"![memory vs quality]({stem}_memory_vs_quality.png)", "",
           _table(ok_q.assign(on_frontier=mem_on).sort_values("weight_mb"),
                  ["config", "weight_mb", "bits_per_weight", qcol, "on_frontier"]), "",
           "## Speed, memory, accuracy per configuration", "",
           f"![speed and memory]({stem}_speed_memory_vs_bits.png)", "",
           f"![accuracy]({stem}_accuracy_vs_bits.png)", "", f"![latency]({stem}_latency_by_precision.png)", "",
           _table(ok.sort_values(["model", "bits_per_weight"]),
                  ["config", "weight_mb", "bits_per_weight", "decode_tok_s", "ttft_ms_p50", "tpot_ms_p50",
                   "peak_rss_mb", "roofline_frac", "mmlu_acc", "mmlu_stderr", "kld_mean", "top1_agree", "ppl"]), ""]
    path = out_dir / f"{stem}_report.md"
    path.write_text("\n".join(md) + "\n")
    return path
