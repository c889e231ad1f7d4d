"""Merge per-worker results CSVs into one: `python -m harness.record.merge a.csv b.csv ... -o all.csv`.

Rows are appended to the output in input order, each run_id once (rows already in the output are kept, never
rewritten); torn lines are reported by file and line and skipped. Each input's side tables (`<stem>.curves.csv`,
`<stem>.loadgen.csv`) come along: the lines of every run the output holds and whose lines it lacks. A row of an older
layout brings its per-profile LoadGen columns as lines of the output's LoadGen side table."""
from __future__ import annotations

import argparse
import sys

from harness.record.store import ResultsFileError, append_row, read_rows


def merge(inputs: list[str], output: str) -> tuple[int, int, int]:
    """(rows added, rows already present, side-table lines added)."""
    from harness.record.loadgen_profiles import PROFILES, from_row
    from harness.record.schema import RETIRED
    from harness.record.tables import BY_INTERNAL_KEY

    seen = {r["run_id"] for r in read_rows(output)}
    have = {t.kind: set(t.by_run(output)) for t in BY_INTERNAL_KEY.values()}
    added = skipped = lines = 0
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
            old = from_row(row)  # an older layout's LoadGen columns: lines of the side table today
            if old and row["run_id"] not in have[PROFILES.kind]:
                PROFILES.append(output, row["run_id"], old)
                have[PROFILES.kind].add(row["run_id"])
                lines += len(old)
            append_row(output, {k: v for k, v in row.items() if k not in RETIRED})
            seen.add(row["run_id"])
            added += 1
        for table in BY_INTERNAL_KEY.values():
            for run_id, run_lines in table.by_run(path).items():
                if run_id in seen and run_id not in have[table.kind]:
                    table.append(output, run_id, run_lines)
                    have[table.kind].add(run_id)
                    lines += len(run_lines)
    return added, skipped, lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.record.merge", description=__doc__)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    from pathlib import Path

    from harness.core.errors import SideTableError

    inputs = [p for p in args.inputs if p != args.output]
    missing = [p for p in inputs if not Path(p).is_file()]
    if missing:
        print(f"error: {missing[0]}: no such results file", file=sys.stderr)
        return 2
    try:
        added, skipped, lines = merge(inputs, args.output)
    except (ResultsFileError, SideTableError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the output's folder read-only, a full disk
        print(f"error: {args.output}: {type(exc).__name__}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{args.output}: {added} rows added, {skipped} already present, {lines} side-table lines added "
          "(load-curve levels, LoadGen profiles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
