"""python -m harness.analysis RESULTS.csv [--hardware this-machine,h100] [--slo server,interactive] [--price USD]
[--margin 0.02] [--context 4096]"""
from __future__ import annotations

import argparse
import sys

from harness.analysis.report import write_report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.analysis", description=__doc__)
    ap.add_argument("csv")
    ap.add_argument("--out", default=None, help="output folder (default: beside the CSV)")
    ap.add_argument("--hardware", default=None,
                    help="comma-separated profiles from conf/hardware/ (default: all; each prices only the rows "
                         "measured on it, all give capacity)")
    ap.add_argument("--slo", default=None, help="comma-separated latency targets from conf/slo/ (default: server, "
                                                "interactive, offline, batch1)")
    ap.add_argument("--context", type=int, default=4096, help="tokens per sequence in the capacity table")
    ap.add_argument("--price", type=float, default=None, help="US$/hour of this machine (profile this-machine)")
    ap.add_argument("--margin", type=float, default=0.02, help="quality margin for the recommendation")
    ap.add_argument("--rank-by", "--quality", dest="rank_by", default="auto",  # --quality: its name before
                    help="the accuracy the frontiers rank by: auto | capability | mmlu_acc | one_minus_kld | any "
                         "accuracy column, e.g. arc_easy_acc")
    args = ap.parse_args(argv)
    import math

    try:
        if args.context < 1:
            raise ValueError(f"--context must be >= 1, not {args.context}")
        if args.price is not None and not (math.isfinite(args.price) and args.price > 0):
            raise ValueError(f"--price must be a finite number of US$ per hour > 0, not {args.price}")
        if not (math.isfinite(args.margin) and 0 <= args.margin < 1):
            raise ValueError(f"--margin must be a quality difference between 0 and 1, e.g. 0.02, not {args.margin}")
        path = write_report(args.csv, args.out, args.hardware.split(",") if args.hardware else None, args.price,
                            args.margin, args.rank_by, args.slo.split(",") if args.slo else None, args.context)
    except (KeyError, ValueError, OSError) as exc:  # a missing, binary or unreadable input; an unwritable --out
        what = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
            what = f"{type(exc).__name__}: {exc.strerror or exc} ({exc.filename or args.out or args.csv})"
        print(f"error: {what}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
