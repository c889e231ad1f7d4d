"""The load-curve side table: one line per (run, concurrency level), beside the results CSV as `<stem>.curves.csv`
and keyed by `run_id`, as the per-question predictions are (harness/record/side_table.py)."""
from __future__ import annotations

from pathlib import Path

from harness.core.errors import CurvesFileError  # noqa: F401 - re-exported
from harness.measure.levels import LEVEL_KEYS, PERCENTILES
from harness.record.side_table import SideTable

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
CURVES = SideTable("curves", "load-curve side table", CURVE_COLUMNS, required=("concurrency", "decode_tok_s"))
NAMES = CURVES.names


def curves_path(csv_path: str | Path) -> Path:
    return CURVES.path(csv_path)


def append_curve(csv_path: str | Path, run_id: str, levels: list[dict]) -> Path | None:
    """Append every level of one run, all or nothing."""
    return CURVES.append(csv_path, run_id, levels)


def read_curves(csv_path: str | Path, strict: bool = True):
    """Every level of every run as a DataFrame (SideTable.read)."""
    return CURVES.read(csv_path, strict)

