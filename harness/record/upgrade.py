"""Rewrite results CSVs of an older layout under today's columns, so that rows filling a newer column can be appended
(an append to such a file is refused, and the row kept aside, rather than dropping that column's value):

    python -m harness.record.upgrade results/cpu_loadgen.csv [more.csv ...]

Every row is kept with its values as written; the rewrite is atomic and under the file's lock."""
from __future__ import annotations

import argparse
import sys

from harness.core.errors import ResultsFileError
from harness.record.store import upgrade


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.record.upgrade", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+")
    args = ap.parse_args(argv)
    for path in args.csv:
        try:
            print(f"{path}: {upgrade(path)} rows under today's columns")
        except (ResultsFileError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
