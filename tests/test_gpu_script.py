"""The GPU call (scripts/gpu_run.sh) on this CPU: what comes back fits the device tool's limits (at most 8 files
under $OUT), the archive is rewritten after every run, a run over its cap becomes a row, the one-process sweep writes
the rows isolated runs write, a second call resumes from the first's archive and adds to it, and the plan orders
cells as the preset says."""
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


def _call(tmp_path, name: str, precisions: str, resume: str = "", budget: str = "300"):
    out = tmp_path / name / "OUT"
    (tmp_path / "no-wheels").mkdir(exist_ok=True)
    env = {**os.environ, "PY": os.sys.executable, "OUT": str(out), "DEVICE": "cpu", "BUDGET_S": budget,
           "RUN_CAP_S": "200", "WHEELS": str(tmp_path / "no-wheels"), "WORK": str(tmp_path / name / "work"),
           "HARNESS_COMMIT": "0123abc", "RESUME_FROM": resume,
           "SWEEP_ARGS": f"model=tiny-random precision={precisions} bench.concurrency=[1,4] bench.new_tokens=8 "
                         "bench.prompt_tokens=16 bench.repeats=1 bench.warmup=1"}
    proc = subprocess.run(["bash", "scripts/gpu_run.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc, out


def _archived_rows(bundle, tmp_path):
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        (member,) = [m for m in tar.getmembers()
                     if m.name.endswith(".csv") and not m.name.endswith((".curves.csv", ".loadgen.csv"))]
        out = tmp_path / f"extracted-{bundle.parent.parent.name}.csv"
        out.write_bytes(tar.extractfile(member).read())
    return read_rows(out), names


def test_two_calls_of_the_gpu_script_on_cpu_the_second_adding_to_the_first(tmp_path):
    first, out1 = _call(tmp_path, "one", "bf16,fp16")
    assert sorted(p.name for p in out1.rglob("*") if p.is_file()) == ["gpu_run.log", "results.tar.gz"]
    rows1, names = _archived_rows(out1 / "results.tar.gz", tmp_path)
    assert [r["status"] for r in rows1] == ["ok", "ok"]
    assert any(n.endswith("environment.txt") for n in names) and any(n.endswith(".curves.csv") for n in names)
    assert any(n.endswith("smoke.txt") for n in names)
    assert "[smoke] cuda graphs: skipped: no CUDA device" in first.stdout  # every smoke check is one line
    assert "[one_process] plan: 2 cells" in first.stdout and "not started (time budget): none" in first.stdout
    assert "commit: 0123abc" in first.stdout
    second, out2 = _call(tmp_path, "two", "bf16,fp16,fp32", resume=str(out1 / "results.tar.gz"))
    assert "resuming from" in second.stdout and "2 rows of" in second.stdout
    assert second.stdout.count("recorded by an earlier call: skipped") == 2
    assert second.stdout.count("already recorded ok") == 2
    rows2, _ = _archived_rows(out2 / "results.tar.gz", tmp_path)
    assert [r["precision"] for r in rows2] == ["bf16", "fp16", "fp32"]  # both calls' rows, the first's kept as is
    assert [r["run_id"] for r in rows2[:2]] == [r["run_id"] for r in rows1]


def test_a_budget_spent_before_the_sweep_runs_nothing(tmp_path):
    proc, out = _call(tmp_path, "none", "bf16", budget="5")
    assert "no time left for the sweep" in proc.stdout and "0 rows in" in proc.stdout
    assert "[one_process]" not in proc.stdout


def test_the_one_process_sweep_writes_the_rows_isolated_runs_write(tmp_path):
    """Same configurations, same hashes, same measured non-timing columns, in one process as in a child each."""
    from harness.one_process import main

    common = ["bench=quick", "eval=none", "quality=none", "device=cpu", "progress=false"]
    one, iso = tmp_path / "one.csv", tmp_path / "iso.csv"
    assert main(["--preset", "gpu_h200", "--budget-s", "300", "--run-cap-s", "120", "model=tiny-random",
                 "precision=bf16,int8-dynamic", *common, f"results.path={one}", "bench.concurrency=1"]) == 0
    for p in ("bf16", "int8-dynamic"):
        run_harness("+sweep=gpu_h200", "model=tiny-random", f"precision={p}", *common, f"results.path={iso}",
                    "bench.concurrency=1")
    a, b = read_rows(one), read_rows(iso)
    assert [r["status"] for r in a] == ["ok", "ok"] == [r["status"] for r in b]
    for x, y in zip(a, b):
        assert x["config_hash"] == y["config_hash"]
        for col in ("model", "precision", "weight_bytes", "bits_per_weight", "quantized_types", "compute_dtype",
                    "load_plan", "kv_bytes_per_token", "model_params", "decode_path"):
            assert x[col] == y[col], col
        assert float(x["run_s"]) < float(y["run_s"])  # no interpreter start, no imports


def test_the_plan_orders_cells_most_valuable_first_and_marks_what_the_budget_reaches():
    from harness.one_process import Cell, axes, order, plan

    models, precisions, rest = axes("gpu_h200", ["device=cuda"])
    assert models[:2] == ["llama-3.1-8b-arch", "qwen2.5-14b-arch"] and precisions[0] == "bf16"
    assert rest == ["+sweep=gpu_h200", "device=cuda"]
    cells = order(models, precisions, ["fp16"])
    assert [(c.model, c.precision) for c in cells[:6]] == [("llama-3.1-8b-arch", p) for p in
                                                           ("bf16", "torchao-int4wo-cuda", "torchao-fp8", "bnb-nf4",
                                                            "torchao-int8wo-bf16")] + [("qwen2.5-14b-arch", "bf16")]
    assert [c.precision for c in cells[-5:]] == ["fp16"] * 5 and len(cells) == 30
    timed = plan([Cell("a", "x", 40), Cell("a", "y", 40), Cell("b", "x", 40)], budget_s=90)
    assert [c.expected for c in timed] == [True, True, False]
    assert axes("gpu_h200", ["model=m1,m2", "precision=bf16"])[:2] == (["m1", "m2"], ["bf16"])


def test_the_estimate_follows_the_bytes_a_cell_moves():
    from harness.api import compose
    from harness.one_process import estimate_s
    from harness.precision.registry import get_scheme

    def est(model, precision):
        return estimate_s(compose(["+sweep=gpu_h200", f"model={model}", f"precision={precision}"]),
                          get_scheme(precision), 4300.0)

    assert est("qwen2.5-14b-arch", "bf16") > est("llama-3.1-8b-arch", "bf16") > est("llama-3.2-1b-arch", "bf16")
    assert est("llama-3.1-8b-arch", "torchao-int4wo-cuda") != est("llama-3.1-8b-arch", "bf16")


def test_an_in_place_conversion_frees_the_full_precision_layers(tmp_path):
    """bnb NF4 on a model built in memory: the resident memory after the conversion is about the 4-bit model's, not
    the bf16 model's (the CPU analogue of the GPU's allocated bytes after the load)."""
    import gc

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.measure.memory import current_rss_mb
    from harness.models.stream import malloc_trim
    from harness.precision.registry import get_scheme

    config = LlamaConfig(vocab_size=1024, hidden_size=1024, intermediate_size=4096, num_hidden_layers=8,
                         num_attention_heads=8, num_key_value_heads=8, tie_word_embeddings=True)
    gc.collect()
    malloc_trim()
    base = current_rss_mb()
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    gc.collect()
    malloc_trim()
    built = current_rss_mb() - base
    bf16_mb = sum(p.numel() for p in model.parameters()) * 2 / 2**20
    assert built > 0.8 * bf16_mb  # the bf16 model is resident
    model = get_scheme("bnb-nf4").apply(model, "cpu", "bfloat16")
    gc.collect()
    malloc_trim()
    after = current_rss_mb() - base
    assert after < 0.5 * bf16_mb, f"bf16 {bf16_mb:.0f} MiB built {built:.0f} MiB, after NF4 {after:.0f} MiB"
