"""Checks: each turns a claim into measured values and verdicts. Values come from runs of the harness itself (through
`python -m harness`, resuming what is already recorded) or from shipped data; a check never invents a value."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from harness.core.errors import UnknownName
from harness.core.lifetime import ask_parent_death_signal
from harness.core.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "results" / "reproduce"


@dataclass
class Verdict:
    claim: str
    item: str
    published: str
    measured: str
    verdict: str  # agrees | disagrees | not comparable
    reason: str = ""


def _harness_sweep(csv: Path, overrides: list[str]) -> list[dict]:
    """Run (or resume) a sweep through the normal harness and return its ok rows."""
    from harness.analysis.report import latest_ok, load_results

    # Hydra's bookkeeping in a sweep folder of its own under the cache (conf/config.yaml), not beside the results:
    # one shared folder made each later claim's progress line count the earlier claims' runs ("-0.0 min left")
    # the CSV named relative to the repository when it lies in it: rows name their logs as given, no machine path
    shown = csv.resolve().relative_to(ROOT) if csv.resolve().is_relative_to(ROOT) else csv
    cmd = [sys.executable, "-m", "harness", "-m", *overrides, f"results.path={shown}"]
    # the sweep ends as a stopped sweep does (its worker killed, its one line) when this process dies, however it
    # dies; a sweep stopped by a signal stops the claims too (its rows are kept: the same command resumes)
    rc = subprocess.run(cmd, cwd=ROOT, check=False,
                        preexec_fn=lambda: ask_parent_death_signal(signal.SIGTERM)).returncode
    if rc in (130, 143) or rc < 0:
        raise SystemExit(rc if rc > 0 else 128 - rc)
    return latest_ok(load_results(csv)).to_dict("records")


def memory_proportional(claim, models, precisions, csv=None, extra=(), run: bool = True) -> list[Verdict]:
    """Two things are checked and each is said: the decoder's linear layers (what schemes quantise) within the
    tolerance above bits/32 of fp32, and the whole model (what memory consumption means) within the same band. A
    verdict agrees only when both hold; when only the linear layers do, it says so and why (embeddings kept)."""
    csv = Path(csv or OUT / "memory.csv")
    if run:
        rows = _harness_sweep(csv, [f"model={','.join(models)}", f"precision={','.join(precisions)}", "eval=none",
                                    "quality=none", "bench=quick", *extra])
    else:
        rows = _ok_rows(csv)
    tol = float(claim.agreement["tolerance"])
    out = []
    for model in models:
        base = next((r for r in rows if r["model"] == model and r["precision"] == "fp32"), None)
        if base is None:
            out.append(Verdict(claim.id, model, "", "", "not comparable", "no fp32 row"))
            continue
        for r in rows:
            if r["model"] != model or r["precision"] == "fp32" or r["precision"] not in precisions:
                continue
            ideal = float(r["scheme_bits"]) / 32
            lin = float(r["linear_bits_per_weight"]) / 32
            whole = float(r["weight_bytes"]) / float(base["weight_bytes"])
            within = lambda x: ideal * (1 - 1e-9) <= x <= ideal * (1 + tol)  # noqa: E731
            held = [f"linear layers {lin:.4f} {'within' if within(lin) else 'outside'} "
                    f"[{ideal:.4f}, {ideal * (1 + tol):.4f}]",
                    f"whole model {whole:.4f} {'within' if within(whole) else 'outside'} it"]
            if within(lin) and within(whole):
                verdict, why = "agrees", "both hold"
            elif within(lin) and float(r["quantized_fraction"]) > 0.999:
                verdict, why = "partly", ("the linear layers shrink as claimed; the whole model does not: every tensor "
                                          "is quantised, but the embeddings and output layer at more bits than the "
                                          f"scheme's nominal ones ({float(r['bits_per_weight']):.2f} bits/weight over "
                                          f"the whole model)")
            elif within(lin):
                verdict, why = "partly", ("the linear layers shrink as claimed; the whole model does not: embeddings "
                                          f"and lm_head stay in full precision ({1 - float(r['quantized_fraction']):.0%}"
                                          " of the parameters)")
            else:
                verdict, why = "disagrees", "the quantised layers themselves are outside the band"
            out.append(Verdict(claim.id, f"{model} {r['precision']}", f"{ideal:.4f} of fp32", "; ".join(held),
                               verdict, why))
    return out


def _ok_rows(csv: Path) -> list[dict]:
    from harness.analysis.report import latest_ok, load_results

    return latest_ok(load_results(csv)).to_dict("records")


def quality_kept(claim, csv) -> list[Verdict]:
    """Non-inferiority, not absence of evidence: a scheme keeps quality when the upper end of the 95% interval of its
    capability loss against its model's fp32 baseline (exact: scored on the full sets) lies below the margin, and its
    mean KLD from fp32 is below max_kld. Each row says which of the two held."""
    path = ROOT / csv if not Path(csv).is_absolute() else Path(csv)
    if not path.exists():
        return [Verdict(claim.id, "all", "no significant loss", "", "not comparable",
                        f"{csv} missing: run `make sweep-serving` first")]
    rows = _ok_rows(path)
    margin, max_kld = float(claim.agreement["margin"]), float(claim.agreement["max_kld"])
    published = f"loss < {margin} (95%), KLD < {max_kld}"
    out = []
    for r in rows:
        base = next((b for b in rows if b["model"] == r["model"] and b["precision"] == "fp32"), None)
        if r["precision"] == "fp32" or base is None:
            continue
        cap, ci, kld = (float(r.get(k) or "nan") for k in ("capability", "capability_ci95", "kld_mean"))
        item = f"{r['model']} {r['precision']}" + (" (vllm)" if r.get("engine") == "vllm" else "")
        if math.isnan(cap) or math.isnan(ci) or math.isnan(kld):
            missing = [n for n, v in (("capability", cap), ("its interval", ci), ("KLD", kld)) if math.isnan(v)]
            why = " and ".join(missing) + " missing in the row" + (
                f" ({r['quality_note']})" if r.get("quality_note") else "")
            out.append(Verdict(claim.id, item, published, "", "not comparable", why))
            continue
        loss = float(base["capability"]) - cap
        cap_ok, kld_ok = loss + ci < margin, kld < max_kld
        measured = f"capability loss {loss:+.3f} ± {ci:.3f} (upper {loss + ci:.3f}); KLD {kld:.4f}"
        held = [f"capability {'non-inferior' if cap_ok else 'not shown non-inferior'}",
                f"KLD {'below' if kld_ok else 'at or above'} {max_kld}"]
        out.append(Verdict(claim.id, item, published, measured,
                           "agrees" if cap_ok and kld_ok else "partly" if cap_ok or kld_ok else "disagrees",
                           "; ".join(held)))
    return out


def ai_index_cost(claim, threshold: float, data_dir=None, plot: bool = True) -> list[Verdict]:
    import pandas as pd

    data_dir = Path(data_dir or Path(__file__).resolve().parent / "data" / "ai-index-cost")
    pts = pd.read_csv(data_dir / "points.csv")[["date", "model", "blended_usd_per_mtok", "mmlu"]]
    others = pd.read_csv(data_dir / "mmlu_ge_64.8_other_models.csv")[["date", "model", "blended_usd_per_mtok", "mmlu"]]
    allm = pd.concat([pts, others]).assign(date=lambda d: pd.to_datetime(d["date"])).sort_values("date")
    stair, best = [], math.inf
    for _, r in allm.iterrows():  # Epoch's rule: a new minimum price among models at or above the threshold
        if r["mmlu"] >= threshold and r["blended_usd_per_mtok"] < best:
            best = r["blended_usd_per_mtok"]
            stair.append(r)
    s = pd.DataFrame(stair).drop_duplicates(subset=["date"], keep="last")
    fold = s["blended_usd_per_mtok"].iloc[0] / s["blended_usd_per_mtok"].iloc[-1]
    x = s["date"].map(lambda d: d.toordinal()).astype(float)
    y = s["blended_usd_per_mtok"].map(math.log10)
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    rate = 10 ** (-slope * 365)
    pub = claim.published
    if plot:
        _plot_staircase(allm, s, threshold, fold)
    return [
        Verdict(claim.id, "start and end price", f"${pub['start_usd']} -> ${pub['end_usd']}",
                f"${s['blended_usd_per_mtok'].iloc[0]:g} ({s['model'].iloc[0]}, {s['date'].iloc[0].date()}) -> "
                f"${s['blended_usd_per_mtok'].iloc[-1]:g} ({s['model'].iloc[-1]}, {s['date'].iloc[-1].date()})",
                "agrees" if (s["blended_usd_per_mtok"].iloc[0], s["blended_usd_per_mtok"].iloc[-1]) ==
                (pub["start_usd"], pub["end_usd"]) else "disagrees"),
        Verdict(claim.id, "fold reduction", f"more than {pub['fold']}x", f"{fold:.1f}x over {len(s)} points",
                "agrees" if fold > pub["fold"] else "disagrees"),
        Verdict(claim.id, "Epoch fitted rate", f"{pub['epoch_rate_per_year']}x per year", f"{rate:.2f}x per year",
                "agrees" if abs(rate / pub["epoch_rate_per_year"] - 1) <= claim.agreement["tolerance"]
                else "disagrees", "OLS of log10(price) on date"),
    ]


def _plot_staircase(allm, stair, threshold, fold):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 5))
    q = allm[allm["mmlu"] >= threshold]
    ax.scatter(q["date"], q["blended_usd_per_mtok"], s=18, color="grey", label=f"models with MMLU >= {threshold}")
    ax.step(stair["date"], stair["blended_usd_per_mtok"], where="post", color="tab:red", lw=2,
            label="cheapest so far")
    for _, r in stair.iterrows():
        ax.annotate(r["model"], (r["date"], r["blended_usd_per_mtok"]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.set_yscale("log")
    ax.set_ylabel("US$ per million tokens (3:1 blended, log scale)")
    ax.set_title(f"Cheapest LLM at GPT-3.5 level (MMLU >= {threshold}): {fold:.0f}x cheaper (data: Epoch AI)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "ai_index_cost.png", dpi=120)
    plt.close(fig)


def gguf_kld_order(claim, csv) -> list[Verdict]:
    """The published order (llama.cpp's table, by type name) read as what it means: more bits per weight, lower
    KLD. On these files a type's measured bits need not follow its name (the shapes make K-quants fall back), so the
    expected order is the types sorted by the bits per weight measured in each row, and the verdict names the types
    whose name order and measured bits disagree."""
    from harness.analysis.report import latest_ok, load_results

    path = ROOT / csv
    if not path.exists():
        return [Verdict(claim.id, "order", "", "", "not comparable", f"{csv} missing: run `make sweep` first")]
    ok = latest_ok(load_results(path))
    order = claim.published["order"]
    out = []
    for model, d in ok[ok["precision"].isin(order)].groupby("model"):
        kld = dict(zip(d["precision"], d["kld_mean"].astype(float)))
        bits = dict(zip(d["precision"], d["bits_per_weight"].astype(float)))
        named = [p for p in order if p in kld and not math.isnan(kld[p])]
        have = sorted(named, key=lambda p: -bits[p])  # expected: more measured bits first (lower KLD)
        measured = sorted(have, key=lambda p: kld[p])
        pairs = [(a, b) for i, a in enumerate(have) for b in have[i + 1:] if bits[a] > bits[b]]
        discordant = [(a, b) for a, b in pairs if kld[a] > kld[b]]
        renamed = [(a[5:], b[5:]) for i, a in enumerate(named) for b in named[i + 1:] if bits[a] < bits[b]]
        tau = 1 - 2 * len(discordant) / len(pairs) if pairs else float("nan")
        conf = ROOT / "conf" / "model" / f"{model}.yaml"
        source = (yaml.safe_load(conf.read_text()) or {}).get("source_quant") if conf.exists() else None
        own = f"gguf-{str(source).lower()}" if source else ""
        same = (f"; {own[5:]} is the source's own type ({source}): rewriting it to that type is near lossless "
                "against that source") if own in have else ""
        out.append(Verdict(claim.id, model,
                           " < ".join(f"{p.removeprefix('gguf-')} ({bits[p]:.2f} b/w)" for p in have),
                           " < ".join(f"{p.removeprefix('gguf-')} ({kld[p]:.3g})" for p in measured),
                           "agrees" if not discordant else "disagrees",
                           f"expected order: measured bits per weight, descending; Kendall tau {tau:.2f}; discordant: "
                           f"{[(a[5:], b[5:]) for a, b in discordant]}; name order vs measured bits: "
                           f"{'same' if not renamed else f'reversed for {renamed}'}{same}; files requantised from a "
                           "4-bit source, baseline = that source in fp32"))
    return out or [Verdict(claim.id, "order", "", "no GGUF rows with KLD", "not comparable")]


def lm_eval_mmlu(claim, model, per_subject, shots, subjects, engine_model=None, tokenizer=None) -> list[Verdict]:
    """Run lm-eval's own evaluator (simple_evaluate, HFLM on the loaded model, the stock mmlu template pointed at the
    shipped files) and the harness on the same questions; compare accuracy and every prediction."""
    import json
    import tempfile

    import lm_eval
    import lm_eval.tasks
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from omegaconf import OmegaConf

    from harness.engines.torch_engine import TorchEngine
    from harness.evaluate.accuracy import evaluate_task
    from harness.evaluate.tasks import load_task

    if engine_model is None:
        from harness.models import load_model

        loaded = load_model(OmegaConf.load(ROOT / "conf" / "model" / f"{model}.yaml"))
        engine_model, tokenizer = loaded.model, loaded.tokenizer
    task = load_task("mmlu")
    template = Path(lm_eval.tasks.__file__).parent / "mmlu" / "default" / "_default_template_yaml"
    tmp = Path(tempfile.mkdtemp())
    names = []
    for subject in subjects:
        for split in ("test", "dev"):
            with open(tmp / f"{subject}_{split}.jsonl", "w") as f:
                for doc in task.docs(split, subject):
                    f.write(json.dumps(doc) + "\n")
        name = f"local_mmlu_{subject}"
        names.append(name)
        (tmp / f"{name}.yaml").write_text(
            f"include: {template}\ntask: {name}\ndataset_path: json\ndataset_name: null\n"
            f"dataset_kwargs:\n  data_files:\n    test: {tmp}/{subject}_test.jsonl\n    dev: {tmp}/{subject}_dev.jsonl\n"
            f"description: \"The following are multiple choice questions (with answers) about "
            f"{subject.replace('_', ' ')}.\\n\\n\"\n")
    lm = HFLM(pretrained=engine_model, tokenizer=tokenizer, batch_size=8)
    res = lm_eval.simple_evaluate(model=lm, tasks=names, num_fewshot=shots, limit=per_subject, log_samples=True,
                                  task_manager=TaskManager(include_path=str(tmp), include_defaults=False))
    theirs = {}
    for name, subject in zip(names, subjects):
        for s in res["samples"][name]:
            lls = [float(r[0]) for r in s["filtered_resps"]]
            theirs[f"{subject}/{s['doc_id']}"] = max(range(len(lls)), key=lambda i: (lls[i], -i))
    metrics, preds = evaluate_task(TorchEngine(engine_model, pad_id=tokenizer.eos_token_id or 0), tokenizer, "mmlu",
                                   shots, per_subject, 8, progress=False)
    mine = {p["id"]: p for p in preds if p["id"].split("/")[0] in subjects}
    same = sum(theirs[i] == mine[i]["pred"] for i in theirs)
    acc_theirs = sum(theirs[i] == mine[i]["gold"] for i in theirs) / len(theirs)
    acc_mine = sum(p["pred"] == p["gold"] for p in mine.values()) / len(mine)
    return [Verdict(claim.id, f"{model}, {len(theirs)} questions, {shots}-shot",
                    f"lm-eval acc {acc_theirs:.4f}", f"harness acc {acc_mine:.4f}; {same}/{len(theirs)} predictions equal",
                    "agrees" if same == len(theirs) and acc_theirs == acc_mine else "disagrees")]


PAPER_CSV = OUT / "paper_claims.csv"


def set_out(folder) -> Path:
    """Write the claims' rows and verdicts under `folder` instead of results/reproduce (a plumbing run)."""
    global OUT, PAPER_CSV
    OUT = Path(folder)
    PAPER_CSV = OUT / "paper_claims.csv"
    return OUT
QUALITY_RUN = ["eval=none", "capability=none", "quality=default", "bench=quick"]  # ppl + KLD on 2,048 tokens


def _measured(models: list[str], precisions: list[str], engine: str, run: bool, csv: Path | None = None,
              extra: tuple = ()) -> dict:
    """(model, precision) -> its latest ok row of the claims' CSV, measured first (resuming) when `run`."""
    csv = csv or PAPER_CSV
    if run:
        _harness_sweep(csv, [f"model={','.join(models)}", f"precision={','.join(precisions)}",
                             f"engine={engine}", *QUALITY_RUN, *extra])
    if not csv.exists():
        return {}
    from harness.record.store import read_rows

    # the CSV's own engine column (the analysis labels by library in `runtime`); the latest ok row of each pair
    rows = [r for r in read_rows(csv, strict=False) if r["status"] == "ok" and (engine == "auto" or r["engine"] == engine)]
    return {(r["model"], r["precision"]): r for r in rows}


def _compare(a: dict, b: dict, allowance: float) -> tuple[str, str]:
    """Which of two rows has the lower perplexity, beyond sampling error (1.96 x the standard errors of the two
    perplexity deltas against the reference, combined as if independent: conservative for paired runs) plus
    `allowance` x the reference perplexity (the 4-bit source both were dequantised from)."""
    pa, pb = float(a["ppl"]), float(b["ppl"])
    se = math.hypot(float(a.get("ppl_delta_stderr") or 0), float(b.get("ppl_delta_stderr") or 0))
    ref = pa - float(a["ppl_delta"])
    margin = 1.96 * se + allowance * ref
    side = "lower" if pa < pb - margin else "higher" if pa > pb + margin else "within"
    kld = lambda r: "" if r.get("kld_mean") in (None, "") or pd_nan(r.get("kld_mean")) else \
        f", KLD {float(r['kld_mean']):.4f}"  # noqa: E731
    return side, (f"{a['precision']} ppl {pa:.2f}{kld(a)} vs {b['precision']} {pb:.2f}{kld(b)} (reference "
                  f"{ref:.2f}; distinguishable beyond ±{margin:.2f})")


def pd_nan(v) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def quality_order(claim, models, order, engine="torch", run=True, allowance=0.01, extra=(), near=()) -> list[Verdict]:
    """A published ordering of schemes by perplexity (best first), checked pair by pair on each model, each pair
    ordered only beyond sampling error plus the allowance. `near`: adjacent pairs the claim says are close (SmoothQuant
    "stays near" bf16): such a pair holds when it is not distinguishable within that margin, and is contradicted when
    the second is worse beyond it. `agrees`: every adjacent pair holds; `disagrees`: one pair reversed (or a near pair
    apart) beyond the margin; `not distinguishable` otherwise."""
    near = {tuple(p) for p in near}
    rows = _measured(models, order, engine, run, extra=tuple(extra))
    out = []
    for model in models:
        have = [p for p in order if (model, p) in rows]
        missing = [p for p in order if p not in have]
        if missing:
            out.append(Verdict(claim.id, model, " < ".join(order), f"no ok row for {', '.join(missing)}",
                               "not comparable", "see the claims' CSV (results/reproduce/paper_claims.csv) for why"))
            continue
        sides, said = [], []
        for a, b in zip(order, order[1:]):
            side, text = _compare(rows[(model, a)], rows[(model, b)], allowance)
            sides.append(side)
            said.append(text)
        pairs = list(zip(order, order[1:]))
        holds = [s == "within" if pair in near else s == "lower" for pair, s in zip(pairs, sides)]
        against = [s == "lower" if pair in near else s == "higher" for pair, s in zip(pairs, sides)]
        verdict = "agrees" if all(holds) else "disagrees" if any(against) else "not distinguishable"
        held = [f"{a} {'<' if s == 'lower' else '>' if s == 'higher' else '~'} {b}" for (a, b), s in zip(pairs, sides)]
        published = "".join(f"{a} {'~' if (a, b) in near else '<'} " for a, b in pairs) + order[-1]
        out.append(Verdict(claim.id, model, published, "; ".join(said), verdict,
                           f"{', '.join(held)} (perplexity on {int(float(rows[(model, order[0])]['quality_tokens']))} "
                           f"WikiText-2 tokens; allowance {allowance:.1%} of the reference for the 4-bit source)"))
    return out


def near_lossless(claim, models, precisions, engine="torch", run=True, max_kld=0.01, max_ppl=0.01,
                  extra=()) -> list[Verdict]:
    """A scheme is near-lossless when its mean KLD from the reference is below `max_kld` and its perplexity rises
    by less than `max_ppl` of the reference's (beyond its standard error, it does not count against it)."""
    rows = _measured(models, precisions, engine, run, extra=tuple(extra))
    out = []
    for model in models:
        for p in precisions:
            r = rows.get((model, p))
            if r is None:
                out.append(Verdict(claim.id, f"{model} {p}", "near-lossless", "no ok row", "not comparable"))
                continue
            ref = float(r["ppl"]) - float(r["ppl_delta"])
            rise = float(r["ppl_delta"]) - 1.96 * float(r.get("ppl_delta_stderr") or 0)
            kld = float(r["kld_mean"]) if not pd_nan(r.get("kld_mean")) else float("nan")
            ok_ppl, ok_kld = rise < max_ppl * ref, (not math.isnan(kld)) and kld < max_kld
            out.append(Verdict(claim.id, f"{model} {p}", f"KLD < {max_kld}, ppl rise < {max_ppl:.0%}",
                               f"KLD {kld:.4f}; ppl {float(r['ppl']):.2f} vs {ref:.2f} "
                               f"({float(r['ppl_delta']):+.3f} ± {float(r.get('ppl_delta_stderr') or 0):.3f})",
                               "agrees" if ok_ppl and ok_kld else "partly" if ok_ppl or ok_kld else "disagrees",
                               f"KLD {'below' if ok_kld else 'not below'} {max_kld}; perplexity rise "
                               f"{'within' if ok_ppl else 'beyond'} {max_ppl:.0%}"))
    return out


def calibration_ablation(claim, models, scheme, baseline, sizes, engine="torch", run=True) -> list[Verdict]:
    """A calibrated scheme against round-to-nearest on its own grid, over calibration sets of several sizes and
    lengths (`calibration.samples` x `calibration.seq_len` of OpenBookQA train): where a published comparison is
    contradicted, whether more or longer calibration data changes the verdict."""
    csv = OUT / "calibration_ablation.csv"
    out = []
    for samples, seq_len in sizes:
        if run:
            _harness_sweep(csv, [f"model={','.join(models)}", f"precision={scheme}", f"engine={engine}",
                                 *QUALITY_RUN, f"calibration.samples={samples}", f"calibration.seq_len={seq_len}"])
    base = _measured(models, [baseline], engine, run)
    rows = _ok_rows(csv) if csv.exists() else []
    for model in models:
        b = base.get((model, baseline))
        for samples, seq_len in sizes:
            label = f"openbookqa-train: {samples} windows of {seq_len} tokens"
            r = next((x for x in rows if x["model"] == model and str(x.get("calibration", "")).startswith(label)),
                     None)
            if r is None or b is None:
                out.append(Verdict(claim.id, f"{model} {scheme} ({samples} x {seq_len})", f"{scheme} < {baseline}",
                                   "no ok row", "not comparable"))
                continue
            side, text = _compare(r, b, 0.01)
            out.append(Verdict(claim.id, f"{model} {scheme} ({samples} x {seq_len} tokens)", f"{scheme} < {baseline}",
                               text, {"lower": "agrees", "higher": "disagrees"}.get(side, "not distinguishable"),
                               f"{samples * seq_len} calibration tokens"))
    return out


def published_ppl(claim, model_id, schemes, published, overrides=(), n_stderr=2.0, allowance=0.02,
                  run=True) -> list[Verdict]:
    """Published perplexities of a hub checkpoint, measured under the paper's protocol (`overrides`: e.g. whole
    2048-token windows over the full test set) and compared value by value: within `n_stderr` standard errors plus
    `allowance` of the published value."""
    csv = OUT / "published_ppl.csv"
    if run:
        _harness_sweep(csv, ["model=hf", f"model.id={model_id}", f"precision={','.join(schemes)}", "eval=none",
                             "capability=none", "bench=quick", *overrides])
    rows = {r["precision"]: r for r in _ok_rows(csv)} if csv.exists() else {}
    out = []
    for scheme, value in zip(schemes, published):
        r = rows.get(scheme)
        if r is None:
            out.append(Verdict(claim.id, f"{model_id} {scheme}", f"ppl {value}", "no ok row", "not comparable"))
            continue
        ppl, se = float(r["ppl"]), float(r.get("ppl_delta_stderr") or 0)
        margin = n_stderr * se + allowance * float(value)
        out.append(Verdict(claim.id, f"{model_id} {scheme}", f"ppl {value}", f"ppl {ppl:.2f} (± {margin:.2f})",
                           "agrees" if abs(ppl - float(value)) <= margin else "disagrees",
                           f"{int(float(r['quality_tokens']))} tokens scored"))
    return out


def model_card_accuracy(claim, models, tasks, published=None, allowance=0.03, run=True) -> list[Verdict]:
    """Published per-task accuracies of the models the shipped weights come from, against the harness's fp32
    reference on the full shipped sets (0-shot, lm-eval's prompts), acc and acc_norm both recorded. A figure agrees
    within 1.96 x the binomial standard error + `allowance` (the shipped weights are a 4-bit GGUF of the published
    model, dequantised, and the source's prompts may differ). Where the source does not say which metric it reports,
    both are compared and the verdict says which held."""
    published = claim.published if published is None else published
    csv = OUT / "model_card.csv"
    if run:  # a run per model and task, each its own row: an interrupted claim resumes where it stopped
        _harness_sweep(csv, [f"model={','.join(models)}", "precision=fp32", "engine=torch",
                             "eval.tasks=" + ",".join(f"[{t}]" for t in tasks), "eval.shots=0", "eval.limit=null",
                             "eval.per_subject=null", "quality=none", "capability=none", "bench=quick",
                             # every shipped question: Gemma 3's 262k vocabulary took over the default hour on a busy
                             # 2-core machine (and was cut as a timeout row)
                             "runner.timeout_s=14400"])
    rows = {(r["model"], t): r for r in (_ok_rows(csv) if csv.exists() else []) for t in tasks
            if not pd_nan(r.get(f"{t}_acc"))}
    out = []
    for model in models:
        for task, fig in (published.get(model) or {}).items():
            item = f"{model} {task} ({fig['shots']}-shot)"
            pub = f"{100 * fig['value']:.1f}% ({fig['metric']}; {fig['source']})"
            r = rows.get((model, task))
            if r is None:
                out.append(Verdict(claim.id, item, pub, "no ok row", "not comparable", f"run it: {csv.name}"))
                continue
            n, se = int(float(r[f"{task}_n"])), float(r[f"{task}_stderr"])
            margin = 1.96 * se + allowance
            metrics = ("acc", "acc_norm") if fig["metric"] == "unstated" else (fig["metric"],)
            held = [m for m in metrics if abs(float(r[f"{task}_{m}"]) - fig["value"]) <= margin]
            measured = ", ".join(f"{m} {100 * float(r[f'{task}_{m}']):.1f}%" for m in ("acc", "acc_norm"))
            why = (f"{n} questions ({r.get(f'{task}_subset')}); within ±{100 * margin:.1f} points (1.96 x stderr "
                   f"{100 * se:.1f} + {100 * allowance:.0f} for the 4-bit source): "
                   + (", ".join(held) + " held" if held else "none held")
                   + ("" if len(held) == len(metrics) else
                      f"; {', '.join(m for m in metrics if m not in held)} did not"))
            out.append(Verdict(claim.id, item, pub, f"fp32 reference: {measured}",
                               "agrees" if held else "disagrees", why))
    return out


def _within(h: float, ref: float, se: float, n_stderr: float, allowance: float, floor: float) -> tuple[bool, float]:
    margin = n_stderr * se + allowance * abs(ref) + floor
    return abs(h - ref) <= margin, margin


def llama_perplexity_peer(claim, models, types, chunks, topk, context=512, n_stderr=3.0, allowance=0.05,
                          quantile_allowance=0.10, floor=2.5e-4, run=True) -> list[Verdict]:
    """The harness's KLD statistics (llama.cpp engine, fp32 reference, `chunks` windows of `context` tokens) against
    llama-perplexity --kl-divergence on the same GGUF files and text. A statistic agrees within `n_stderr` x
    llama-perplexity's own standard error + `allowance` x its value + `floor` (one step of its uint16 base log-probs:
    16 nats / 65535); median and 99th percentile, which it gives no error for, within `quantile_allowance` x the
    value + `floor`. The two token sets differ by one position per window (llama-perplexity scores 255 of 512, the
    harness 256) and the harness's KL is a top-k lower bound; both are what the allowances are for. Types are listed
    by their measured bits per weight. llama-perplexity's figures are kept in llama_perplexity.peer.csv."""
    import csv as csvmod

    from harness.reproduce.llama_perplexity import FIELDS, STATISTICS, STDERR, find_binary

    peer_csv = OUT / "llama_perplexity.peer.csv"
    binary = find_binary() if run else None
    if run and binary is None:
        return [Verdict(claim.id, "all", "llama-perplexity's statistics", "not measured", "not comparable",
                        "llama-perplexity is not built here: `make llama-perplexity` (or LLAMA_PERPLEXITY=path)")]
    per_model = {m: int(chunks[m] if isinstance(chunks, dict) else chunks) for m in models}
    rows = {}
    for model in models:  # one sweep per model: its own number of windows
        overrides = (f"quality.context={context}", f"quality.max_tokens={per_model[model] * context}",
                     f"quality.topk={topk}")
        measured = _measured([model], types, "llamacpp", run, csv=OUT / "llama_perplexity.csv", extra=overrides)
        rows.update({k: r for k, r in measured.items() if k[0] == model and
                     int(float(r["quality_tokens"])) == per_model[model] * (context - context // 2)})
    peer = {}
    if peer_csv.exists():
        with open(peer_csv, newline="") as f:
            peer = {(r["model"], r["precision"]): r for r in csvmod.DictReader(f)}
    if run:
        import io

        from harness.core.cache_files import atomic_write_text

        peer.update(_llama_perplexity_figures(binary, models, types, context, per_model))
        OUT.mkdir(parents=True, exist_ok=True)
        text = io.StringIO()
        w = csvmod.DictWriter(text, fieldnames=["model", "precision", "binary", "chunks", "context", "positions",
                                                *FIELDS], extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(peer[k] for k in sorted(peer))
        atomic_write_text(peer_csv, text.getvalue(), "llama-perplexity's figures")
    summary = lambda get: (f"KLD {get('kld_mean'):.4g} (median {get('kld_median'):.4g}, p99 {get('kld_p99'):.4g}), "  # noqa: E731
                           f"RMS Δp {100 * get('rms_dp'):.2f}%, same top {100 * get('top1_agree'):.2f}%, "
                           f"ppl {get('ppl'):.3f} (reference {get('ppl_base'):.3f})")
    out = []
    for model in models:
        have = sorted((t for t in types if (model, t) in rows), key=lambda t: -float(rows[(model, t)]["bits_per_weight"]))
        for t in have + [t for t in types if t not in have]:
            h, p = rows.get((model, t)), peer.get((model, t))
            if p is not None and int(float(p.get("chunks") or 0)) != per_model[model]:
                p = None  # figures of another number of windows
            if h is None or p is None:
                out.append(Verdict(claim.id, f"{model} {t}", "llama-perplexity" if p else "not measured",
                                   "harness row" if h else "no ok harness row", "not comparable",
                                   "no llama-perplexity figures" if h else "no ok harness row"))
                continue
            # the harness's reference perplexity is its row's ppl - ppl_delta
            hget = lambda k, h=h: float(h["ppl"]) - float(h["ppl_delta"]) if k == "ppl_base" else float(h[k])  # noqa: E731
            pget = lambda k, p=p: float(p[k])  # noqa: E731
            failed = []
            for key in STATISTICS:
                se = float(p.get(STDERR.get(key, "")) or 0)
                ok, margin = _within(hget(key), pget(key), se, n_stderr, allowance if se else quantile_allowance, floor)
                if not ok:
                    failed.append(f"{key} {hget(key):.4g} vs {pget(key):.4g} (±{margin:.2g})")
            out.append(Verdict(claim.id, f"{model} {t} ({float(h['bits_per_weight']):.2f} bits/weight)",
                               "llama-perplexity: " + summary(pget), "harness: " + summary(hget),
                               "agrees" if not failed else "disagrees",
                               (f"outside tolerance: {'; '.join(failed)}. " if failed else "every statistic within "
                                "tolerance. ") + f"{int(float(h['quality_tokens']))} harness positions vs "
                               f"{p.get('positions') or '?'} of llama-perplexity ({p.get('chunks')} chunks of "
                               f"{p.get('context')} tokens)"))
    return out


def _llama_perplexity_figures(binary, models, types, context, chunks: dict) -> dict:
    """llama-perplexity's statistics for each (model, type) on the files the harness's rows measured."""
    from omegaconf import OmegaConf

    from harness.models.packaged_gguf import gguf_path
    from harness.precision.gguf import F32_FTYPE, requantise, requantise_to
    from harness.precision.registry import get_scheme
    from harness.reproduce.llama_perplexity import LlamaPerplexity

    threads, figures = os.cpu_count() or 1, {}
    for model in models:
        source = gguf_path(OmegaConf.load(ROOT / "conf" / "model" / f"{model}.yaml"))
        base = requantise_to(source, "f32", F32_FTYPE, threads)
        with LlamaPerplexity(binary, base, context, chunks[model], threads) as tool:
            built = f"llama-perplexity {tool.version()}"
            for t in types:
                stats = tool.kl_divergence(requantise(source, get_scheme(t), threads))
                figures[(model, t)] = {"model": model, "precision": t, "binary": built, **stats}
                print(f"[llama-perplexity] {model} {t}: KLD {stats['kld_mean']:.5f}", flush=True)
    return figures


def not_runnable(claim, needs) -> list[Verdict]:
    return [Verdict(claim.id, "all", str(claim.published), "not measured", "not comparable", f"not runnable here: {needs}")]


CHECKS = Registry("check function", UnknownName)
for _check in (memory_proportional, quality_kept, ai_index_cost, gguf_kld_order, lm_eval_mmlu, quality_order,
               near_lossless, calibration_ablation, published_ppl, llama_perplexity_peer, model_card_accuracy,
               not_runnable):
    CHECKS.register(_check.__name__, _check)


def run_claim(claim, **overrides) -> list[Verdict]:
    params = {**claim.check.get("params", {}), **overrides}
    return CHECKS.get(claim.check["function"])(claim, **params)


def verdict_table(verdicts: list[Verdict], title: str | None = None) -> str:
    lines = [title or f"Verdicts measured on {date.today().isoformat()}", "",
             "| claim | item | published | measured | verdict | reason |", "|---|---|---|---|---|---|"]
    for v in verdicts:
        lines.append(f"| {v.claim} | {v.item} | {v.published} | {v.measured} | **{v.verdict}** | {v.reason} |")
    return "\n".join(lines)
