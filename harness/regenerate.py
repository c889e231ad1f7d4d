"""Every committed figure regenerates from the committed CSVs: the reports and their PNGs, the README's picture, the
verdicts read from results, and the generated results block of results/README.md. A PNG is compared by the digest of
the data it shows (in its metadata: pixels differ with fonts and library versions, the data must not), and every
regenerated PNG must pass the legibility check (harness/analysis/legibility.py). The README's picture, a screenshot
of the serving report's HTML page in Chromium, carries the digest of the report it shows.

    python -m harness.regenerate            # check: regenerate into a temporary folder, compare, exit 1 on
                                         # any difference (make check-results; in the test suite)
    python -m harness.regenerate --write    # rewrite the committed files (make report)

A difference is reported with the numbers that changed (committed -> regenerated), so a stale figure names itself."""
from __future__ import annotations

import argparse
import difflib
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
REPORTS = ("cpu_serving.csv", "cpu_sweep.csv", "cpu_loadgen.csv")  # committed CSVs whose reports are committed
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@dataclass
class Difference:
    target: str
    changed: list[tuple[str, str]]  # (committed, regenerated) numbers
    lines: list[str]  # a few differing lines, for the reader


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


def compare(target: str, committed: str, fresh: str) -> Difference | None:
    if committed == fresh:
        return None
    a, b = numbers(committed), numbers(fresh)
    changed: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            changed += list(zip(a[i1:i2] + [""] * max(0, (j2 - j1) - (i2 - i1)),
                                b[j1:j2] + [""] * max(0, (i2 - i1) - (j2 - j1))))
    lines = [ln for ln in difflib.unified_diff(committed.splitlines(), fresh.splitlines(), lineterm="", n=0)
             if ln[:1] in "+-" and not ln.startswith(("+++", "---"))][:8]
    return Difference(target, changed, lines)


README_PICTURE = RESULTS / "cpu_serving_report.png"  # the README's picture: the serving report's HTML page


def report_text(csv: Path, out_dir: Path, figures: bool) -> str:
    from harness.analysis.report import write_report

    return write_report(csv, out_dir, figures=figures).read_text()


def text_digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:32]


def figure_differences(stem: str, fresh_dir: Path) -> list[Difference]:
    """The committed PNGs of one report against the regenerated ones: each by its data digest, none missing or left
    over, every regenerated one legible."""
    from harness.analysis import plots

    out = []
    fresh = {p.name: p for p in fresh_dir.glob(f"{stem}_*.png")}
    committed = {p.name: p for p in RESULTS.glob(f"{stem}_*.png") if p != README_PICTURE}
    for name in sorted(set(fresh) | set(committed)):
        if name not in committed:
            out.append(Difference(f"results/{name}", [("(none)", "new figure")], [f"+ {name} is not committed"]))
        elif name not in fresh:
            out.append(Difference(f"results/{name}", [("stale figure", "(none)")],
                                  [f"- {name} is committed but the report no longer draws it"]))
        elif plots.read_digest(committed[name]) != plots.read_digest(fresh[name]):
            out.append(Difference(f"results/{name}", [(str(plots.read_digest(committed[name])),
                                                       str(plots.read_digest(fresh[name])))],
                                  ["the data the committed figure shows differ from the CSV's"]))
        if name in fresh and plots.PROBLEMS.get(name):
            out.append(Difference(f"results/{name}", [("legible", "not legible")],
                                  [f"  {p}" for p in plots.PROBLEMS[name][:6]]))
    return out


def write_picture(report_md: str, html_page: Path) -> bool:
    """The README's picture: the HTML page in Chromium (scripts/screenshot_report.py), with the digest of the report
    it shows in its metadata. False (and a note) where Chromium or playwright is missing."""
    import subprocess

    script = ROOT / "scripts" / "screenshot_report.py"
    proc = subprocess.run([sys.executable, str(script), str(html_page), str(README_PICTURE)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        print(f"note: the README's picture was not regenerated ({(proc.stderr or proc.stdout).strip()[:200]})")
        return False
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("harness-data", text_digest(report_md))
    with Image.open(README_PICTURE) as im:
        im.load()
        im.save(README_PICTURE, pnginfo=info)
    return True


def verdicts_text() -> str:
    from harness.reproduce.committed import results_verdicts

    return results_verdicts()


def readme_block() -> str:
    from harness.analysis.results_block import render

    return render(RESULTS / "cpu_serving.csv")


def regenerate(write: bool = False) -> tuple[list[Difference], int]:
    """(differences, how many numbers the compared files hold)."""
    from harness.analysis import results_block

    diffs: list[Difference] = []
    total = 0
    with tempfile.TemporaryDirectory(prefix="check-results-") as tmp:
        for name in REPORTS:
            csv = RESULTS / name
            committed_md = RESULTS / f"{csv.stem}_report.md"
            if write:
                for stale in RESULTS.glob(f"{csv.stem}_*.png"):
                    if stale != README_PICTURE:
                        stale.unlink()  # figures the report no longer draws go
            fresh = report_text(csv, RESULTS if write else Path(tmp), figures=True)
            old = committed_md.read_text() if committed_md.exists() and not write else fresh
            total += len(numbers(fresh))
            if d := compare(str(committed_md.relative_to(ROOT)), old, fresh):
                diffs.append(d)
            if not write:
                diffs += figure_differences(csv.stem, Path(tmp))
            if name == "cpu_serving.csv":
                if write:
                    write_picture(fresh, RESULTS / "cpu_serving.html")
                else:
                    from harness.analysis import plots

                    shown = plots.read_digest(README_PICTURE) if README_PICTURE.exists() else None
                    if shown != text_digest(fresh):
                        diffs.append(Difference("results/cpu_serving_report.png (the README's picture)",
                                                [(str(shown), text_digest(fresh))],
                                                ["the picture shows another version of the serving report: "
                                                 "`make report` retakes it"]))
        verdicts = RESULTS / "reproduce" / "verdicts.md"
        fresh = verdicts_text()
        total += len(numbers(fresh))
        if write:
            verdicts.write_text(fresh)
        elif d := compare(str(verdicts.relative_to(ROOT)), verdicts.read_text() if verdicts.exists() else "", fresh):
            diffs.append(d)
        readme = RESULTS / "README.md"
        text = readme.read_text()
        old_block, fresh_block = results_block.current(text), readme_block()
        total += len(numbers(fresh_block))
        if write:
            readme.write_text(results_block.replace(text, fresh_block))
        elif d := compare("results/README.md (results block)", old_block, fresh_block):
            diffs.append(d)
    return diffs, total


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.regenerate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="rewrite the committed files instead of checking them")
    args = ap.parse_args(argv)
    diffs, total = regenerate(write=args.write)
    if args.write:
        print(f"rewrote the reports of {', '.join(REPORTS)} and their figures, the README's picture, "
              f"results/reproduce/verdicts.md and results/README.md's block ({total} numbers)")
        return 0
    for d in diffs:
        print(f"DIFFERS: {d.target}: {len(d.changed)} numbers changed, e.g. "
              + ", ".join(f"{a or '(none)'} -> {b or '(none)'}" for a, b in d.changed[:6]))
        for line in d.lines:
            print(f"    {line[:160]}")
    print(f"check-results: {total} committed numbers regenerated, {sum(len(d.changed) for d in diffs)} differ "
          f"in {len(diffs)} file(s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
