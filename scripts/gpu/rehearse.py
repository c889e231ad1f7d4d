"""`make gpu-rehearsal`: the GPU call, rehearsed on this CPU against the GPU machine's software.

Runs scripts/gpu_run.sh with .venv-gpu's Python (the GPU machine's package versions, scripts/gpu/machine-requirements.txt)
and the carried wheels installed exactly as there (--no-index --no-deps --target), on the CPU, with the tiny model
and a small architecture-only model. Then checks the two transfer limits of the device tool: what travels (tracked
and untracked-not-ignored files + the carried .whl/) <= 64 MiB, and what $OUT holds <= 8 files of <= 16 MiB, at most
2 folders deep. Prints the per-run times the GPU sweep is sized from. Exits non-zero when any check fails."""
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


def main() -> int:
    python = ROOT / ".venv-gpu" / "bin" / "python"
    failures = []
    tree, wheels = travelling_bytes()
    print(f"[rehearsal] travels: tree {tree / MIB:.1f} MiB + wheels {wheels / MIB:.1f} MiB = "
          f"{(tree + wheels) / MIB:.1f} MiB (limit 64 MiB)")
    if tree + wheels > TRAVEL_LIMIT:
        failures.append("what travels is over 64 MiB")
    with tempfile.TemporaryDirectory(prefix="gpu-rehearsal-") as tmp:
        out = Path(tmp) / "OUT"
        env = {**os.environ, "PY": str(python), "OUT": str(out), "DEVICE": "cpu", "BUDGET_S": "900",
               "RUN_CAP_S": "240", "SITE": f"{tmp}/site", "WORK": f"{tmp}/work",
               "SWEEP_ARGS": "model=tiny-random,qwen2.5-0.5b-arch precision=bf16,fp16,torchao-int8wo-bf16,bnb-nf4 "
                             "bench.concurrency=[1,8] bench.new_tokens=16 bench.repeats=2 bench.warmup=1 "
                             "bench.prompt_tokens=32 device=cpu"}
        for k in ("PYTHONPATH", "VIRTUAL_ENV"):
            env.pop(k, None)
        t0 = time.perf_counter()
        rc = subprocess.run(["bash", "scripts/gpu_run.sh"], cwd=ROOT, env=env).returncode
        wall = time.perf_counter() - t0
        print(f"[rehearsal] scripts/gpu_run.sh: exit code {rc}, {wall:.0f} s")
        if rc != 0:
            failures.append(f"scripts/gpu_run.sh exited {rc}")
        files = out_files(out)
        for name, size, depth in files:
            print(f"[rehearsal] $OUT/{name}: {size / MIB:.2f} MiB")
        if len(files) > OUT_FILES or any(s > OUT_FILE_LIMIT or d > 2 for _, s, d in files):
            failures.append(f"$OUT holds {len(files)} files (limit {OUT_FILES}, each <= 16 MiB, <= 2 folders deep)")
        bundle = out / "results.tar.gz"
        if not bundle.exists():
            failures.append("no results.tar.gz in $OUT")
        else:
            import tarfile

            with tarfile.open(bundle) as tar:
                names = tar.getnames()
            csvs = [n for n in names if n.endswith(".csv") and not n.endswith(".curves.csv")]
            print(f"[rehearsal] results.tar.gz: {len(names)} members, {csvs}")
            if not csvs or not any(n.endswith("environment.txt") for n in names):
                failures.append("the archive lacks the CSV or environment.txt")
    for f in failures:
        print(f"[rehearsal] FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
