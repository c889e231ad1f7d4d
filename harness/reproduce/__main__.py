"""python -m harness.reproduce list | run ID [ID ...] | run all"""
from __future__ import annotations

import argparse
import sys

from harness.reproduce.checks import OUT, run_claim, verdict_table
from harness.reproduce.registry import ClaimError, load_claims, runnable_here


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.reproduce", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="show the registry and what is runnable here")
    run = sub.add_parser("run", help="run claims and write a verdict table")
    run.add_argument("ids", nargs="+", help="claim ids, or 'all'")
    args = ap.parse_args(argv)
    try:
        claims = load_claims()
    except ClaimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "list":
        for c in claims.values():
            ok, why = runnable_here(c)
            print(f"{c.id:22s} {'runnable' if ok else 'NOT runnable: ' + why}\n    {c.claim}\n    source: {c.source}")
        return 0
    ids = list(claims) if args.ids == ["all"] else args.ids
    unknown = [i for i in ids if i not in claims]
    if unknown:
        print(f"error: unknown claim {unknown}; choices: {', '.join(claims)}", file=sys.stderr)
        return 2
    verdicts = []
    for cid in ids:
        ok, why = runnable_here(claims[cid])
        if not ok and claims[cid].check["function"] != "not_runnable":
            from harness.reproduce.checks import Verdict

            verdicts.append(Verdict(cid, "all", "", "not measured", "not comparable", f"not runnable here: {why}"))
            continue
        verdicts += run_claim(claims[cid])
    table = verdict_table(verdicts)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("verdicts.md" if args.ids == ["all"] else f"verdicts-{'-'.join(ids)}.md")
    path.write_text(table + "\n")
    print(table)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
