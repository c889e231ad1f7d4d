"""The results figures of results/README.md, generated from the committed serving CSV (never typed by hand):
`python -m harness.regenerate --write` rewrites the block between the markers, and the check mode (in the
test suite) fails when the committed block differs from what the CSV gives."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

START, END = "<!-- results:start -->", "<!-- results:end -->"
KEY_PRECISIONS = ("fp32", "bf16", "int8-dynamic", "torchao-int4wo-g64", "gguf-q8_0", "gguf-q4_0", "ov-int8",
                  "ov-int4", "ort-int8", "ort-int4")


def current(text: str) -> str:
    if START not in text or END not in text:
        return ""
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def replace(text: str, block: str) -> str:
    if START not in text:
        raise ValueError(f"results/README.md has no {START} marker")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def _fmt(v, spec: str = ".3g") -> str:
    return "" if v is None or pd.isna(v) else format(float(v), spec)


def render(csv: Path) -> str:
    from harness.analysis.report import analyse

    a = analyse(csv, hardware=["this-machine"], slos=["server", "interactive", "offline"])
    ok_all = a.ok
    capn = pd.to_numeric(ok_all["capability_n"], errors="coerce")
    ci = pd.to_numeric(ok_all["capability_ci95"], errors="coerce")
    sampled = ci > 0
    curves = a.curves.groupby("run_id")["concurrency"].apply(lambda c: ",".join(str(int(x)) for x in sorted(c)))
    run_s = pd.to_numeric(a.df["run_s"], errors="coerce")
    cap_s = pd.to_numeric(a.df.get("capability_s"), errors="coerce")
    conv = pd.to_numeric(ok_all.get("convert_s"), errors="coerce").dropna()
    lines = [f"The sweep: {len(a.df)} runs, {int(run_s.notna().sum())} timed, {run_s.sum() / 60:.1f} min of run time in "
             f"all (capability {cap_s.sum() / 60:.1f} min of it)"
             + (f"; conversions {conv.min():.0f}-{conv.max():.0f} s each, once (cached)" if len(conv) else "") + ". "
             f"Load-curve levels measured: {' or '.join(sorted(set(curves)))}. Capability: the sampled runs scored "
             f"{int(capn[sampled].min())} to {int(capn[sampled].max())} questions and ended at ±"
             f"{ci[sampled].min():.3f} to ±{ci[sampled].max():.3f} (95%); the baselines "
             f"{int(capn[~sampled].max())} questions each (exact).", ""]
    if len(a.machines) > 1:
        lines += [f"The rows come from {len(a.machines)} machines ({'; '.join(a.machines)}): each has its own table, "
                  "prices, frontier and recommendation below; none is compared with another.", ""]
    for machine in dict.fromkeys(p.machine for p in a.priced):
        lines += _machine_block(a, csv, {p.slo.name: p for p in a.priced if p.machine == machine}, machine)
    return "\n".join(lines).rstrip("\n")


def _machine_block(a, csv: Path, by_slo: dict, machine: str) -> list[str]:
    from harness.analysis.markdown import unjudged_cell
    from harness.analysis.slo import NOT_JUDGED

    server, inter = by_slo["server"].rows.set_index("run_id"), by_slo["interactive"].rows.set_index("run_id")
    # costs under `server` where the sweep judged it (LoadGen, or curves with >= 100 samples a level); otherwise under
    # `offline` (no latency bound), and the block says so
    basis = "server" if server["usd_per_mtok_blended"].notna().any() else "offline"
    priced, offline = by_slo[basis].rows.set_index("run_id"), by_slo["offline"].rows.set_index("run_id")
    hw = by_slo["server"].hw
    mine = a.ok[a.ok["machine"] == machine]
    days = sorted({str(t)[:10] for t in mine["timestamp"].dropna()})
    lines = ([f"#### {machine}", ""] if len(a.machines) > 1 else []) + [
             f"Generated from `{csv.name}` ({len(mine)} ok rows measured on {machine}, "
             f"{days[0] + (' to ' + days[-1] if len(days) > 1 else '') if days else 'dates unknown'}) by "
             f"`python -m harness.regenerate --write`; prices: `{hw.name}` at ${hw.usd_per_hour:g}/hour. "
             "Decode tok/s at batch 1, the "
             "best the load curve reaches under each SLO profile (tok/s @ sequences; `meets no level`; `not judged (n=N)`: "
             "its levels' p99 rest on fewer than 100 samples, so the profile is neither met nor missed), "
             f"blended $/M tokens under `{basis}`"
             + ("" if basis == "server" else " (no run of this sweep is judged under `server`: its costs are at the "
                "highest throughput measured, without a latency bound; `results/cpu_loadgen_report.md` prices under "
                "`server` with MLPerf LoadGen)")
             + ", capability with its 95% half-width:", "",
             f"| model | precision | engine | batch 1 | server | interactive | offline | $/M {basis} | capability |",
             "|---|---|---|---|---|---|---|---|---|"]
    ok = mine[mine["precision"].isin(KEY_PRECISIONS)].sort_values(["model", "bits_per_weight"],
                                                                   ascending=[True, False])
    for _, r in ok.iterrows():
        rid = r["run_id"]
        at = lambda d: unjudged_cell(d) if pd.isna(d["slo_tok_s"]) else (  # noqa: E731
            "≥ " if d.get("slo_bound") == "lower" else "") + f"{d['slo_tok_s']:.1f} @ " + (
            "LoadGen" if pd.isna(d["slo_concurrency"]) else f"{int(d['slo_concurrency'])}")
        cap = "" if pd.isna(r["capability"]) else f"{r['capability']:.3f} ± {_fmt(r['capability_ci95'], '.3f')}"
        lines.append(f"| {r['model']} | {r['precision']} | {r['runtime']} | {_fmt(r['decode_tok_s'], '.1f')} | "
                     f"{at(server.loc[rid])} | {at(inter.loc[rid])} | {at(offline.loc[rid])} | "
                     f"{_fmt(priced.loc[rid, 'usd_per_mtok_blended'], '.3f')} | {cap} |")
    if ok.empty:
        lines.append(f"| (none of the key precisions {', '.join(KEY_PRECISIONS[:3])}, ... ran on this machine) "
                     "| | | | | | | | |")
    front = priced[priced["on_frontier"].astype(bool)].sort_values("usd_per_mtok_blended")
    judged = {n: d[~d["slo_note"].fillna("").str.startswith(NOT_JUDGED)] for n, d in (("server", server),
                                                                                          ("interactive", inter))}
    lines += [""] + [f"Under `{n}`, {d['slo_tok_s'].notna().sum()} of {len(d)} runs meet the bounds, "
                     f"{len(d) - len(judged[n])} are not judged (too few samples)"
                     + (f", {len(judged[n]) - d['slo_tok_s'].notna().sum()} meet no level" if len(judged[n]) else "")
                     + "." for n, d in (("server", server), ("interactive", inter))]
    lines += [f"Frontier under `{basis}`, cheapest first: " + "; ".join(
                  f"{r['config']} ${r['usd_per_mtok_blended']:.3f}/M ({r['capability']:.3f})"
                  for _, r in front.iterrows()) + ".",
              f"Recommendation under `{basis}`: {by_slo[basis].recommendation}", ""]
    return lines

