"""Rewrite results CSVs of an older layout under today's columns, so that rows filling a newer column can be appended
(an append to such a file is refused, and the row kept aside, rather than dropping that column's value):

    python -m harness.record.upgrade results/cpu_loadgen.csv [more.csv ...]

Every row is kept with its values as written; the rewrite is atomic and under the file's lock. Retired columns move
to their side table first: the per-profile LoadGen columns (`loadgen_server_qps`, ...) become lines of
`<stem>.loadgen.csv` (harness/record/loadgen_profiles.py)."""
from __future__ import annotations

import argparse
import sys

from harness.core.errors import ResultsFileError, SideTableError
from harness.record import loadgen_profiles
from harness.record.store import upgrade


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.record.upgrade", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+")
    args = ap.parse_args(argv)
    for path in args.csv:
        try:
            moved = [0]

            def move(rows, path=path, moved=moved):
                moved[0] = loadgen_profiles.move_retired(path, rows)

            n = upgrade(path, move)
            print(f"{path}: {n} rows under today's columns"
                  + (f"; {moved[0]} LoadGen profile searches moved to {loadgen_profiles.PROFILES.path(path)}"
                     if moved[0] else ""))
        except (ResultsFileError, SideTableError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
