"""Every LoadGen run behind a results CSV, read back from the summaries kept beside it (`<stem>.loadgen/`, one per
run, gzipped, named `<run_id>.<scenario>-<profile>-<target QPS>.mlperf_log_summary.txt.gz`): the points of the
QPS-latency curves. LoadGen's own summary is the source; nothing is recomputed."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from harness.record import layout

COLUMNS = ["run_id", "scenario", "profile", "target_qps", "valid", "samples_per_s", "tokens_per_s", "ttft_p99_ms",
           "tpot_p99_ms", "why_invalid", "duration_only"]
_CRITERION = re.compile(r"^\s*([A-Za-z][A-Za-z ]*satisfied)\s*:\s*(\w+)", re.M)


def failed_criteria(text: str) -> list[str]:
    """The criteria LoadGen's summary says were not satisfied ("Min duration satisfied : NO" -> "min duration")."""
    return [name.removesuffix(" satisfied").strip().lower() for name, value in _CRITERION.findall(text)
            if value.strip().upper() == "NO"]
_NAME = re.compile(r"^(?P<run_id>[A-Za-z0-9_-]+)\.(?P<scenario>server|offline)-(?P<profile>[A-Za-z0-9_]+)-"
                   r"(?P<qps>[0-9.eE+-]+)\.mlperf_log_summary\.txt\.gz$")


def loadgen_dir(csv: str | Path) -> Path:
    return layout.folder(csv, "loadgen")


def loadgen_runs(csv: str | Path) -> pd.DataFrame:
    from harness.measure.loadgen import parse_summary
    from harness.record.files import open_text

    rows = []
    folder = loadgen_dir(csv)
    for path in sorted(folder.glob("*.mlperf_log_summary.txt.gz")) if folder.is_dir() else []:
        m = _NAME.match(path.name)
        if not m:
            continue
        with open_text(path) as f:
            text = f.read()
        s = parse_summary(text)
        failed = failed_criteria(text)
        server = m["scenario"] == "server"
        rows.append({"run_id": m["run_id"], "scenario": m["scenario"], "profile": m["profile"],
                     "target_qps": float(m["qps"]), "valid": s["valid"],
                     "samples_per_s": s["samples_per_s"] if server else s["samples_offline"],
                     "tokens_per_s": s["tokens_per_s"] if server else s["tokens_offline"],
                     "ttft_p99_ms": None if s["ttft_p99_ns"] is None else s["ttft_p99_ns"] / 1e6,
                     "tpot_p99_ms": None if s["tpot_p99_ns"] is None else s["tpot_p99_ns"] / 1e6,
                     "why_invalid": ", ".join(failed), "duration_only": (not s["valid"]) and failed == ["min duration"]})
    return pd.DataFrame(rows, columns=COLUMNS)
