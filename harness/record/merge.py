"""Merge per-worker results CSVs into one: `python -m harness.record.merge a.csv b.csv ... -o all.csv`.

Rows are appended to the output in input order, each run_id once (rows already in the output are kept, never
rewritten); torn lines are reported by file and line and skipped. Each input's load-curve side table
(`<stem>.curves.csv`) comes along: the levels of every run the output holds and whose levels it lacks."""
from __future__ import annotations

import argparse
import sys

from harness.record.store import ResultsFileError, append_row, read_rows


def merge(inputs: list[str], output: str) -> tuple[int, int, int]:
    """(rows added, rows already present, load-curve levels added)."""
    from harness.record.curves import append_curve, levels_by_run

    seen = {r["run_id"] for r in read_rows(output)}
    have_curve = set(levels_by_run(output))
    added = skipped = levels = 0
    for path in inputs:
        try:
            rows = read_rows(path)
        except ResultsFileError as exc:
            if "line 1 " in str(exc) or "not UTF-8" in str(exc):  # not a results file of this harness at all
                raise
            print(f"warning: {exc}; merging its readable rows", file=sys.stderr)
            rows = read_rows(path, strict=False)
        for row in rows:
            if row["run_id"] in seen:
                skipped += 1
                continue
            append_row(output, row)
            seen.add(row["run_id"])
            added += 1
        for run_id, run_levels in levels_by_run(path).items():
            if run_id in seen and run_id not in have_curve:
                append_curve(output, run_id, run_levels)
                have_curve.add(run_id)
                levels += len(run_levels)
    return added, skipped, levels


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.record.merge", description=__doc__)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    from pathlib import Path

    from harness.record.curves import CurvesFileError

    inputs = [p for p in args.inputs if p != args.output]
    missing = [p for p in inputs if not Path(p).is_file()]
    if missing:
        print(f"error: {missing[0]}: no such results file", file=sys.stderr)
        return 2
    try:
        added, skipped, levels = merge(inputs, args.output)
    except (ResultsFileError, CurvesFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the output's folder read-only, a full disk
        print(f"error: {args.output}: {type(exc).__name__}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: {added} rows added, {skipped} already present, {levels} load-curve levels added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
