"""The files beside a results CSV (run logs, per-question predictions): read whether plain or gzipped, and compacted
(gzipped, byte-reproducibly) before they are committed or carried back from a GPU machine.

A run writes its log plain (it is tailed while the run goes on); `compact` gzips finished logs and predictions. A
row's `log_path` or `predictions_path` keeps naming the plain file; `open_text` finds the `.gz` beside it.

    python -m harness.record.files results/cpu_serving.csv     # gzip that CSV's logs and predictions
"""
from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

from harness.core.cache_files import write_gzip
from harness.record import layout

COMPACTED = (".log", ".jsonl")


def side_dirs(csv_path: str | Path) -> tuple[Path, Path]:
    """The run logs and predictions folders of a results CSV."""
    return layout.folder(csv_path, "logs"), layout.folder(csv_path, "predictions")


def resolve(path: str | Path) -> Path:
    """The file a row names, or its gzipped copy when only that exists."""
    path = Path(path)
    if path.exists() or path.suffix == ".gz":
        return path
    gz = path.with_name(path.name + ".gz")
    return gz if gz.exists() else path


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a log or predictions file for reading, plain or gzipped (`name` or `name.gz`)."""
    path = resolve(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_text(path: str | Path) -> str:
    with open_text(path) as f:
        return f.read()


def compact(csv_path: str | Path) -> tuple[int, int, int]:
    """Gzip every plain log and predictions file beside `csv_path`. Returns (files, bytes before, bytes after)."""
    count = before = after = 0
    for folder in side_dirs(csv_path):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix not in COMPACTED or not path.is_file():
                continue
            gz = path.with_name(path.name + ".gz")
            data = path.read_bytes()
            write_gzip(gz, data)
            before += len(data)
            after += gz.stat().st_size
            count += 1
            path.unlink()
    return count, before, after




def bundle_members(csv_path: str | Path) -> list[Path]:
    """The harness's own files for one results CSV: the CSV, its side tables (load curves, LoadGen profiles), its side
    folders (configs,
    logs, predictions, LoadGen summaries, and `<stem>.notes/` for notes a script keeps with it); nothing else in the
    folder (other CSVs, keys, unrelated files, Hydra's outputs), no locks, no temporaries."""
    csv_path = Path(csv_path).resolve()
    members = [p for p in (csv_path, *(layout.side_table(csv_path, k) for k in layout.SIDE_TABLES)) if p.is_file()]
    for kind in layout.BUNDLED:
        folder = layout.folder(csv_path, kind)
        if folder.is_dir():
            members += [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".lock")
                        and ".tmp" not in p.name]
    return members


def write_bundle(csv_path: str | Path, bundle: str | Path) -> Path:
    """One `.tar.gz` of the harness's own files for the results CSV (bundle_members), rewritten whole and atomically.
    A GPU machine's sweep calls this after every run, so whatever has finished comes back even if the call is cut
    (results.bundle)."""
    import os
    import tarfile

    folder, bundle = Path(csv_path).resolve().parent, Path(bundle).resolve()
    bundle.parent.mkdir(parents=True, exist_ok=True)
    tmp = bundle.with_name(f"{bundle.name}.tmp{os.getpid()}")
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for path in bundle_members(csv_path):
                if path != bundle:
                    tar.add(path, arcname=str(Path(folder.name) / path.relative_to(folder)))
        os.replace(tmp, bundle)
    finally:
        tmp.unlink(missing_ok=True)
    return bundle


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or any(a.startswith("-") for a in args):
        print("usage: python -m harness.record.files RESULTS.csv [...]  (gzips the logs and predictions beside it)",
              file=sys.stderr)
        return 2
    for arg in args:
        if not Path(arg).is_file():
            print(f"error: {arg}: no such results file", file=sys.stderr)
            return 2
        n, before, after = compact(arg)
        print(f"{arg}: {n} files gzipped, {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
