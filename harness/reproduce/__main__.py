"""python -m harness.reproduce list | run ID [ID ...] | run --all [--models a,b] [--out DIR] [--recorded]

`run --all` runs every claim runnable here (claims that need the hub or a GPU say so and run where they are there),
writes the verdicts (results/reproduce/verdicts-all.md) and the rows they come from (results/reproduce/*.csv), and
states its wall time. `--models` replaces the claims' models (a plumbing run on tiny-random, as the test suite
does), `--out` writes elsewhere, `--recorded` gives the verdicts of the rows already recorded without measuring
anything (a claim part-way through: what is missing says so)."""
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
    run.add_argument("ids", nargs="*", help="claim ids, or 'all'")
    run.add_argument("--all", action="store_true", help="every claim runnable here")
    run.add_argument("--models", default=None, help="comma-separated models in place of each claim's own")
    run.add_argument("--out", default=None, help="folder for the verdicts and rows (default results/reproduce)")
    run.add_argument("--recorded", action="store_true",
                     help="verdicts from the rows already recorded, nothing measured (a claim part-way through says "
                          "'no ok row' for what is missing; a check that reads only its files is computed as usual)")
    args = ap.parse_args(argv)
    if args.cmd == "run" and (args.all or args.ids == ["all"]):
        args.ids, args.all = ["all"], True
    if args.cmd == "run" and not args.ids:
        print("error: give claim ids or --all", file=sys.stderr)
        return 2
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
    import time

    from harness.reproduce import checks

    out_dir = checks.set_out(args.out) if args.out else checks.OUT
    from harness.core.paths import unwritable

    refused = unwritable(out_dir)
    if refused:  # said before hours of claims run, not when their verdicts are written
        print(f"error: --out {out_dir}: {refused}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    verdicts = []
    for cid in ids:
        ok, why = runnable_here(claims[cid])
        if not ok and claims[cid].check["function"] != "not_runnable":
            from harness.reproduce.checks import Verdict

            verdicts.append(Verdict(cid, "all", "", "not measured", "not comparable", f"not runnable here: {why}"))
            continue
        extra = {}
        if args.models and "models" in claims[cid].check.get("params", {}):
            extra["models"] = args.models.split(",")
        if args.recorded:
            import inspect

            from harness.reproduce.checks import CHECKS, Verdict

            takes = inspect.signature(CHECKS.get(claims[cid].check["function"])).parameters
            if "run" in takes:
                extra["run"] = False
            elif not {"csv", "data_dir"} & set(takes) and claims[cid].check["function"] != "not_runnable":
                verdicts.append(Verdict(cid, "all", "", "not measured", "not comparable",
                                        "--recorded: this check measures as it checks (no recorded rows to read)"))
                continue
        t_claim = time.perf_counter()
        try:
            verdicts += run_claim(claims[cid], **extra)
        except Exception as exc:  # noqa: BLE001 - one claim's failure is its verdict, the others still run
            from harness.reproduce.checks import Verdict

            verdicts.append(Verdict(cid, "all", "", "not measured", "not comparable",
                                    f"the check failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"))
        print(f"[reproduce] {cid}: {time.perf_counter() - t_claim:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    table = verdict_table(verdicts) + f"\n\n`python -m harness.reproduce run {' '.join(sys.argv[2:] if argv is None else argv[1:])}`: " \
        f"{wall / 60:.1f} min of wall time on {len(ids)} claim{'' if len(ids) == 1 else 's'}" + \
        (" (verdicts from the rows recorded before, nothing measured)." if args.recorded else ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("verdicts-all.md" if args.ids == ["all"] else f"verdicts-{'-'.join(ids)}.md")
    path.write_text(table + "\n")
    print(table)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
