"""The GPU call (scripts/gpu_run.sh) on this CPU: what comes back fits the device tool's limits (at most 8 files
under $OUT), the archive is rewritten after every run, and a run over its cap becomes a row."""
import os
import subprocess
import tarfile

from harness.record.store import read_rows
from tests.conftest import ROOT, run_harness


def _bundle_rows(bundle, tmp_path):
    with tarfile.open(bundle) as tar:
        (member,) = [m for m in tar.getmembers() if m.name.endswith("r.csv")]
        out = tmp_path / "extracted.csv"
        out.write_bytes(tar.extractfile(member).read())
    return read_rows(out)


def test_the_archive_is_rewritten_after_every_run_and_a_capped_run_is_a_row(tmp_path):
    csv, bundle = tmp_path / "res" / "r.csv", tmp_path / "OUT" / "results.tar.gz"
    common = ["model=tiny-random", "bench=quick", "eval=none", "quality=none", f"results.path={csv}",
              f"results.bundle={bundle}"]
    run_harness(*common, "precision=fp32")
    assert [r["status"] for r in _bundle_rows(bundle, tmp_path)] == ["ok"]
    run_harness(*common, "precision=bf16", "runner.timeout_s=0.5", check=False)  # the child cannot even start
    rows = _bundle_rows(bundle, tmp_path)
    assert [r["status"] for r in rows] == ["ok", "timeout"] and "runner.timeout_s=0.5" in rows[1]["error"]


def test_the_gpu_script_on_cpu_leaves_at_most_8_files(tmp_path):
    out, wheels = tmp_path / "OUT", tmp_path / "no-wheels"
    wheels.mkdir()
    env = {**os.environ, "PY": os.sys.executable, "OUT": str(out), "DEVICE": "cpu", "BUDGET_S": "300",
           "RUN_CAP_S": "200", "WHEELS": str(wheels), "WORK": str(tmp_path / "work"),
           "SWEEP_ARGS": "model=tiny-random precision=bf16,fp16 bench.concurrency=[1,4] bench.new_tokens=8 "
                         "bench.prompt_tokens=16 bench.repeats=1 bench.warmup=1"}
    proc = subprocess.run(["bash", "scripts/gpu_run.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == ["gpu_run.log", "results.tar.gz"]
    with tarfile.open(out / "results.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("environment.txt") for n in names) and any(n.endswith(".curves.csv") for n in names)
    assert "2 rows in" in proc.stdout and "not run (time budget): none" in proc.stdout
