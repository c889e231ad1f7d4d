"""python -m harness.analysis RESULTS.csv [--hardware this-machine,h100] [--price USD_PER_HOUR] [--margin 0.02]"""
from __future__ import annotations

import argparse
import sys

from harness.analysis.report import write_report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.analysis", description=__doc__)
    ap.add_argument("csv")
    ap.add_argument("--out", default=None, help="output folder (default: beside the CSV)")
    ap.add_argument("--hardware", default="this-machine,h100", help="comma-separated profiles from conf/hardware/")
    ap.add_argument("--price", type=float, default=None, help="US$/hour of this machine (profile this-machine)")
    ap.add_argument("--margin", type=float, default=0.02, help="quality margin for the recommendation")
    ap.add_argument("--quality", default="auto",
                    help="auto | mmlu_acc | one_minus_kld | any accuracy column, e.g. arc_easy_acc")
    args = ap.parse_args(argv)
    try:
        path = write_report(args.csv, args.out, args.hardware.split(","), args.price, args.margin, args.quality)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
