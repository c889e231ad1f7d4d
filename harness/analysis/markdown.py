"""The Markdown report and its PNGs, rendered from one `Analysis` (harness/analysis/report.py)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.analysis import plots


class _Draw:
    """The plots module, or nothing when a report is rendered for its text alone (make check-results)."""
    enabled = True

    def __getattr__(self, name):
        return getattr(plots, name) if self.enabled else (lambda *args, **kwargs: None)


draw = _Draw()


def cell(text: str) -> str:
    """Text from a results file as one Markdown table cell that renders as text: HTML escaped (a CommonMark renderer
    would run it), `|` escaped and line breaks folded (either would add rows or columns)."""
    text = " ".join(str(text).split()).replace("&", "&amp;").replace("<", "&lt;")  # no tag can open
    return text.replace("|", "\\|")


def _url(name: str) -> str:
    """A file name as a link target: percent-encoded, so that no name can end or alter the link."""
    from urllib.parse import quote

    return quote(str(name), safe="")


def _code(text: str) -> str:
    """Text for inside a code span: no backtick can close it."""
    return cell(text).replace("`", "'")


def table(df: pd.DataFrame, cols: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.4g}"
        return "" if v is None else cell(v)

    cols = [c for c in cols if c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for _, r in df.iterrows()]
    return "\n".join(lines)


def _quality_text(a) -> list[str]:
    md = [f"Quality axis: **{a.qlabel}** (`{a.qcol}`)" + ("; error bars and ± are 95% intervals." if a.qerr else
                                                           "; it has no interval."), ""]
    if a.qcol == "one_minus_kld":
        md += ["1 - KLD measures fidelity to each model's own fp32 baseline: across models it compares how much each "
               "scheme changes its model, not which model is more capable.", ""]
    if a.qcol == "capability":
        md += ["The interval is that of the estimate of the full-set accuracy (0 for each baseline, scored on all "
               "questions). `capability_set_ci95` is the full sets' own binomial half-width; comparisons between "
               "models add it. A point is dominated only by a cheaper point that is significantly better; a cheaper "
               "point within the noise is listed as a tie (`ties_with`) and both stay on the frontier.", ""]
    return md


def _serving(a, stem: str, out_dir: Path) -> list[str]:
    md = ["## Throughput under latency targets", "",
          "Load curve: c requests with different prompts of one length arrive together, are prefilled together and "
          "decoded together; each level reports TTFT and per-token latency percentiles. For each SLO profile, the "
          "highest measured decode throughput whose TTFT and TPOT at the profile's percentile meet its bounds.", ""]
    md += [f"- **{cell(s.label())}**: {cell(s.source)}" for s in a.slos] + [""]
    from harness.analysis.slo import curve_expected

    lost = [r["config"] for _, r in a.ok.iterrows() if curve_expected(r) and r["run_id"] not in set(a.curves["run_id"])]
    if lost:
        md += [f"**{len(lost)} runs measured a load curve that is missing from `{_code(a.csv.stem)}.curves.csv`** (not priced "
               f"or judged under any profile until it is restored, e.g. by `python -m harness.record.merge`): "
               + ", ".join(cell(c) for c in lost) + ".", ""]
    if a.curves.empty:
        md += ["This CSV has no load curves (`bench=serving` measures them): each run counts as one level at its "
               "batch size, so only profiles without a TTFT p99 bound can be met.", ""]
    else:
        draw.load_curves(a.curves, a.ok, out_dir / f"{stem}_load_curves.png",
                         f"{_machines(a)}, rows {_dates(a.ok)}")
        md += [f"![load curves]({_url(stem)}_load_curves.png)", ""]
    wide = a.ok[["run_id", "config", "runtime", "bits_per_weight"]].copy()
    for s in a.slos:
        d = a.serving[a.serving["slo"] == s.name].set_index("run_id")
        wide[s.name] = [(unjudged_cell(d.loc[r]) if pd.isna(d.loc[r, "slo_tok_s"]) else
                         ("≥ " if d.loc[r].get("slo_bound") == "lower" else "") + f"{d.loc[r, 'slo_tok_s']:.1f} @ "
                         + ("LoadGen" if pd.isna(d.loc[r, "slo_concurrency"]) else f"{int(d.loc[r, 'slo_concurrency'])}")
                         + ("" if pd.isna(d.loc[r, "slo_n"]) else f" (n={int(d.loc[r, 'slo_n'])})"))
                        if r in d.index else "" for r in wide["run_id"]]
    lg = a.serving[a.serving.get("slo_source", pd.Series(dtype=str)) == "loadgen"] if len(a.serving) else a.serving
    if len(lg):
        t = lg.merge(a.ok[["run_id", "config"]], on="run_id")
        t["ratio_to_static"] = t["slo_tok_s"] / t["slo_static_tok_s"]
        md += ["### MLPerf LoadGen (Server scenario over continuous batching)", "",
               "Where a run measured it (`bench=loadgen`), the throughput under a profile is LoadGen's: the highest "
               "Server QPS its own summary judged VALID (a performance run with reduced query counts, not a compliant "
               "submission), beside the static-batch curve's figure and their ratio. Costs use LoadGen's figure. The "
               "search brackets the boundary between its highest VALID and lowest INVALID target QPS: `bracket` gives "
               "both and the width; a VALID QPS with no INVALID run above it is a lower bound (`≥`: the throughput is "
               "at least that, the price at most that). Two configurations are ordered only where their brackets do "
               "not overlap (`ordered` below).", "",
               table(t.assign(bracket=[_bracket(r) for _, r in t.iterrows()]).sort_values(["slo", "config"]),
                     ["config", "slo", "slo_tok_s", "bracket", "slo_n", "slo_static_tok_s", "ratio_to_static",
                      "slo_note"]), ""]
        md += _orderings(t)
    md += _loadgen_runs(a, stem, out_dir)
    md += ["Decode tokens/s @ concurrency, per SLO profile; n: samples behind the percentile the profile bounds "
           "(TTFT: timed generations of that level; TPOT: decode steps). A p99 of fewer than 100 samples is little "
           "more than the largest sample seen: a level with fewer judges nothing (`not judged`, neither met nor "
           "missed; `slo_note` in the cost tables gives the count and what the static curve alone would say), and such "
           "a run is priced under the profile only once LoadGen (`bench=loadgen`) or a longer curve measures it.", "",
           table(wide.sort_values(["config"]), ["config", "runtime", "bits_per_weight", *[s.name for s in a.slos]]), ""]
    return md


def _bracket(r) -> str:
    valid, bad = r.get("slo_valid_qps"), r.get("slo_invalid_qps")
    if valid is None or pd.isna(valid):
        return ""
    if bad is None or pd.isna(bad):
        return f"≥ {valid:g} q/s (lower bound)"
    return f"[{valid:g}, {bad:g}) q/s, {bad / valid:.2f}x"


def _orderings(t: pd.DataFrame) -> list[str]:
    """Per profile and model, which LoadGen configurations are ordered by their brackets (A's lowest INVALID at or
    below B's highest VALID: B sustains more) and which overlap (not ordered)."""
    lines = []
    t = t.dropna(subset=["slo_valid_qps"])
    t = t[~t["config"].str.contains("(prompts ", regex=False)]  # another workload: not ordered against these
    for (slo, model), g in t.groupby(["slo", t["config"].str.split(" / ").str[0]]):
        g = g.sort_values("slo_valid_qps", ascending=False)
        rows = list(g.itertuples())
        ordered, pairs = [], 0
        for i, hi in enumerate(rows):
            for lo in rows[i + 1:]:
                pairs += 1
                top = lo.slo_invalid_qps
                if top is not None and not pd.isna(top) and top <= hi.slo_valid_qps:
                    ordered.append(f"{cell(hi.config.split(' / ', 1)[1])} > {cell(lo.config.split(' / ', 1)[1])}")
        if pairs:
            lines.append(f"- `{slo}`, {cell(model)}: " + ("; ".join(ordered) if ordered else "none")
                         + f" ({pairs - len(ordered)} of {pairs} pairs overlap: not ordered)")
    return (["Ordered under each profile (`A > B`: A's highest VALID QPS is at or above B's lowest INVALID one, so "
             "the brackets do not overlap; pairs whose brackets overlap, a lower bound among them, are not ordered):",
             ""] + lines + [""]) if lines else []


def unjudged_cell(line: pd.Series) -> str:
    """What a run's cell says under a profile it has no figure for: too few samples, no VALID LoadGen QPS, or none of
    its levels meets the bounds."""
    from harness.analysis.slo import NOT_JUDGED

    if str(line.get("slo_note") or "").startswith(NOT_JUDGED):
        return NOT_JUDGED + ("" if pd.isna(line.get("slo_n")) else f" (n={int(line['slo_n'])})")
    return "no VALID LoadGen QPS" if line.get("slo_source") == "loadgen" else "meets no level"


def _loadgen_runs(a, stem: str, out_dir: Path) -> list[str]:
    """Every LoadGen run behind the rows (read from the kept summaries): the QPS-latency curves and their table."""
    from harness.analysis.loadgen_runs import loadgen_runs

    runs = loadgen_runs(a.csv)
    runs = runs[runs["run_id"].isin(a.ok["run_id"])]
    if runs.empty:
        return []
    md = []
    server = runs[runs["scenario"] == "server"]
    if len(server):
        draw.qps_latency(runs, a.ok, a.slos, out_dir / f"{stem}_qps_latency.png",
                         f"{_machines(a)}, rows {_dates(a.ok[a.ok['run_id'].isin(runs['run_id'])])}")
        md += [f"![QPS-latency curves]({_url(stem)}_qps_latency.png)", ""]
    t = runs.merge(a.ok[["run_id", "config"]], on="run_id")
    t["verdict"] = [("VALID" if v else "INVALID (min duration only: the latency bounds held)" if dur else
                     f"INVALID ({why})" if why else "INVALID")
                    for v, dur, why in zip(t["valid"], t.get("duration_only", False), t.get("why_invalid", ""))]
    md += [f"Every LoadGen run ({len(t)}: {len(server)} Server, {len(t) - len(server)} Offline), from the summaries "
           f"kept in `{_code(a.csv.stem)}.loadgen/`; verdicts are LoadGen's own.", "",
           table(t.sort_values(["config", "scenario", "profile", "target_qps"]),
                 ["config", "scenario", "profile", "target_qps", "verdict", "samples_per_s", "tokens_per_s",
                  "ttft_p99_ms", "tpot_p99_ms"]), ""]
    return md


def _costs(a, stem: str, out_dir: Path) -> list[str]:
    md = ["## Cost per million tokens (measured hardware only)", ""]
    if a.unpriced:
        md += [f"Not priced (no rows measured on them; nothing is projected from another machine): "
               f"{', '.join(a.unpriced)}.", ""]
    if len(a.machines) > 1:
        md += [f"**This CSV holds rows of {len(a.machines)} machines** ({'; '.join(cell(m) for m in a.machines)}): "
               "each machine is priced, ranked and recommended on its own, in a section of its own; no frontier, "
               "price comparison or recommendation crosses them.", ""]
    for p in a.priced:
        hw, slo, d = p.hw, p.slo, p.rows
        head = [f"### {cell(p.where)} (${hw.usd_per_hour:g}/hour, {cell(hw.price_source)}, {cell(hw.price_as_of)}) "
                f"under {cell(slo.label())}", "", f"Rows measured on {cell(p.machine or hw.name)}: {len(d)}, "
                f"{_dates(d)}.", ""]
        if d["usd_per_mtok_blended"].isna().all():
            head += [f"No run is priced under `{slo.name}` (each line's `slo_note` says why: no level meets the "
                     "bounds, too few samples to judge them, or no VALID LoadGen QPS): no plot.", ""]
        elif d[a.qcol].notna().any():
            png = f"{stem}_cost_vs_quality_{p.slug}_{slo.name}.png"
            draw.scatter_with_key(d, "usd_per_mtok_blended", a.qcol,
                                   "US$ per million tokens, blended 3:1 input:output (log)", a.qlabel.split(":")[0],
                                   f"Cost vs quality: {p.where}, SLO {slo.name}, rows {_dates(d)}", out_dir / png,
                                   a.qerr, p.on, logx=True)
            head += [f"Recommendation (cheapest shown non-inferior: quality loss below {a.margin} at 95%): "
                     f"{cell(p.recommendation)}", "",
                     f"![cost vs quality]({_url(png)})", ""]
        else:
            head += ["No row has a quality value (architecture-only weights): prices only, no frontier.", ""]
        md += head + [
               table(d.sort_values("usd_per_mtok_blended", na_position="last"),
                     ["config", "slo_concurrency", "slo_tok_s", "usd_per_mtok_out", "usd_per_mtok_in",
                      "usd_per_mtok_blended", a.qcol, a.qerr, "on_frontier", "ties_with", "off_frontier_loses",
                      "slo_note"]), ""]
    return md


def _machines(a) -> str:
    return ("; ".join(a.machines) if len(a.machines) < 3 else f"{len(a.machines)} machines") or "machine unknown"


def _per_machine(a, d: pd.DataFrame) -> pd.DataFrame:
    """Rows with a `panel` per model, and per machine too when the CSV has several: speeds of two machines never
    share a panel."""
    d = d.copy()
    short = d["machine"].fillna("").str.split(",").str[0]
    d["panel"] = d["model"] + ((" · " + short) if len(a.machines) > 1 else "")
    return d


def _dates(d: pd.DataFrame) -> str:
    """The date range of rows, from their timestamps (`2026-11-28 to 2026-11-30`)."""
    days = sorted({str(t)[:10] for t in d.get("timestamp", pd.Series(dtype=str)).dropna() if str(t)[:4].isdigit()})
    if not days:
        return "dates unknown"
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def _size_x_precision(a, stem: str, out_dir: Path) -> list[str]:
    """Model size against precision (the table a size sweep is for), per machine: decode tok/s at batch 1, the best
    load-curve level, and $/M tokens under the `server` profile where it prices any row (else `offline`, else the
    first priced one), on the first hardware profile priced."""
    ok = a.ok.dropna(subset=["model_params"])
    if ok["model"].nunique() < 2 or not a.priced:
        return []
    first = a.priced[0].hw.name
    md = ["## Model size x precision", ""]
    for machine in dict.fromkeys(p.machine for p in a.priced if p.hw.name == first):
        mine = [p for p in a.priced if p.hw.name == first and p.machine == machine]
        some = [p for p in mine if p.rows["usd_per_mtok_blended"].notna().any()] or mine
        p = next((p for name in ("server", "offline") for p in some if p.slo.name == name), some[0])
        d = ok[ok["machine"] == machine].merge(p.rows[["run_id", "usd_per_mtok_blended", "slo_tok_s"]], on="run_id",
                                               how="left")
        if d["model"].nunique() < 2:
            continue
        d = d.sort_values(["model_params", "bits_per_weight"], ascending=[True, False])
        png = f"{stem}_size_x_precision{'' if len(a.machines) < 2 else '_' + p.slug}.png"
        draw.size_x_precision(d, [("decode_tok_s", "decode tok/s, batch 1 (log)"),
                                  ("max_decode_tok_s", "best decode tok/s, load curve (log)"),
                                  ("usd_per_mtok_blended", f"US$/M tokens, {p.slo.name} (log)")],
                              f"Model size x precision: {p.where}, rows {_dates(d)}", out_dir / png)
        cols = ["model", "model_params", "precision", "runtime", "weights", "decode_tok_s", "max_decode_tok_s",
                "max_decode_concurrency", "weight_mb", "cuda_weights_mb", "cuda_peak_alloc_mb", "roofline_frac",
                "slo_tok_s", "usd_per_mtok_blended"]
        md += ([f"### {cell(p.where)}", ""] if len(a.machines) > 1 else []) + [
            f"Prices: {cell(p.hw.name)} at ${p.hw.usd_per_hour:g}/hour under {cell(p.slo.label())}; `slo_tok_s` is the "
            "throughput that profile allows. One panel per engine (no line joins two engines), one row per precision, "
            "a marker per model size. Architecture-only rows (weights=random) have real speed and memory and no "
            "quality.", "", f"![size x precision]({_url(png)})", "", table(d, cols), ""]
    return md if len(md) > 2 else []


def _capacity(a, stem: str, out_dir: Path) -> list[str]:
    cap = a.capacity
    fits = [c for c in cap.columns if c.startswith("fits_")]
    md = ["## Memory capacity", "",
          f"Concurrent sequences of {a.context} tokens that fit beside the weights: (memory x 0.9 - weight bytes) / "
          "(KV bytes per token x context), from the measured weight bytes and KV bytes per token (llama.cpp's cache "
          "is f16; the torch engine's is in the model's activation dtype). Arithmetic on measured bytes, not a run "
          "on that hardware.", ""]
    if cap["kv_kib_per_token"].isna().all() or not fits:
        return md + ["This CSV does not record KV bytes per token.", ""]
    main = "fits_this-machine" if "fits_this-machine" in fits else fits[0]
    d = a.ok_q.merge(cap[["run_id", *fits]], on="run_id")
    draw.scatter_with_key(d, main, a.qcol, f"sequences of {a.context} tokens that fit ({main[5:]}, log)",
                           a.qlabel.split(":")[0], f"Memory capacity vs quality ({main[5:]}'s memory; "
                           f"arithmetic on measured bytes), rows {_dates(d)}",
                           out_dir / f"{stem}_capacity_vs_quality.png", a.qerr, logx=True)
    return md + [f"![capacity]({_url(stem)}_capacity_vs_quality.png)", "",
                 table(cap.sort_values("config"), ["config", "weight_mb", "kv_kib_per_token", *fits]), ""]


def _roofline_note(ok: pd.DataFrame) -> list[str]:
    """What a roofline fraction above 1 means, where the CSV has one."""
    frac = pd.to_numeric(ok.get("roofline_frac"), errors="coerce")
    over = ok[frac > 1]
    if over.empty:
        return []
    return [f"{len(over)} row(s) decode faster than the memory roofline allows (`roofline_frac` "
            f"{frac[frac > 1].min():.2f}-{frac[frac > 1].max():.2f}: "
            + ", ".join(cell(c) for c in over["config"]) + "): the roofline assumes every weight byte comes from DRAM "
            "once per step at the copy benchmark's bandwidth; a small model whose weights partly stay in the CPU's "
            "caches, or a runtime whose reads outrun a copy, beats it. It is a bound on DRAM traffic, not a measured "
            "limit.", ""]


def write_markdown(a, out_dir: Path, figures: bool = True) -> Path:
    draw.enabled = figures
    try:
        return _write_markdown(a, out_dir)
    finally:
        draw.enabled = True


def _write_markdown(a, out_dir: Path) -> Path:
    stem, df, ok = a.csv.stem, a.df, a.ok
    md = [f"# Report: {cell(a.csv.name)}", "",
          f"{len(df)} rows: " + ", ".join(f"{n} {s}" for s, n in df["status"].value_counts().items()) + ".", "",
          f"Interactive version (hover, filters, sortable table; opens from disk): [{cell(stem)}.html]({_url(stem)}.html), written "
          "beside this report by the analysis (`make report` for the committed results, whose pages are not "
          "committed: several MB each)", ""]
    bad = df[df["status"] != "ok"]
    if len(bad):
        md += ["## Runs without numbers", "", table(bad, ["model", "precision", "status", "error"]), ""]
    path = out_dir / f"{stem}_report.md"
    if ok.empty:
        md.append("No ok rows: nothing to price or plot.")
        path.write_text("\n".join(md) + "\n")
        return path
    md += (_quality_text(a) + _serving(a, stem, out_dir) + _costs(a, stem, out_dir) + _size_x_precision(a, stem, out_dir)
           + _capacity(a, stem, out_dir))
    draw.scatter_with_key(a.ok_q, "weight_mb", a.qcol, "weight memory (MB, as stored)", a.qlabel.split(":")[0],
                           f"Weight memory vs quality (machine-independent), rows {_dates(a.ok_q)}",
                           out_dir / f"{stem}_memory_vs_quality.png", a.qerr, a.mem_on)
    per = _per_machine(a, ok)
    draw.bars_by_bits(per, [("decode_tok_s", "", "decode tok/s (batch 1)"),
                            ("weight_mb", "", "weights (MB, as stored)")],
                      f"Decode speed and weight memory per precision, {_machines(a)}, rows {_dates(ok)}",
                      out_dir / f"{stem}_speed_memory.png")
    draw.bars_by_bits(per, [("ttft_ms_p50", "ttft_ms_p90", "TTFT p50 (ms), whisker to p90"),
                            ("tpot_ms_p50", "tpot_ms_p99", "TPOT p50 (ms), whisker to p99")],
                      f"Latency at batch 1, {_machines(a)}, rows {_dates(ok)}", out_dir / f"{stem}_latency.png")
    md += ["## Memory vs quality frontier", "", f"![memory vs quality]({_url(stem)}_memory_vs_quality.png)", "",
           table(a.ok_q.assign(on_frontier=a.mem_on).sort_values("weight_mb"),
                 ["config", "weight_mb", "bits_per_weight", a.qcol, a.qerr, "on_frontier"]), "",
           "## Speed, memory, accuracy per configuration", "",
           *_roofline_note(ok),
           f"![speed and memory]({_url(stem)}_speed_memory.png)", "", f"![latency]({_url(stem)}_latency.png)", "",
           table(ok.sort_values(["model", "bits_per_weight"], ascending=[True, False]),
                 ["config", "runtime", "weight_mb", "bits_per_weight", "decode_tok_s", "max_decode_tok_s",
                  "ttft_ms_p50", "tpot_ms_p50", "peak_rss_mb", "capability", "capability_ci95", "mmlu_acc",
                  "arc_easy_acc", "piqa_acc", "kld_mean", "top1_agree", "ppl"]), ""]
    path.write_text("\n".join(md) + "\n")
    return path
