"""The reference a run compares against is built before the run's own model is loaded (never beside it), once when
two runs need it at the same time, and a reference that cannot be built leaves the run's row ok, with its speed, and
its quality columns marked failed with the reason."""
import os
import subprocess
import sys

import pandas as pd

from tests.conftest import ROOT


def test_the_reference_is_built_before_the_measured_model_loads(tmp_path, monkeypatch):
    from harness import api
    from harness.engines import base
    from harness.evaluate import reference_process

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    order: list[str] = []
    real_build, real_engine = reference_process.run_reference_process, base.build_engine

    def run_reference_process(cfg, precision, parts, still_missing=None):
        order.append(f"reference {precision}")
        return real_build(cfg, precision, parts, still_missing)

    def build_engine(cfg, scheme, device, engine):
        order.append(f"load {scheme.name}")
        return real_engine(cfg, scheme, device, engine)

    monkeypatch.setattr(reference_process, "run_reference_process", run_reference_process)
    monkeypatch.setattr("harness.run.build_engine", build_engine)
    row = api.run(model="tiny-random", precision="bf16", bench="quick", eval="none", runner__isolate=False,
                  results_path=str(tmp_path / "r.csv"))
    assert row["status"] == "ok", row.get("error")
    assert order == ["reference fp32", "load bf16"]
    assert row["quality_status"] == "ok" and row["kld_mean"] is not None


def _start(tmp_path, precision: str, csv: str) -> subprocess.Popen:
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    return subprocess.Popen([sys.executable, "-m", "harness", "model=tiny-random", f"precision={precision}",
                             "bench=quick", "eval=none", f"results.path={tmp_path / csv}"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_runs_that_need_the_same_reference_build_it_once(tmp_path):
    jobs = [_start(tmp_path, "bf16", "a.csv"), _start(tmp_path, "fp16", "b.csv")]
    outs = [j.communicate(timeout=600)[0] for j in jobs]
    assert all(j.returncode == 0 for j in jobs), outs
    builds = sum(o.count("building the fp32 reference of tiny-random once") for o in outs)
    assert builds == 1, outs
    for csv in ("a.csv", "b.csv"):
        row = pd.read_csv(tmp_path / csv).iloc[-1]
        assert row["status"] == "ok" and row["quality_status"] == "ok" and row["kld_mean"] >= 0


def test_a_reference_that_cannot_be_built_leaves_an_ok_row_with_quality_failed(tmp_path):
    """torchao-fp8 runs on CUDA only: as the reference on a CPU its build fails; the run keeps its speed."""
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "harness", "model=tiny-random", "precision=bf16", "bench=quick",
                           "eval=none", "quality.reference=torchao-fp8", f"results.path={tmp_path / 'r.csv'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    row = pd.read_csv(tmp_path / "r.csv").iloc[-1]
    assert row["status"] == "ok" and row["decode_tok_s"] > 0
    assert row["quality_status"].startswith("failed: the torchao-fp8 reference of tiny-random could not be built")
    assert "cuda" in row["quality_status"]
    assert pd.isna(row["kld_mean"])
