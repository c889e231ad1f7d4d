"""The analysis as one self-contained HTML page: plotly.js embedded (no CDN, opens from disk with file://), the same
numbers as the Markdown report (it takes the same `Analysis`), hover with each run's key columns, filters by model,
engine/library and precision family, a hardware-profile choice and a sortable table of every run.

Figures are written as plain plotly JSON (plotly's Python package supplies the JavaScript bundle only); the page's
own script is small: filters restyle each chart from its full data, the table sorts by column."""
from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import pandas as pd

# one colour per engine/library, one marker per model, the same in every chart
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
SYMBOLS = ["circle", "diamond", "square", "triangle-up", "x", "star", "cross", "triangle-down"]
FLOATS = ("fp32", "bf16", "fp16")


def family_of(precision: str) -> str:
    return "float" if precision in FLOATS else precision.split("-")[0]


def _clean(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if hasattr(v, "item"):  # numpy scalars
        return _clean(v.item())
    return v


def _fmt(v, digits: int = 4) -> str:
    v = _clean(v)
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _hover(r: pd.Series, a, usd: float | None) -> str:
    q = _fmt(r.get(a.qcol)) + (f" ± {_fmt(r.get(a.qerr), 2)}" if a.qerr and _clean(r.get(a.qerr)) is not None else "")
    lines = [f"<b>{r['model']} / {r['precision']}</b>", f"engine: {r['runtime']} ({r.get('library') or ''})",
             f"bits/weight: {_fmt(r.get('bits_per_weight'))}", f"decode: {_fmt(r.get('decode_tok_s'))} tok/s",
             f"TTFT p50: {_fmt(r.get('ttft_ms_p50'))} ms", f"weights: {_fmt(r.get('weight_mb'))} MB, "
             f"peak RSS {_fmt(r.get('peak_rss_mb'))} MiB", f"{a.qcol}: {q}" + (" (95%)" if a.qerr else ""),
             f"KLD: {_fmt(r.get('kld_mean'))}"]
    if usd is not None:
        lines.append(f"$/M tokens (blended): {_fmt(usd)}")
    lines.append(f"run_id: {r['run_id']}")
    return "<br>".join(lines)


def _keys(ok: pd.DataFrame) -> tuple[dict, dict]:
    engines = {e: PALETTE[i % len(PALETTE)] for i, e in enumerate(sorted(ok["runtime"].unique()))}
    models = {m: SYMBOLS[i % len(SYMBOLS)] for i, m in enumerate(sorted(ok["model"].unique()))}
    return engines, models


def _scatter(d: pd.DataFrame, a, keys, x: str, y: str, err: str = "", usd: str = "") -> list[dict]:
    engines, models = keys
    traces = []
    for (engine, model), g in d.dropna(subset=[x, y]).groupby(["runtime", "model"]):
        t = {"type": "scatter", "mode": "markers", "name": f"{engine} · {model}", "x": list(g[x]), "y": list(g[y]),
             "customdata": list(g["run_id"]), "hovertemplate": "%{text}<extra></extra>",
             "text": [_hover(r, a, r.get(usd) if usd else None) for _, r in g.iterrows()],
             "marker": {"color": engines[engine], "symbol": models[model], "size": 10,
                        "line": {"width": 1, "color": "#333"}}}
        if err:
            t["error_y"] = {"type": "data", "array": list(g[err]), "visible": True, "thickness": 1}
        traces.append(t)
    return traces


def _frontier(d: pd.DataFrame, on: pd.Series, x: str, y: str) -> dict:
    f = d[on].sort_values(x)
    return {"type": "scatter", "mode": "lines", "name": "Pareto frontier (all runs)", "x": list(f[x]),
            "y": list(f[y]), "customdata": list(f["run_id"]), "hoverinfo": "skip",
            "line": {"shape": "hv", "color": "#000", "width": 1.5}}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def _curve_lines(a, keys) -> list[dict]:
    engines, models = keys
    d = a.curves.merge(a.ok[["run_id", "model", "precision", "runtime"]], on="run_id")
    traces = []
    for (model, prec, engine, run_id), g in d.groupby(["model", "precision", "runtime", "run_id"]):
        g = g.sort_values("concurrency")
        traces.append({"type": "scatter", "mode": "lines+markers", "name": f"{model} / {prec}",
                       "x": list(g["tpot_ms_p50"]), "y": list(g["decode_tok_s"]), "customdata": [run_id] * len(g),
                       "text": [f"<b>{model} / {prec}</b><br>engine: {engine}<br>concurrency {int(c)}: "
                                f"{_fmt(t)} tok/s, TPOT p50 {_fmt(p)} ms, TTFT p99 {_fmt(f)} ms<br>run_id: {run_id}"
                                for c, t, p, f in zip(g["concurrency"], g["decode_tok_s"], g["tpot_ms_p50"],
                                                      g["ttft_ms_p99"])],
                       "hovertemplate": "%{text}<extra></extra>",
                       "marker": {"color": engines[engine], "symbol": models[model], "size": 7},
                       "line": {"color": engines[engine], "width": 1}})
    return traces


def _bars(d: pd.DataFrame, a, keys, y: str, hi: str) -> list[dict]:
    engines, _ = keys
    traces = []
    for engine, g in d.dropna(subset=[y]).groupby("runtime"):
        traces.append({"type": "bar", "name": engine, "x": list(g["config"]), "y": list(g[y]),
                       "customdata": list(g["run_id"]), "marker": {"color": engines[engine]},
                       "error_y": {"type": "data", "symmetric": False, "array": list(g[hi] - g[y]),
                                   "arrayminus": [0] * len(g), "visible": True, "thickness": 1},
                       "hovertemplate": "%{text}<extra></extra>", "textposition": "none",
                       "text": [_hover(r, a, None) for _, r in g.iterrows()]})
    return traces


def _layout(title: str, x: str, y: str, **extra) -> dict:
    return {"title": {"text": title}, "xaxis": {"title": {"text": x}, **extra.pop("xaxis", {})},
            "yaxis": {"title": {"text": y}, **extra.pop("yaxis", {})}, "hovermode": "closest", "legend": {"font": {"size": 10}},
            "margin": {"l": 70, "r": 20, "t": 50, "b": 60}, "height": 480, **extra}


TEXT_COLUMNS = ("model", "precision", "runtime", "config", "library", "error")


def _escaped_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Plotly draws a subset of HTML in every label, legend entry and hover text: names from a results file are
    escaped so that they show as text, never as markup."""
    df = df.copy()
    for c in TEXT_COLUMNS:
        if c in df:
            df[c] = df[c].map(lambda v: html.escape(v) if isinstance(v, str) else v)
    return df


def _escaped(a):
    from dataclasses import replace

    return replace(a, ok=_escaped_frame(a.ok), ok_q=_escaped_frame(a.ok_q), qlabel=html.escape(a.qlabel),
                   priced=[replace(p, rows=_escaped_frame(p.rows)) for p in a.priced])


def figures(a) -> dict[str, dict]:
    """Every chart of the page: id -> plotly figure (JSON-able dict); text from the results file shows as text."""
    a = _escaped(a)
    ok = a.ok
    keys = _keys(ok)
    figs: dict[str, dict] = {}
    for p in a.priced:
        d = p.rows
        if d["usd_per_mtok_blended"].isna().all():  # nothing priced under this profile: no empty chart
            continue
        figs[f"cost-{_slug(p.key)}"] = {
            "data": [*_scatter(d, a, keys, "usd_per_mtok_blended", a.qcol, a.qerr, "usd_per_mtok_blended"),
                     _frontier(d, p.on, "usd_per_mtok_blended", a.qcol)],
            "layout": _layout(f"Cost vs quality: {html.escape(p.hw.name)} (measured), SLO {html.escape(p.slo.label())}",
                              "US$ per million tokens, blended 3:1 input:output (log)", a.qlabel.split(":")[0],
                              xaxis={"type": "log"})}
    if not a.curves.empty:
        figs["load-curves"] = {"data": _curve_lines(a, keys),
                               "layout": _layout("Load curves: decode throughput vs per-token latency p50 (hover: "
                                                 "concurrency)", "TPOT p50 (ms, log)", "decode tokens/s (log)",
                                                 xaxis={"type": "log"}, yaxis={"type": "log"}, height=560)}
    fits = next((c for c in ("fits_this-machine", *a.capacity.columns) if str(c).startswith("fits_")
                 and c in a.capacity.columns), None)
    if fits and a.capacity[fits].notna().any():
        cap = a.ok_q.merge(a.capacity[["run_id", fits]], on="run_id")
        figs["capacity-quality"] = {"data": _scatter(cap, a, keys, fits, a.qcol, a.qerr),
                                    "layout": _layout(f"Sequences of {a.context} tokens that fit ({fits[5:]}) vs "
                                                      "quality", "sequences (log)", a.qlabel.split(":")[0],
                                                      xaxis={"type": "log"})}
    q = a.ok_q
    figs["memory-quality"] = {"data": [*_scatter(q, a, keys, "weight_mb", a.qcol, a.qerr), _frontier(q, a.mem_on,
                                       "weight_mb", a.qcol)],
                              "layout": _layout("Weight memory vs quality", "weight memory (MB, as stored)",
                                                a.qlabel)}
    figs["speed-bits"] = {"data": _scatter(ok, a, keys, "bits_per_weight", "decode_tok_s"),
                          "layout": _layout("Decode speed vs stored bits per weight", "stored bits per weight",
                                            "decode tokens/s (batch as measured)")}
    figs["memory-bits"] = {"data": _scatter(ok, a, keys, "bits_per_weight", "weight_mb"),
                           "layout": _layout("Weight memory vs stored bits per weight", "stored bits per weight",
                                             "weight memory (MB)")}
    order = list(ok.sort_values(["model", "bits_per_weight"])["config"])
    cat = {"categoryorder": "array", "categoryarray": order, "tickangle": -60, "tickfont": {"size": 9}}
    figs["latency-ttft"] = {"data": _bars(ok, a, keys, "ttft_ms_p50", "ttft_ms_p90"),
                            "layout": _layout("Time to first token: p50, bar to p90", "", "TTFT (ms)",
                                              xaxis=cat, height=560, barmode="group",
                                              margin={"l": 70, "r": 20, "t": 50, "b": 190})}
    figs["latency-tpot"] = {"data": _bars(ok, a, keys, "tpot_ms_p50", "tpot_ms_p99"),
                            "layout": _layout("Per-token decode latency: p50, bar to p99", "", "TPOT (ms)",
                                              xaxis=cat, height=560, barmode="group",
                                              margin={"l": 70, "r": 20, "t": 50, "b": 190})}
    return figs


TABLE = [("model", "model"), ("precision", "precision"), ("runtime", "engine"), ("status", "status"),
         ("bits_per_weight", "bits/w"), ("weight_mb", "weights MB"), ("decode_tok_s", "decode tok/s"),
         ("ttft_ms_p50", "TTFT p50 ms"), ("tpot_ms_p50", "TPOT p50 ms"), ("tpot_ms_p99", "TPOT p99 ms"),
         ("max_decode_tok_s", "max decode tok/s"), ("peak_rss_mb", "peak RSS MiB"), ("capability", "capability"),
         ("capability_ci95", "± 95%"), ("mmlu_acc", "MMLU"), ("arc_easy_acc", "ARC-E"), ("kld_mean", "KLD"),
         ("top1_agree", "top-1 agree"), ("run_id", "run_id")]


def _runs_table(a) -> str:
    df = a.df.copy()
    for c in ("arc_easy_acc", "tpot_ms_p99", "max_decode_tok_s", "capability", "capability_ci95"):
        df[c] = pd.to_numeric(df[c].replace("", None), errors="coerce") if c in df else float("nan")
    prices = {p.key: dict(zip(p.rows["run_id"], p.rows["usd_per_mtok_blended"])) for p in a.priced}
    cols = TABLE + [(f"usd:{name}", f"$/M {name}") for name in prices]
    head = "".join(f'<th data-col="{i}" tabindex="0">{html.escape(label)}</th>' for i, (_, label) in enumerate(cols))
    body = []
    for _, r in df.iterrows():
        cells = []
        for key, _ in cols:
            v = prices[key[4:]].get(r["run_id"]) if key.startswith("usd:") else r.get(key)
            v = _clean(v)
            sort = "" if v in (None, "") else (v if isinstance(v, (int, float)) else str(v))
            cells.append(f'<td data-v="{html.escape(str(sort))}">{html.escape(_fmt(v))}</td>')
        body.append(f'<tr data-run="{html.escape(r["run_id"])}">{"".join(cells)}</tr>')
    return f'<table id="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _checkboxes(key: str, label: str, values: list[str]) -> str:
    boxes = "".join(f'<label><input type="checkbox" data-filter="{key}" value="{html.escape(v)}" checked> '
                    f'{html.escape(v)}</label>' for v in values)
    return f'<fieldset><legend>{label}</legend>{boxes}</fieldset>'


def _environment(a) -> str:
    df = a.df
    facts = []
    for col, label in (("device_name", "device"), ("cpu", "CPU"), ("torch_version", "torch"),
                       ("transformers_version", "transformers"), ("cuda_version", "CUDA"),
                       ("driver_version", "driver")):
        vals = sorted({str(v) for v in df.get(col, pd.Series(dtype=str)) if str(v) not in ("", "nan")})
        if vals:
            facts.append(f"<li>{label}: {html.escape(', '.join(vals))}</li>")
    ts = sorted(t for t in df["timestamp"] if t)
    if ts:
        facts.append(f"<li>measured {html.escape(ts[0])} to {html.escape(ts[-1])}</li>")
    for model, d in df.groupby("model"):
        base = d[d["precision"] == "fp32"]["source_weights"]
        label = next((b for b in base if b), next((b for b in d["source_weights"] if b), ""))
        facts.append(f"<li>full-precision weights of {html.escape(model)}: {html.escape(label)}</li>")
    return "<ul>" + "".join(facts) + "</ul>"


def _md_inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def page(a) -> str:
    from plotly.offline import get_plotlyjs

    ok = a.ok
    figs = figures(a)
    runs = {r["run_id"]: {"model": r["model"], "engine": r["runtime"], "family": family_of(r["precision"])}
            for _, r in a.df.iterrows()}
    bad = a.df[a.df["status"] != "ok"]
    hw_names = [p.key for p in a.priced]
    sections = []
    for p in a.priced:
        sections.append(f'<section class="hw" data-hw="{html.escape(p.key)}"><h3>{html.escape(p.where)}: '
                        f'${p.hw.usd_per_hour:g}/hour ({html.escape(p.hw.price_source)}, '
                        f'{html.escape(p.hw.price_as_of)}); SLO {html.escape(p.slo.label())}</h3>'
                        f'<p class="rec">Recommendation (cheapest shown non-inferior: quality loss below {a.margin} at 95%): '
                        f'{_md_inline(p.recommendation)}</p>'
                        + (f'<div class="chart" id="cost-{_slug(p.key)}"></div>' if f"cost-{_slug(p.key)}" in figs
                           else "<p>No run is priced under this profile: no chart.</p>") + '</section>')
    unpriced = (f"<p>Not priced (no rows measured on them; nothing is projected from another machine): "
                f"{html.escape(', '.join(a.unpriced))}.</p>" if a.unpriced else "")
    bad_rows = "".join(f"<tr><td>{html.escape(r['model'])}</td><td>{html.escape(r['precision'])}</td>"
                       f"<td>{html.escape(r['status'])}</td><td>{html.escape(r['error'] or '')}</td></tr>"
                       for _, r in bad.iterrows())
    # no name can end or alter the script it sits in: every <, > and & of the data is a JSON escape
    data = json.dumps(_jsonable({"figs": figs, "runs": runs}), allow_nan=False).replace("<", "\\u003c").replace(
        ">", "\\u003e").replace("&", "\\u0026")
    body = f"""
<h1>Report: {html.escape(a.csv.name)}</h1>
<p>{len(a.df)} rows: {html.escape(', '.join(f'{n} {s}' for s, n in a.df['status'].value_counts().items()))}.
Quality axis: <b>{html.escape(a.qlabel)}</b> (<code>{html.escape(a.qcol)}</code>){'; error bars are 95% intervals'
if a.qerr else '; it has no interval'}. Charts show the latest ok row of each configuration.</p>
<div id="controls">{_checkboxes('model', 'model', sorted(ok['model'].unique()))}
{_checkboxes('engine', 'engine / library', sorted(ok['runtime'].unique()))}
{_checkboxes('family', 'precision family', sorted({family_of(p) for p in ok['precision']}))}
<fieldset><legend>hardware · SLO profile</legend><select id="hw">{''.join(f'<option>{html.escape(h)}</option>'
                                                                          for h in hw_names)}
</select></fieldset></div>
<h2>Cost vs quality (measured hardware only)</h2>{unpriced}{''.join(sections)}
<h2>Memory vs quality</h2><div class="chart" id="memory-quality"></div>
<h2>Speed and memory vs stored bits</h2><div class="row"><div class="chart half" id="speed-bits"></div>
<div class="chart half" id="memory-bits"></div></div>
<h2>Latency percentiles per precision</h2><div class="chart" id="latency-ttft"></div>
<div class="chart" id="latency-tpot"></div>
<h2>Load curves</h2>{'<div class="chart" id="load-curves"></div>' if 'load-curves' in figs else
 '<p>No load curves in this CSV (bench=serving measures them).</p>'}
<h2>Memory capacity vs quality</h2>{'<div class="chart" id="capacity-quality"></div>' if 'capacity-quality' in figs
 else '<p>This CSV does not record KV bytes per token.</p>'}
<h2>All runs</h2><p>Click a column header to sort.</p>{_runs_table(a)}
<h2>Runs without numbers</h2>{'<table><tr><th>model</th><th>precision</th><th>status</th><th>reason</th></tr>'
                              + bad_rows + '</table>' if len(bad) else '<p>none</p>'}
<h2>Environment</h2>{_environment(a)}
"""
    import re

    parts = {"/*PLOTLY*/": get_plotlyjs(), "/*DATA*/": data, "<!--BODY-->": body,
             "<!--TITLE-->": html.escape(a.csv.stem)}
    # one pass: a placeholder's text inside the data or a name is never replaced again
    return re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], TEMPLATE)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return _clean(obj)


def write_html(a, path: Path) -> Path:
    if a.ok.empty:
        path.write_text(f"<!doctype html><meta charset=utf-8><title>{html.escape(a.csv.stem)}</title>"
                        f"<p>{html.escape(a.csv.name)}: no ok rows, nothing to plot.</p>")
        return path
    path.write_text(page(a), encoding="utf-8")
    return path


TEMPLATE = (Path(__file__).with_name("report_template.html")).read_text(encoding="utf-8")
