"""The load-curve side table: one line per (run, concurrency level), beside the results CSV as `<stem>.curves.csv`
and keyed by `run_id`, as the per-question predictions are. Written whole per run, under the results file's lock,
before the run's row; a results CSV without this file (older sweeps) simply has no curves."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from harness.record.store import append_locked

CURVE_COLUMNS = (
    ("run_id", "", "the run (row of the results CSV) this level belongs to"),
    ("concurrency", "sequences", "requests with different prompts of one length, prefilled and decoded together"),
    ("ttft_ms_p50", "ms", "time to first token of the level (prefill of all sequences + first step), median"),
    ("ttft_ms_p90", "ms", "time to first token, 90th percentile over repeats"),
    ("ttft_ms_p99", "ms", "time to first token, 99th percentile over repeats"),
    ("tpot_ms_p50", "ms", "per-token decode latency (one step of the batch), median over all steps"),
    ("tpot_ms_p90", "ms", "per-token decode latency, 90th percentile"),
    ("tpot_ms_p99", "ms", "per-token decode latency, 99th percentile"),
    ("ttft_n", "samples", "timed generations behind the level's TTFT percentiles"),
    ("tpot_n", "samples", "decode steps behind the level's TPOT percentiles"),
    ("decode_tok_s", "tokens/s", "decode throughput of the whole batch: c * (new_tokens - 1) / decode time"),
    ("prefill_tok_s", "tokens/s", "prefill throughput: c * prompt_tokens / TTFT"),
    ("e2e_s_p50", "s", "end-to-end time of one generation of the batch, median"),
    ("peak_rss_mb", "MiB", "peak resident memory of the process up to the end of this level"),
    ("kv_cache_mb", "MiB", "KV cache the level holds at its longest: c * (prompt + new tokens) * bytes per token"),
    ("level_s", "s", "wall seconds of the level (warm-up included)"),
)
NAMES = tuple(c[0] for c in CURVE_COLUMNS)


def curves_path(csv_path: str | Path) -> Path:
    p = Path(csv_path)
    return p.with_name(p.stem + ".curves.csv")


def append_curve(csv_path: str | Path, run_id: str, levels: list[dict]) -> Path | None:
    """Append every level of one run, all or nothing."""
    if not levels:
        return None
    path = curves_path(csv_path)

    def text(exists: bool) -> str:
        # an older side table keeps its own header: the sample counts it lacks are derived from the run's stored
        # config when it is read (harness/analysis/report.py), so nothing measured is lost
        columns = _header(path) if exists else NAMES
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


def read_curves(csv_path: str | Path):
    """Every level of every run as a DataFrame (empty, with the columns, when the CSV has no curves)."""
    import pandas as pd

    path = curves_path(csv_path)
    if not path.exists():
        return pd.DataFrame(columns=list(NAMES))
    df = pd.read_csv(path, on_bad_lines="skip").reindex(columns=list(NAMES))
    for c in NAMES[1:]:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df.dropna(subset=["concurrency", "decode_tok_s"])
