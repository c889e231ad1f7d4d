"""Merge per-worker results CSVs into one: `python -m harness.record.merge a.csv b.csv ... -o all.csv`.

Rows are appended to the output in input order, each run_id once (rows already in the output are kept, never
rewritten); torn lines are reported by file and line and skipped."""
from __future__ import annotations

import argparse
import sys

from harness.record.store import ResultsFileError, append_row, read_rows


def merge(inputs: list[str], output: str) -> tuple[int, int]:
    seen = {r["run_id"] for r in read_rows(output)}
    added = skipped = 0
    for path in inputs:
        try:
            rows = read_rows(path)
        except ResultsFileError as exc:
            print(f"warning: {exc}; merging its readable rows", file=sys.stderr)
            rows = read_rows(path, strict=False)
        for row in rows:
            if row["run_id"] in seen:
                skipped += 1
                continue
            append_row(output, row)
            seen.add(row["run_id"])
            added += 1
    return added, skipped


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.record.merge", description=__doc__)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    added, skipped = merge([p for p in args.inputs if p != args.output], args.output)
    print(f"{args.output}: {added} rows added, {skipped} already present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
