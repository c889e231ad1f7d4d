"""Where a results CSV's own files lie, declared once: every module that reads or writes one asks here.

    runs.csv                   the rows (harness/record/store.py)
    runs.curves.csv            the load-curve levels of every run (harness/record/curves.py)
    runs.loadgen.csv           LoadGen's Server search per run and SLO profile (harness/record/loadgen_profiles.py)
    runs.configs/<hash>.yaml   each run's resolved configuration (a row alone reproduces its run)
    runs.logs/<run_id>.log     each run's log (gzipped when compacted)
    runs.predictions/          per-question predictions (JSONL, gzipped when compacted)
    runs.loadgen/              LoadGen's summaries of every run it made
    runs.notes/                notes a script keeps with the results (bundled with them)
    runs.claims/<hash>.lock    a configuration a sweep is measuring now (never bundled)
"""
from __future__ import annotations

from pathlib import Path

FOLDERS = {
    "configs": "each run's resolved configuration, by config hash",
    "logs": "each run's log",
    "predictions": "per-question predictions",
    "loadgen": "LoadGen's summaries",
    "notes": "notes a script keeps with the results",
    "claims": "locks of the configurations being measured",
}
BUNDLED = ("configs", "logs", "predictions", "loadgen", "notes")  # what results.bundle= archives beside the CSV


def stem(csv_path: str | Path) -> str:
    return str(csv_path).removesuffix(".csv")


def folder(csv_path: str | Path, kind: str) -> Path:
    """A side folder of the results CSV (`<stem>.<kind>`); `kind` one of FOLDERS."""
    if kind not in FOLDERS:
        raise KeyError(f"no side folder {kind!r}; choices: {', '.join(FOLDERS)}")
    return Path(f"{stem(csv_path)}.{kind}")


SIDE_TABLES = ("curves", "loadgen")  # the long tables beside the CSV, keyed by run_id (harness/record/side_table.py)


def side_table(csv_path: str | Path, kind: str) -> Path:
    """A long side table of the results CSV, `<stem>.<kind>.csv`; `kind` one of SIDE_TABLES."""
    if kind not in SIDE_TABLES:
        raise KeyError(f"no side table {kind!r}; choices: {', '.join(SIDE_TABLES)}")
    return Path(f"{stem(csv_path)}.{kind}.csv")

