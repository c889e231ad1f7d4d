"""The load-curve side table: one line per (run, concurrency level), beside the results CSV as `<stem>.curves.csv`
and keyed by `run_id`, as the per-question predictions are. Written whole per run, under the results file's lock,
before the run's row; a results CSV without this file (older sweeps) simply has no curves."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from harness.measure.levels import LEVEL_KEYS, PERCENTILES
from harness.record import layout
from harness.record.store import append_locked

_PERCENTILE_MEANING = {50: "median", 90: "90th percentile", 99: "99th percentile"}
_LEVEL_MEANINGS = {  # the statistics a level records, in harness/measure/levels.py's order
    **{f"ttft_ms_p{p}": ("ms", "time to first token of the level (prefill of all sequences + first step), "
                               f"{_PERCENTILE_MEANING.get(p, f'{p}th percentile')} over repeats") for p in PERCENTILES},
    **{f"tpot_ms_p{p}": ("ms", "per-token decode latency (one step of the batch), "
                               f"{_PERCENTILE_MEANING.get(p, f'{p}th percentile')} over all steps") for p in PERCENTILES},
    "ttft_n": ("samples", "timed generations behind the level's TTFT percentiles"),
    "tpot_n": ("samples", "decode steps behind the level's TPOT percentiles"),
    "decode_tok_s": ("tokens/s", "decode throughput of the whole batch: c * (new_tokens - 1) / decode time"),
    "prefill_tok_s": ("tokens/s", "prefill throughput: c * prompt_tokens / TTFT"),
    "e2e_s_p50": ("s", "end-to-end time of one generation of the batch, median"),
}
CURVE_COLUMNS = (
    ("run_id", "", "the run (row of the results CSV) this level belongs to"),
    ("concurrency", "sequences", "requests with different prompts of one length, prefilled and decoded together"),
    *((key, *_LEVEL_MEANINGS[key]) for key in LEVEL_KEYS),  # a level statistic without a meaning is a KeyError here
    ("peak_rss_mb", "MiB", "peak resident memory of the process up to the end of this level"),
    ("cuda_peak_alloc_mb", "MiB", "torch.cuda.max_memory_allocated during this level alone (CUDA only; peaks reset "
                                  "before it): weights + KV cache + activations at this concurrency"),
    ("kv_cache_mb", "MiB", "KV cache the level holds at its longest: c * (prompt + new tokens) * bytes per token"),
    ("level_s", "s", "wall seconds of the level (warm-up included)"),
)
NAMES = tuple(c[0] for c in CURVE_COLUMNS)


def curves_path(csv_path: str | Path) -> Path:
    return layout.curves_table(csv_path)


def append_curve(csv_path: str | Path, run_id: str, levels: list[dict]) -> Path | None:
    """Append every level of one run, all or nothing."""
    if not levels:
        return None
    path = curves_path(csv_path)

    def text(exists: bool) -> str:
        # an older side table keeps its own header: the sample counts it lacks are derived from the run's stored
        # config when it is read (harness/analysis/report.py), so nothing measured is lost
        columns = _header(path) if exists else NAMES
        if not {"run_id", "concurrency", "decode_tok_s"} <= set(columns) or not set(columns) <= set(NAMES):
            raise ValueError(f"{path} is not a load-curve side table of this harness (columns {list(columns)[:4]})")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if not exists:
            w.writerow(columns)
        for lv in levels:
            w.writerow(["" if (v := {**lv, "run_id": run_id}.get(n)) is None else v for n in columns])
        return buf.getvalue()

    append_locked(path, text)
    return path


def _header(path: Path) -> tuple[str, ...]:
    with open(path, newline="") as f:
        return tuple(next(csv.reader(f)))


from harness.core.errors import CurvesFileError  # noqa: E402,F401 - re-exported


def read_curves(csv_path: str | Path, strict: bool = True):
    """Every level of every run as a DataFrame (empty, with the columns, when the CSV has no side table). A side table
    that is a folder, empty, of another tool or with text in a number column raises CurvesFileError naming the
    file, the column and the row (strict); otherwise such rows are dropped."""
    import pandas as pd

    path = curves_path(csv_path)
    empty = pd.DataFrame(columns=list(NAMES))
    if not path.exists():
        return empty
    if not path.is_file():
        raise CurvesFileError(f"{path}: the load-curve side table is not a file")
    try:
        df = pd.read_csv(path, on_bad_lines="skip", dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise CurvesFileError(f"{path}: the load-curve side table is empty (no header)") from None
    missing = [c for c in ("run_id", "concurrency", "decode_tok_s") if c not in df.columns]
    if missing:
        raise CurvesFileError(f"{path}: not a load-curve side table of this harness (no column {missing[0]!r}; "
                              f"found {list(df.columns)[:5]})")
    df = df.reindex(columns=list(NAMES), fill_value="")
    for c in NAMES[1:]:
        numbers = pd.to_numeric(df[c].replace("", None), errors="coerce")
        bad = df[c].ne("") & numbers.isna()
        if bad.any() and strict:
            row = int(bad.idxmax())
            raise CurvesFileError(f"{path}: row {row + 2} (run {df.at[row, 'run_id']!r}), column {c!r}: "
                                  f"{df.at[row, c]!r} is not a number")
        df[c] = numbers
    return df.dropna(subset=["concurrency", "decode_tok_s"])


def levels_by_run(csv_path: str | Path) -> dict[str, list[dict]]:
    """The side table's levels as plain dicts per run (for merge)."""
    df = read_curves(csv_path, strict=False)
    return {rid: [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items() if k != "run_id"}
                  for r in g.to_dict("records")] for rid, g in df.groupby("run_id")}
