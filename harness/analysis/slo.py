"""Latency targets (conf/slo/*.yaml: a TTFT and a TPOT bound at a stated percentile) and, for each run, the highest
measured throughput of its load curve that meets them.

A level meets a profile when its TTFT and its per-token latency at the profile's percentile are both within the
bounds (a missing percentile column never meets a bound); the chosen level is the one with the highest decode
throughput among those that meet, or none ("meets no level")."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.measure.levels import LEVEL_KEYS
from harness.profiles.slo import CONF, DEFAULT, SLO, load_slo, slo_names  # noqa: F401 - re-exported


def meets(level: pd.Series, slo: SLO) -> bool:
    if slo.max_concurrency is not None and level["concurrency"] > slo.max_concurrency:
        return False
    for bound, col in ((slo.ttft_ms, f"ttft_ms_p{slo.percentile}"), (slo.tpot_ms, f"tpot_ms_p{slo.percentile}")):
        if bound is None:
            continue
        value = level.get(col)
        if value is None or pd.isna(value) or float(value) > bound:
            return False
    return True


def best_level(levels: pd.DataFrame, slo: SLO) -> pd.Series | None:
    """The level with the highest decode throughput that meets the profile, or None."""
    good = levels[[meets(lv, slo) for _, lv in levels.iterrows()]] if len(levels) else levels
    if good.empty:
        return None
    return good.loc[good["decode_tok_s"].astype(float).idxmax()]


def row_as_level(row: pd.Series) -> dict:
    """A run without a load curve (older CSVs): its own speed columns as one level at its batch size."""
    level = {"run_id": row["run_id"], "concurrency": int(float(row.get("batch_size") or 1)),
             **{k: pd.to_numeric(row.get(k), errors="coerce") for k in LEVEL_KEYS}}
    repeats = pd.to_numeric(row.get("repeats"), errors="coerce")
    if pd.isna(level["ttft_n"]) and not pd.isna(repeats):  # rows written before the counts were recorded
        level["ttft_n"] = repeats
        level["tpot_n"] = repeats * (pd.to_numeric(row.get("new_tokens"), errors="coerce") - 1)
    return level


NOT_JUDGED = "not judged"  # the note's first words where a profile's percentile rests on too few samples


def min_samples(slo: SLO) -> int:
    """Samples a level needs before its percentile may judge the profile: enough that at least one lies above the
    percentile (100 for a p99, 10 for a p90); 0 for a profile without latency bounds."""
    import math

    if slo.ttft_ms is None and slo.tpot_ms is None:
        return 0
    return 1 if slo.percentile >= 100 else math.ceil(100 / (100 - slo.percentile))


def level_samples(level, slo: SLO) -> float:
    """The fewest samples behind the percentiles the profile bounds (TTFT: timed generations; TPOT: decode steps);
    NaN when a count was not recorded."""
    cols = [c for c, b in (("ttft_n", slo.ttft_ms), ("tpot_n", slo.tpot_ms)) if b is not None]
    counts = [pd.to_numeric(level.get(c), errors="coerce") for c in cols]
    return float("nan") if not counts or any(pd.isna(c) for c in counts) else float(min(counts))


def fill_sample_counts(curves: pd.DataFrame, ok: pd.DataFrame, configs_dir: Path) -> pd.DataFrame:
    """Levels written before the side table recorded its sample counts get them from the run's stored config: the
    batch-1 level is the speed measurement (bench.repeats generations), the others bench.curve_repeats; TPOT has
    new_tokens - 1 steps per generation."""
    import yaml as _yaml  # noqa: PLC0415

    curves = curves.copy()
    missing = curves["ttft_n"].isna() if "ttft_n" in curves else pd.Series(True, index=curves.index)
    if not missing.any():
        return curves
    hashes = dict(zip(ok["run_id"], ok["config_hash"]))
    bench: dict = {}
    for rid, chash in hashes.items():
        path = configs_dir / f"{chash}.yaml"
        if path.exists():
            bench[rid] = (_yaml.safe_load(path.read_text()) or {}).get("bench", {})
    for idx in curves.index[missing]:
        b = bench.get(curves.at[idx, "run_id"])
        if not b:
            continue
        c = int(curves.at[idx, "concurrency"])
        gens = int(b.get("repeats", 1)) if c == int(b.get("batch_size", 1)) == 1 else \
            int(b.get("curve_repeats") or b.get("repeats", 1))
        curves.at[idx, "ttft_n"], curves.at[idx, "tpot_n"] = gens, gens * (int(b.get("new_tokens", 2)) - 1)
    return curves


def curve_expected(row: pd.Series) -> bool:
    """The run measured a load curve (its row lists more than one level): its levels belong in the side table."""
    return "," in str(row.get("concurrency_levels") or "")


def serving(ok: pd.DataFrame, curves: pd.DataFrame, slos: list[SLO]) -> pd.DataFrame:
    """One line per (run, SLO profile): the throughput it sustains under the profile, the concurrency that needs,
    and the prefill throughput at that level; NaN and a note where it meets no level. A run whose load curve is
    missing from the side table is never judged as if it had measured batch 1 only: it gets no figure and says why."""
    lines = []
    by_run = {rid: g for rid, g in curves.groupby("run_id")} if len(curves) else {}
    for _, r in ok.iterrows():
        levels = by_run.get(r["run_id"])
        if levels is None and curve_expected(r):
            lines += [{"run_id": r["run_id"], "slo": slo.name, "slo_n": None, "slo_tok_s": None,
                       "slo_prefill_tok_s": None, "slo_concurrency": None,
                       "slo_note": f"load curve ({r['concurrency_levels']}) missing from the side table: not judged"}
                      for slo in slos]
            continue
        if levels is None:
            levels = pd.DataFrame([row_as_level(r)])
        for slo in slos:
            need = min_samples(slo)
            counts = pd.Series([level_samples(lv_, slo) for _, lv_ in levels.iterrows()], index=levels.index)
            judged = levels[counts >= need] if need else levels  # a level with too few samples judges nothing
            lv = best_level(levels, slo)  # what the static curve alone would say: shown beside, never priced
            judged_lv = best_level(judged, slo)
            n = None if lv is None else level_samples(lv, slo)
            n = None if n is None or pd.isna(n) else int(n)
            static = None if lv is None else float(lv["decode_tok_s"])
            lg_tok = pd.to_numeric(r.get(f"loadgen_{slo.name}_tok_s"), errors="coerce")
            if not pd.isna(lg_tok):  # measured the MLPerf way: LoadGen's highest VALID Server QPS takes precedence
                lg_n = pd.to_numeric(r.get(f"loadgen_{slo.name}_n", r.get(f"loadgen_{slo.name}_queries")),
                                     errors="coerce")
                qps = pd.to_numeric(r.get(f"loadgen_{slo.name}_qps"), errors="coerce")
                if not pd.isna(qps) and need and (pd.isna(lg_n) or lg_n < need):  # a VALID judged on too few queries
                    lines.append({"run_id": r["run_id"], "slo": slo.name, "slo_source": "loadgen",
                                  "slo_n": None if pd.isna(lg_n) else int(lg_n), "slo_tok_s": None,
                                  "slo_static_tok_s": static, "slo_prefill_tok_s": None, "slo_concurrency": None,
                                  "slo_note": f"{NOT_JUDGED}: LoadGen Server VALID at {float(qps):g} q/s from "
                                              + ("an unrecorded number of" if pd.isna(lg_n) else str(int(lg_n)))
                                              + f" queries (< {need})"})
                    continue
                bad = pd.to_numeric(r.get(f"loadgen_{slo.name}_invalid_qps"), errors="coerce")
                bound = "" if pd.isna(qps) else "lower" if pd.isna(bad) else "bracket"
                found = ("LoadGen Offline" if pd.isna(qps) else
                         f"LoadGen Server VALID at {float(qps):g} q/s with no INVALID run above it: a lower bound "
                         f"(>= {float(qps):g} q/s; the throughput is at least this, its price at most this)"
                         if bound == "lower" else
                         f"LoadGen Server VALID at {float(qps):g} q/s, INVALID at {float(bad):g} q/s (the boundary "
                         f"lies in [{float(qps):g}, {float(bad):g}), a bracket {float(bad) / float(qps):.2f}x wide)")
                lines.append({"run_id": r["run_id"], "slo": slo.name, "slo_source": "loadgen",
                              "slo_n": None if pd.isna(lg_n) else int(lg_n), "slo_tok_s": float(lg_tok),
                              "slo_static_tok_s": static,
                              "slo_prefill_tok_s": None if lv is None else float(lv["prefill_tok_s"]),
                              "slo_concurrency": None, "slo_bound": bound,
                              "slo_valid_qps": None if pd.isna(qps) else float(qps),
                              "slo_invalid_qps": None if pd.isna(bad) else float(bad),
                              "slo_note": found + "; input priced at the load curve's prefill rate"})
                continue
            lg_runs = pd.to_numeric(r.get(f"loadgen_{slo.name}_runs"), errors="coerce")
            if not pd.isna(lg_runs):  # LoadGen took this profile and found no VALID QPS (or could not search it)
                bad = pd.to_numeric(r.get(f"loadgen_{slo.name}_invalid_qps"), errors="coerce")
                found = (f"no VALID QPS in {int(lg_runs)} run(s)" if lg_runs > 0 else
                         "not searched (loadgen_note says why)") + ("" if pd.isna(bad) else
                                                                    f", INVALID at {float(bad):g} q/s")
                lines.append({"run_id": r["run_id"], "slo": slo.name, "slo_source": "loadgen", "slo_n": None,
                              "slo_tok_s": None, "slo_static_tok_s": static, "slo_prefill_tok_s": None,
                              "slo_concurrency": None,
                              "slo_note": f"LoadGen Server: {found}; the static curve is not used in its place"})
                continue
            if judged_lv is None and len(judged) < len(levels):  # the levels that could decide it are too thin
                thin = counts[~levels.index.isin(judged.index)]  # the levels not judged: their counts, or NaN
                most = thin.max()
                lines.append({"run_id": r["run_id"], "slo": slo.name, "slo_source": "static curve",
                              "slo_n": n if n is not None or pd.isna(most) else int(most),
                              "slo_static_tok_s": static, "slo_tok_s": None, "slo_prefill_tok_s": None,
                              "slo_concurrency": None,
                              "slo_note": NOT_JUDGED + (f": p{slo.percentile} from at most {int(most)} samples a level"
                                                        if not pd.isna(most) else ": sample counts not recorded")
                                          + f" (< {need})"
                                          + ("" if len(judged) == 0 else f"; {len(judged)} well-sampled level(s) "
                                             "meet no bound")
                                          + ("" if lv is None else f"; the static curve alone would give "
                                             f"{static:.1f} tok/s at {int(lv['concurrency'])}, indicative only")})
                continue
            lv = judged_lv
            n = None if lv is None else level_samples(lv, slo)
            n = None if n is None or pd.isna(n) else int(n)
            lines.append({"run_id": r["run_id"], "slo": slo.name, "slo_n": n, "slo_source": "static curve",
                          "slo_static_tok_s": None if lv is None else float(lv["decode_tok_s"]),
                          "slo_tok_s": None if lv is None else float(lv["decode_tok_s"]),
                          "slo_prefill_tok_s": None if lv is None else float(lv["prefill_tok_s"]),
                          "slo_concurrency": None if lv is None else int(lv["concurrency"]),
                          "slo_note": (f"meets no level of {len(judged)} measured" if lv is None else "")
                                      + ("" if len(judged) == len(levels) else
                                         f"{'; ' if lv is None else ''}{len(levels) - len(judged)} level(s) with "
                                         f"fewer than {need} samples not judged")})
    return pd.DataFrame(lines)
