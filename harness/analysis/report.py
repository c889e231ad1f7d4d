"""CSV -> Markdown report + PNG plots (and the HTML page, from the same `Analysis`): throughput under each SLO profile
from the load curves, $/M tokens on the hardware the rows were measured on, cost-vs-quality frontiers with ties,
memory capacity per hardware profile, and the runs that did not produce numbers."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.analysis.capacity import capacity_table
from harness.analysis.cost import measured_on, price
from harness.analysis.frontier import losses, significant_mask
from harness.profiles.hardware import Hardware, load_hardware, profiles
from harness.analysis.slo import DEFAULT as DEFAULT_SLOS
from harness.analysis.slo import SLO, fill_sample_counts, load_slo, serving
from harness.record.schema import NAMES, numeric
from harness.record import layout

NUMERIC = [name for name in NAMES if numeric(name)]  # the schema's numeric columns, read as numbers


def load_results(path: str | Path) -> pd.DataFrame:
    from harness.record.store import read_rows

    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such results file")
    df = pd.DataFrame(read_rows(path, strict=False))
    if df.empty:
        raise ValueError(f"{path} has no rows")
    numbers = pd.DataFrame({c: pd.to_numeric(df[c].replace("", None), errors="coerce") if c in df else float("nan")
                            for c in NUMERIC}, index=df.index)  # one block, not a column inserted at a time
    order = list(df.columns) + [c for c in NUMERIC if c not in df]
    df = pd.concat([df.drop(columns=[c for c in NUMERIC if c in df]), numbers], axis=1)[order].copy()
    df = with_loadgen_profiles(path, df)
    # the engine or library that ran each row, as the tables and figures label it; the CSV's own `engine` is kept
    df["runtime"] = [engine_of(r) for _, r in df.iterrows()]
    # a scheme that runs on two engines (bf16 on torch and vllm; llm-compressor's checkpoints on vllm and torch) names
    # its engine where it is not the usual one, so that the two rows differ in every table
    where = df["runtime"].map({"vllm": " @ vllm", "compressed-tensors": " @ torch"}).fillna("")
    df["request_set"] = df["loadgen_note"].map(prompt_lengths)  # '' for the sweep's fixed-length request set
    df["config"] = df["model"] + " / " + df["precision"] + where + df["request_set"]
    df["weight_mb"] = df["weight_bytes"] / 1e6  # MB (10^6 bytes), as the run's summary and the README print it
    df["one_minus_kld"] = 1 - df["kld_mean"]
    df["machine"] = [machine_of(r) for _, r in df.iterrows()]
    return df


def with_loadgen_profiles(path, df: pd.DataFrame) -> pd.DataFrame:
    """The LoadGen side table's per-profile searches (and an older file's columns of them) as numeric columns
    `loadgen_<profile>_<stat>` of the analysis's table, for every profile searched (harness/record/loadgen_profiles.py)."""
    from harness.record.loadgen_profiles import read_profiles, wide
    from harness.record.schema import RETIRED

    profiles = read_profiles(path, df)
    df = df.drop(columns=[c for c in RETIRED if c in df])
    if not len(profiles):
        return df
    return pd.concat([df, wide(profiles, df["run_id"]).set_index(df.index)], axis=1)


def machine_of(row) -> str:
    """The machine that measured a row, as its row names it: the GPU (and how many held the model), or the CPU model
    and the threads the run used. Rows of two machines are never priced, ranked or compared as one."""
    name = str(row.get("device_name") or row.get("cpu") or "").strip()
    if not name or name == "nan":
        return ""
    if str(row.get("device")) == "cuda":
        gpus = pd.to_numeric(row.get("gpu_count"), errors="coerce")
        return name + (f" x{int(gpus)}" if not pd.isna(gpus) and gpus > 1 else "")
    threads = pd.to_numeric(row.get("threads"), errors="coerce")
    return name + ("" if pd.isna(threads) else f", {int(threads)} threads")


def unranked(row, qlabel: str) -> str:
    """Why a priced row is not on the cost-quality frontier: its own reason, not a guess."""
    if row.get("request_set"):
        return f"a different request set{row['request_set']}: priced, not ranked against the fixed-length rows"
    if str(row.get("weights")) == "random":
        return "no quality value (architecture-only weights): priced only"
    note = row.get("quality_note")
    return (note if isinstance(note, str) and note else f"no {qlabel}") + ": priced only"


def prompt_lengths(note) -> str:
    """' (prompts 16-64 tok)' for a LoadGen run on a mixed-length request set (its loadgen_note says so), else '':
    the same configuration with fixed-length prompts is another row."""
    import re

    m = re.search(r"prompts of (\d+)-(\d+) tokens", str(note or ""))
    return f" (prompts {m[1]}-{m[2]} tok)" if m else ""


def engine_of(row) -> str:
    """The engine/library that ran a row: llama.cpp, vLLM, compressed-tensors (llm-compressor's checkpoints on the
    torch engine), or the Python library that applied the scheme."""
    if row.get("engine") == "llamacpp":
        return "llama.cpp"
    if row.get("engine") == "vllm":
        return "vllm"
    if str(row.get("library") or "").startswith("llmcompressor"):
        return "compressed-tensors"
    return str(row.get("library") or "").split(" ")[0] or str(row.get("engine") or "?")


def latest_ok(df: pd.DataFrame) -> pd.DataFrame:
    ok = df[df["status"] == "ok"]
    return ok.drop_duplicates(subset=["config_hash"], keep="last").reset_index(drop=True)


def choose_rank_metric(ok: pd.DataFrame, requested: str = "auto") -> tuple[str, str]:
    """The accuracy column the frontiers rank by (the run's `quality` columns are divergence; this is not them): the
    capability estimate when the rows have one; else MMLU accuracy, unless every model's fp32 accuracy is within
    its 95% interval of chance (0.25): then 1 - KLD. Any accuracy column (e.g. arc_easy_acc) can be asked for."""
    if requested in ("auto", "capability") and ok["capability"].notna().any():
        tasks = next((t for t in ok.get("capability_tasks", []) if isinstance(t, str) and t), "")
        return "capability", (f"capability: {tasks.replace('+', ' + ')} accuracy on the full sets "
                              "(baseline scored on all, each scheme estimated from a paired sample)")
    if requested not in ("auto", "mmlu_acc", "one_minus_kld"):
        if requested not in ok.columns:
            raise KeyError(f"no column {requested!r} to rank by in the results")
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


def recommend(priced: pd.DataFrame, quality: str, margin: float, qerr: str = "",
              reference: pd.DataFrame | None = None) -> str:
    """Per model, the cheapest configuration shown non-inferior to its fp32 baseline: the upper end of the 95%
    interval of its quality loss lies below `margin` (the loss's half-width: the run's, combined with the baseline's
    when the baseline has one; a capability baseline is exact). Says so when a model has no such point."""
    import math

    lines = []
    for model, whole in priced.groupby("model"):
        base = whole[whole["precision"] == "fp32"]  # its quality counts even where it meets no latency bound
        if base.empty and reference is not None:  # quality is the model's, whichever machine measured its fp32 row
            base = reference[(reference["model"] == model) & (reference["precision"] == "fp32")]
        d = whole.dropna(subset=["usd_per_mtok_blended"])
        if base.empty or whole[quality].isna().all():
            continue
        if d.empty:
            from harness.analysis.slo import NOT_JUDGED

            thin = int(whole.get("slo_note", pd.Series("", index=whole.index)).fillna("").str.startswith(NOT_JUDGED).sum())
            lines.append(f"{model}: " + ("no configuration is judged under this profile (each one's percentiles rest "
                                         "on too few samples)" if thin == len(whole) else
                                         "no configuration meets this profile's bounds"
                                         + (f" ({thin} not judged: too few samples)" if thin else "")))
            continue
        b = base.iloc[0]
        b_err = float(b[qerr]) if qerr and not pd.isna(b[qerr]) else 0.0
        err = d[qerr].astype(float).fillna(0.0) if qerr else pd.Series(0.0, index=d.index)
        upper = (b[quality] - d[quality]) + (err**2 + b_err**2).map(math.sqrt)
        good = d[upper < margin].sort_values("usd_per_mtok_blended")
        if good.empty:
            lines.append(f"{model}: no configuration shown within {margin} of fp32 (upper 95% bound of the loss)")
            continue
        g = good.iloc[0]
        lines.append(f"{model}: **{g['precision']}** at ${g['usd_per_mtok_blended']:.4g}/M tokens ({quality} "
                     f"{g[quality]:.4g}; loss {b[quality] - g[quality]:+.4f}, upper 95% bound {upper[g.name]:.4f} < "
                     f"{margin})")
    return "; ".join(lines) if lines else "no configuration with a quality value and a price"


@dataclass
class Priced:
    """One (hardware profile, machine, SLO profile): prices of the rows one machine measured, at the throughput they
    sustain under the SLO, the frontier with ties, and a recommendation. A CSV whose rows come from two machines (a
    `this-machine` CSV grown on two VMs) has a Priced per machine: never one frontier across them."""
    hw: Hardware
    slo: SLO
    rows: pd.DataFrame
    on: pd.Series
    recommendation: str
    machine: str = ""
    several: bool = False  # this hardware profile prices rows of several machines: files are named per machine

    @property
    def key(self) -> str:
        return f"{self.hw.name} · {self.machine} · {self.slo.name}" if self.machine and self.several else \
            f"{self.hw.name} · {self.slo.name}"

    @property
    def slug(self) -> str:
        """A file-name part naming the hardware profile and machine (`this-machine`, `this-machine_amd-epyc-2`)."""
        import re

        m = re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(r\)|processor|threads?", "", self.machine.lower())).strip("-")
        return f"{self.hw.name}_{m}" if self.machine and self.several else self.hw.name

    @property
    def where(self) -> str:
        """The hardware profile and, when it is not the profile's name, the machine: for titles and headings."""
        return f"{self.hw.name} ({self.machine})" if self.machine else self.hw.name


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
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # load-curve levels of the ok runs
    slos: list = field(default_factory=list)
    serving: pd.DataFrame = field(default_factory=pd.DataFrame)  # run x SLO: throughput, concurrency, note
    priced: list[Priced] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)  # hardware profiles asked for with no rows measured on them
    hardware: list = field(default_factory=list)
    capacity: pd.DataFrame = field(default_factory=pd.DataFrame)
    machines: list = field(default_factory=list)  # the machines the ok rows were measured on
    context: int = 4096
    margin: float = 0.02


def quality_error(ok: pd.DataFrame, qcol: str) -> str:
    """The column with qcol's 95% half-width: capability_ci95, or 1.96 x the binomial standard error of an accuracy
    (added as `<qcol>_ci95`); 1 - KLD has none."""
    if qcol == "capability":
        return "capability_ci95"
    if not qcol.endswith("_acc"):
        return ""
    se = pd.to_numeric(ok[qcol.removesuffix("_acc") + "_stderr"].replace("", None), errors="coerce")
    ok[qcol + "_ci95"] = 1.96 * se
    return qcol + "_ci95"


def frontier(d: pd.DataFrame, cost: str, a: "Analysis") -> tuple[pd.Series, pd.Series]:
    """On-frontier mask and ties (as config names) of `d` by `cost` vs the quality axis, significance-aware."""
    err = d[a.qerr] if a.qerr else pd.Series(0.0, index=d.index)
    set_err = d["capability_set_ci95"] if a.qcol == "capability" else None
    on, ties = significant_mask(d[cost], d[a.qcol], err, set_err, d["model"])
    names = d["config"]
    return on, ties.map(lambda t: _tie_text([names[j] for j in t]) if isinstance(t, list) else "")


def _tie_text(names: list[str], shown: int = 3) -> str:
    if len(names) <= shown:
        return ", ".join(names)
    return f"{len(names)} cheaper points, e.g. {', '.join(names[:shown])}"


def analyse(csv: str | Path, hardware: list[str] | None = None, price_override: float | None = None,
            margin: float = 0.02, rank_by: str = "auto", slos: list[str] | None = None, context: int = 4096
            ) -> Analysis:
    from harness.record.curves import read_curves

    csv = Path(csv)
    df = load_results(csv)
    a = Analysis(csv=csv, df=df, ok=latest_ok(df), margin=margin, context=context)
    if a.ok.empty:
        return a
    a.qcol, a.qlabel = choose_rank_metric(a.ok, rank_by)
    a.qerr = quality_error(a.ok, a.qcol)
    a.ok_q = a.ok.dropna(subset=[a.qcol])
    a.mem_on, _ = frontier(a.ok_q, "weight_mb", a)
    curves = read_curves(csv)
    a.curves = fill_sample_counts(curves[curves["run_id"].isin(a.ok["run_id"])], a.ok,
                                  layout.folder(csv, "configs"))
    a.slos = [load_slo(n) for n in (slos or DEFAULT_SLOS)]
    a.serving = serving(a.ok, a.curves, a.slos)
    a.hardware = [load_hardware(n, price_override if n == "this-machine" else None) for n in hardware or profiles()]
    a.capacity = capacity_table(a.ok, a.hardware, context)
    a.machines = sorted(m for m in a.ok["machine"].unique() if m)
    for hw in a.hardware:
        mine = measured_on(a.ok, hw)
        if not mine.any():
            a.unpriced.append(hw.name)
            continue
        machines = sorted(a.ok.loc[mine, "machine"].unique())
        for machine in machines:
            for slo in a.slos:  # every measured row is priced; the frontier needs a quality value
                rows = a.ok.merge(a.serving[a.serving["slo"] == slo.name], on="run_id", how="left")
                priced = price(rows[rows["machine"] == machine], hw)
                # ranked: rows with a quality value, on the sweep's fixed-length request set (a mixed-length set is a
                # lighter or heavier workload, so its cost is not comparable: it is priced beside them, not ranked)
                has_q = priced[a.qcol].notna() & (priced["request_set"] == "")
                priced["on_frontier"] = False
                priced["ties_with"], priced["off_frontier_loses"] = "", ""
                if has_q.any():
                    d = priced[has_q]
                    on, ties = frontier(d, "usd_per_mtok_blended", a)
                    priced.loc[has_q, "on_frontier"], priced.loc[has_q, "ties_with"] = on, ties
                    priced.loc[has_q, "off_frontier_loses"] = losses(d, "usd_per_mtok_blended", a.qcol, on)
                priced.loc[~has_q, "off_frontier_loses"] = [unranked(r, a.qlabel) for _, r in priced[~has_q].iterrows()]
                a.priced.append(Priced(hw, slo, priced, priced["on_frontier"].astype(bool),
                                       recommend(priced[has_q], a.qcol, margin, a.qerr, a.ok), machine,
                                       len(machines) > 1))
    return a


def write_report(csv: str | Path, out_dir: str | Path | None = None, hardware: list[str] | None = None,
                 price_override: float | None = None, margin: float = 0.02, rank_by: str = "auto",
                 slos: list[str] | None = None, context: int = 4096, figures: bool = True) -> Path:
    """The Markdown report with its PNGs, and the self-contained HTML page, from one analysis (`figures=False`: the
    Markdown text alone, for make check-results)."""
    from harness.analysis.html import write_html
    from harness.analysis.markdown import write_markdown

    a = analyse(csv, hardware, price_override, margin, rank_by, slos, context)
    out_dir = Path(out_dir) if out_dir else a.csv.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    if figures:
        write_html(a, out_dir / f"{a.csv.stem}.html")
    return write_markdown(a, out_dir, figures)
