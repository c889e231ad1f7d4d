"""The results CSV: atomic locked appends, a resume index, and clear errors for torn or alien lines.

Every append takes an exclusive ``fcntl`` lock on ``<csv>.lock`` and writes the (header and) row in one ``os.write``
on an ``O_APPEND`` descriptor, so concurrent writers (two sweeps, joblib workers, cluster jobs on a shared disk with
working locks) never interleave partial lines.
"""
from __future__ import annotations

import csv
import fcntl
import io
import itertools
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from harness.core.errors import ResultsFileError, ResultsWriteError  # noqa: F401 - re-exported
from harness.record.schema import NAMES, RETIRED
from harness.record import layout


# columns renamed since a file was written: old name -> (today's name, old value -> today's value)
RENAMED = {"backend": ("engine", {"hf": "torch"}), "baseline": ("source_weights", {})}


def _format_row(row: dict, columns: tuple[str, ...] = NAMES) -> str:
    for old, (new, _) in RENAMED.items():
        if old in columns and new not in columns and new in row:  # an older file: today's value under its old name
            row = {**{k: v for k, v in row.items() if k != new}, old: row[new]}
    unknown = set(row) - set(NAMES) - set(RENAMED) - set(RETIRED)
    if unknown:
        raise KeyError(f"row has columns not declared in harness/record/schema.py: {sorted(unknown)}")
    lost = [k for k, v in row.items() if k not in columns and v not in (None, "")]
    if lost:
        raise ResultsFileError(f"the results file's header (an older layout) lacks columns {lost} that this row "
                               "fills; write to a new results.path, or rewrite this file under today's columns: "
                               "python -m harness.record.upgrade <csv>")
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
    """Append one row, whole or not at all; write the header first if the file is new or empty. Refuses to append to
    an alien file. A torn last record left by a killed writer (possibly inside a quoted field) is closed off first,
    so that this row and every later one parse."""
    path = Path(path)
    if path.is_dir():
        raise ResultsFileError(f"results.path={path} is a directory; give a file, e.g. {path / 'runs.csv'}")
    _format_row(row)  # validate before taking the lock
    append_locked(path, lambda exists: _format_row(row, _check_header(path)) if exists else
                  _header() + _format_row(row, NAMES))


def append_locked(path: Path, text_for: Callable[[bool], str]) -> None:
    """Under the file's lock: close off a torn last record, then write `text_for(file has content)` whole (a header
    and records for a new file, records for an existing one), or nothing at all."""
    with _locked(path):
        exists = path.exists() and path.stat().st_size > 0
        data = ((_close_torn_tail(path) if exists else "") + text_for(exists)).encode("utf-8")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            with stops_deferred():
                _write_whole(fd, data, path)
        finally:
            os.close(fd)


STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stops_deferred() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block ends (a few milliseconds for a row), then act as sent: a stop
    can no longer land between two partial writes of one row and tear it or lose it. Python runs signal handlers in
    the main thread only, so there each stop's handler is replaced by one that notes it for the block's length, and
    a noted stop is sent again afterwards, to the handler the caller had. SIGKILL cannot wait; the torn tail it
    leaves is closed off by the next append (_close_torn_tail)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # a stop is handled by the main thread, never inside this one's write
        return
    came: list[int] = []
    previous = {s: signal.getsignal(s) for s in STOPS}
    previous = {s: h for s, h in previous.items() if h is not None}  # None: a handler not set from Python, left be
    for s in previous:
        signal.signal(s, lambda signum, frame: came.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(came):
            os.kill(os.getpid(), s)  # delivered as sent, now that the row is whole


def upgrade(path: str | Path, move_retired: Callable[[list[dict]], None] | None = None) -> int:
    """Rewrite a results file of an older layout under today's header (every row kept, values as written, renamed
    columns under today's names), under its lock and by an atomic replace: a new column's rows can then be appended.
    Retired columns' values (harness/record/schema.py RETIRED) are handed to `move_retired(rows)` first, which keeps
    them in their side table; without one, a file that holds any is refused. Refuses a file with a torn or alien line
    (strict read). Returns how many rows it holds."""
    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(f"{path}: no such results file")
    with _locked(path):
        rows = read_rows(path)
        if any(r.get(c) not in (None, "") for r in rows for c in RETIRED):
            if move_retired is None:
                raise ResultsFileError(f"{path}: holds retired columns' values; upgrade it with "
                                       "python -m harness.record.upgrade, which moves them to their side table")
            move_retired(rows)
        rows = [{k: v for k, v in r.items() if k not in RETIRED} for r in rows]
        tmp = path.with_name(path.name + ".upgrade.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_whole(fd, (_header() + "".join(_format_row(r, NAMES) for r in rows)).encode("utf-8"), tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)  # the original is untouched; nothing half-written is left beside it
            raise
        finally:
            os.close(fd)
        os.replace(tmp, path)
    return len(rows)


def _write_whole(fd: int, data: bytes, path: Path) -> None:
    """os.write may write less than asked (a full disk, a signal): loop until every byte is written; on an error,
    cut the file back to its size before this row, so that nothing torn is left by us."""
    start = os.fstat(fd).st_size
    view = memoryview(data)
    try:
        while view:
            n = os.write(fd, view)
            if n <= 0:
                raise OSError(f"write returned {n}")
            view = view[n:]
        os.fsync(fd)
    except BaseException as exc:  # an error, or anything else that ends the write half-way: nothing torn is left
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ResultsWriteError(f"{path}: the row could not be written ({type(exc).__name__}: {exc}); "
                                    "the file is left as it was") from exc
        raise


def _close_torn_tail(path: Path) -> str:
    """What to write before a new row so that it starts a fresh record: nothing for a well-formed file; a newline
    after a torn last line; a closing quote and a newline when a writer died inside a quoted field (a well-formed CSV
    has an even number of quote characters at every record boundary)."""
    quotes, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            quotes += block.count(b'"')
            last = block[-1:]
    if quotes % 2:
        return '"\n'
    return "" if last == b"\n" else "\n"


def _check_header(path: Path) -> tuple[str, ...]:
    """The file's columns: this harness's header, or an older layout of it (a subset of today's columns, e.g. a file
    written before a task was added). Anything else is an alien file."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            header = tuple(next(csv.reader(f), []))
    except UnicodeDecodeError as exc:
        raise ResultsFileError(f"{path}: line 1, byte {exc.start} is not UTF-8 (a binary file, or a CSV saved in "
                               "another encoding): not a results file of this harness") from None
    known = set(NAMES) | set(RENAMED) | set(RETIRED)
    if header != NAMES and not (header and {"run_id", "status", "config_hash"} <= set(header) <= known):
        alien = [n for n in header if n not in known]
        raise ResultsFileError(
            f"{path}: line 1 is not this harness's header (unknown columns {alien[:5]}); "
            "write to a new results.path or move the old file away"
        )
    return header


STATUSES = ("ok", "failed", "timeout", "unavailable")


def read_rows(path: str | Path, strict: bool = True) -> list[dict]:
    """Read every row. A torn or alien record raises ResultsFileError naming its line number (strict), or is skipped;
    either way the records after it are read from the line after its start (a torn quoted field does not swallow
    them)."""
    path = Path(path)
    if path.is_dir():
        raise ResultsFileError(f"results.path={path} is a directory; give a file, e.g. {path / 'runs.csv'}")
    if not path.exists() or path.stat().st_size == 0:
        return []
    header = _check_header(path)
    status_at = header.index("status")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = f.readlines()
    except UnicodeDecodeError as exc:
        raise ResultsFileError(f"{path}: byte {exc.start} is not UTF-8 (a binary file, or a CSV saved in another "
                               "encoding): not a results file of this harness") from None
    rows: list[dict] = []
    i = 1
    while i < len(lines):
        fields, used = _parse_record(lines, i)
        if not fields:
            i += used
            continue
        if len(fields) == len(header) and fields[status_at].strip().lower() in STATUSES:
            fields[status_at] = fields[status_at].strip().lower()  # `OK` edited by hand is still ok
        if len(fields) != len(header) or fields[status_at] not in STATUSES:
            if strict:
                why = (f"has {len(fields)} fields, expected {len(header)} (a torn write or a line from another tool)"
                       if len(fields) != len(header) else
                       f"has status {fields[status_at]!r}, not one of {', '.join(STATUSES)}")
                raise ResultsFileError(f"{path}: line {i + 1} {why}; fix or delete that line")
            i += 1  # resynchronise on the next physical line: a new record starts there
            continue
        rows.append(_today({**dict.fromkeys(NAMES, ""), **dict(zip(header, fields))}))
        i += used
    return rows


def _today(row: dict) -> dict:
    """A row of an older layout under today's column names and values."""
    for old, (new, values) in RENAMED.items():
        if old in row:
            value = row.pop(old)
            if not row.get(new):
                row[new] = values.get(value, value)
    return row


def _parse_record(lines: list[str], start: int) -> tuple[list[str], int]:
    """One CSV record starting at physical line `start`: its fields and how many physical lines it used."""
    used = 0

    def feed():
        nonlocal used
        for line in itertools.islice(lines, start, None):
            used += 1
            yield line

    return next(csv.reader(feed()), []), used


def done_hashes(path: str | Path) -> set[str]:
    """Config hashes already recorded with status ok: the resume index. Torn lines are ignored here (they are
    re-run), so a sweep killed mid-write resumes cleanly."""
    return {r["config_hash"] for r in read_rows(path, strict=False) if r["status"] == "ok"}


def save_config(path: str | Path, config_hash: str, text: str) -> Path:
    """Store the resolved config beside the CSV, under its hash, so a row alone reproduces its run."""
    folder = layout.folder(path, "configs")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{config_hash}.yaml"
    if not target.exists():
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        try:
            tmp.write_text(text)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)  # a full disk leaves no 0-byte temporary
    return target
