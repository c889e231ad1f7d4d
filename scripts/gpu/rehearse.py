"""`make gpu-rehearsal`: the GPU call, rehearsed on this CPU against the GPU machine's software.

Runs scripts/gpu_run.sh twice with .venv-gpu's Python (the GPU machine's package versions,
scripts/gpu/machine-requirements.txt) and the carried wheels installed exactly as there (--no-index --no-deps
--target), on the CPU, with the tiny model and a small architecture-only model: a first call, then a second that
resumes from the first's archive with more precisions, as a second lent-GPU call would. Checks the device tool's
transfer limits (what travels: tracked and untracked-not-ignored files + the carried .whl/ <= 64 MiB; what $OUT
holds: <= 8 files of <= 16 MiB, at most 2 folders deep) and that the second call keeps the first's rows and adds its
own. Prints each call's rows and per-run seconds, and one cell's seconds in one process against its own process.
Exits non-zero when any check fails."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIB = 2**20
TRAVEL_LIMIT, OUT_FILES, OUT_FILE_LIMIT = 64 * MIB, 8, 16 * MIB


def travelling_bytes() -> tuple[int, int]:
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    tree = sum((ROOT / n.decode()).stat().st_size for n in names if n and (ROOT / n.decode()).is_file())
    wheels = sum(p.stat().st_size for p in (ROOT / ".whl").glob("*.whl"))
    return tree, wheels


def out_files(out: Path) -> list[tuple[str, int, int]]:
    return [(str(p.relative_to(out)), p.stat().st_size, len(p.relative_to(out).parts) - 1)
            for p in sorted(out.rglob("*")) if p.is_file()]


SMALL = ("bench.concurrency=[1,8] bench.new_tokens=16 bench.repeats=2 bench.warmup=1 bench.prompt_tokens=32 "
         "device=cpu")


def _call(python: Path, tmp: str, name: str, precisions: str, resume: str = "") -> tuple[int, float, Path, str]:
    out = Path(tmp) / name / "OUT"
    env = {**os.environ, "PY": str(python), "OUT": str(out), "DEVICE": "cpu", "BUDGET_S": "900",
           "RUN_CAP_S": "240", "SITE": f"{tmp}/site", "WORK": f"{tmp}/{name}/work", "RESUME_FROM": resume,
           "HARNESS_COMMIT": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                            text=True).stdout.strip() or "unknown",
           "SWEEP_ARGS": f"model=tiny-random,qwen2.5-0.5b-arch precision={precisions} {SMALL}"}
    for k in ("PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(k, None)
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", "scripts/gpu_run.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    return proc.returncode, time.perf_counter() - t0, out, proc.stdout


def _rows(bundle: Path, tmp: str) -> list[dict]:
    import tarfile

    from harness.record.store import read_rows

    with tarfile.open(bundle) as tar:
        (member,) = [m for m in tar.getmembers()
                     if m.name.endswith(".csv") and not m.name.endswith((".curves.csv", ".loadgen.csv"))]
        path = Path(tmp) / f"rows-{bundle.parent.parent.name}.csv"
        path.write_bytes(tar.extractfile(member).read())
    return read_rows(path)


def _isolated_run_s(python: Path, tmp: str) -> float:
    """One cell as its own process (python -m harness), as the sweep ran before one_process: its run_s."""
    csv = Path(tmp) / "isolated.csv"
    env = {**os.environ, "PYTHONPATH": f"{tmp}/site:{ROOT}", "HARNESS_CACHE": f"{tmp}/one/work/cache"}
    subprocess.run([str(python), "-m", "harness", "+sweep=gpu_h200", "model=qwen2.5-0.5b-arch", "precision=bf16",
                    *SMALL.split(), f"results.path={csv}", "progress=false"], cwd=ROOT, env=env, capture_output=True)
    from harness.record.store import read_rows

    rows = read_rows(csv) if csv.exists() else []
    return float(rows[-1]["run_s"]) if rows and rows[-1].get("run_s") else float("nan")


def main() -> int:
    python = ROOT / ".venv-gpu" / "bin" / "python"
    failures = []
    tree, wheels = travelling_bytes()
    print(f"[rehearsal] travels: tree {tree / MIB:.1f} MiB + wheels {wheels / MIB:.1f} MiB = "
          f"{(tree + wheels) / MIB:.1f} MiB (limit 64 MiB)")
    if tree + wheels > TRAVEL_LIMIT:
        failures.append("what travels is over 64 MiB")
    with tempfile.TemporaryDirectory(prefix="gpu-rehearsal-") as tmp:
        calls = []
        for name, precisions, resume in (("one", "bf16,torchao-int8wo-bf16", ""),
                                         ("two", "bf16,torchao-int8wo-bf16,bnb-nf4,fp16",
                                          f"{tmp}/one/OUT/results.tar.gz")):
            rc, wall, out, log = _call(python, tmp, name, precisions, resume)
            print(f"[rehearsal] call {name}: scripts/gpu_run.sh exit code {rc}, {wall:.0f} s")
            if rc != 0:
                failures.append(f"call {name}: scripts/gpu_run.sh exited {rc}")
            files = out_files(out)
            for fname, size, depth in files:
                print(f"[rehearsal] call {name}: $OUT/{fname}: {size / MIB:.2f} MiB")
            if len(files) > OUT_FILES or any(sz > OUT_FILE_LIMIT or d > 2 for _, sz, d in files):
                failures.append(f"call {name}: $OUT holds {len(files)} files (limit {OUT_FILES}, each <= 16 MiB, "
                                "<= 2 folders deep)")
            bundle = out / "results.tar.gz"
            rows = _rows(bundle, tmp) if bundle.exists() else []
            if not rows:
                failures.append(f"call {name}: no rows in $OUT/results.tar.gz")
            calls.append(rows)
            per_run = ", ".join(f"{r['model']}/{r['precision']} {float(r['run_s']):.1f} s" for r in rows
                                if r.get("run_s"))
            print(f"[rehearsal] call {name}: {len(rows)} rows ({per_run})")
        if len(calls) == 2 and not len(calls[1]) > len(calls[0]):
            failures.append(f"the second call did not add rows ({len(calls[0])} then {len(calls[1])})")
        elif len(calls) == 2:
            kept = [r["run_id"] for r in calls[1][:len(calls[0])]] == [r["run_id"] for r in calls[0]]
            print(f"[rehearsal] the second call kept the first's {len(calls[0])} rows ({'as they were' if kept else 'CHANGED'})"
                  f" and added {len(calls[1]) - len(calls[0])}")
            if not kept:
                failures.append("the second call's archive changed the first call's rows")
        one = next((float(r["run_s"]) for r in calls[0] if r["model"] == "qwen2.5-0.5b-arch"
                    and r["precision"] == "bf16" and r.get("run_s")), float("nan")) if calls else float("nan")
        print(f"[rehearsal] qwen2.5-0.5b-arch bf16: {one:.1f} s in one process, {_isolated_run_s(python, tmp):.1f} s "
              "as its own process")
    for f in failures:
        print(f"[rehearsal] FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
