"""The results CSV: atomic locked appends, a resume index, and clear errors for torn or alien lines.

Every append takes an exclusive ``fcntl`` lock on ``<csv>.lock`` and writes the (header and) row in one ``os.write``
on an ``O_APPEND`` descriptor, so concurrent writers (two sweeps, joblib workers, cluster jobs on a shared disk with
working locks) never interleave partial lines.
"""
from __future__ import annotations

import csv
import fcntl
import io
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from harness.record.schema import NAMES


class ResultsFileError(ValueError):
    """The results CSV cannot be read safely; nothing was written."""


def _format_row(row: dict, columns: tuple[str, ...] = NAMES) -> str:
    unknown = set(row) - set(NAMES)
    if unknown:
        raise KeyError(f"row has columns not declared in harness/record/schema.py: {sorted(unknown)}")
    lost = [k for k, v in row.items() if k not in columns and v not in (None, "")]
    if lost:
        raise ResultsFileError(f"the results file's header (an older layout) lacks columns {lost} that this row "
                               "fills; write to a new results.path")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if row.get(n) is None else row.get(n) for n in columns])
    return buf.getvalue()


def _header() -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(NAMES)
    return buf.getvalue()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append_row(path: str | Path, row: dict) -> None:
    """Append one row; write the header first if the file is new or empty. Refuses to append to an alien file."""
    path = Path(path)
    _format_row(row)  # validate before taking the lock
    with _locked(path):
        exists = path.exists() and path.stat().st_size > 0
        line = _format_row(row, _check_header(path) if exists else NAMES)
        if exists:
            if not _ends_with_newline(path):
                # a torn last line from a killed writer: close it so our row starts on a fresh line
                line = "\n" + line
        data = (line if exists else _header() + line).encode("utf-8")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _check_header(path: Path) -> tuple[str, ...]:
    """The file's columns: this harness's header, or an older layout of it (a subset of today's columns, e.g. a file
    written before a task was added). Anything else is an alien file."""
    with open(path, newline="", encoding="utf-8") as f:
        header = tuple(next(csv.reader(f), []))
    if header != NAMES and not (header and {"run_id", "status", "config_hash"} <= set(header) <= set(NAMES)):
        alien = [n for n in header if n not in NAMES]
        raise ResultsFileError(
            f"{path}: line 1 is not this harness's header (unknown columns {alien[:5]}); "
            "write to a new results.path or move the old file away"
        )
    return header


def read_rows(path: str | Path, strict: bool = True) -> list[dict]:
    """Read every row. A torn or alien line raises ResultsFileError naming its line number (strict), or is skipped."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    header = _check_header(path)
    rows: list[dict] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        for fields in reader:
            if len(fields) != len(header):
                if strict:
                    raise ResultsFileError(
                        f"{path}: line {reader.line_num} has {len(fields)} fields, expected {len(header)} "
                        "(a torn write or a line from another tool); fix or delete that line"
                    )
                continue
            rows.append({**dict.fromkeys(NAMES, ""), **dict(zip(header, fields))})
    return rows


def done_hashes(path: str | Path) -> set[str]:
    """Config hashes already recorded with status ok: the resume index. Torn lines are ignored here (they are
    re-run), so a sweep killed mid-write resumes cleanly."""
    return {r["config_hash"] for r in read_rows(path, strict=False) if r["status"] == "ok"}


def save_config(path: str | Path, config_hash: str, text: str) -> Path:
    """Store the resolved config beside the CSV, under its hash, so a row alone reproduces its run."""
    folder = Path(str(path).removesuffix(".csv") + ".configs")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{config_hash}.yaml"
    if not target.exists():
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, target)
    return target
