"""CUDA paths: exercised on a GPU (scripts/gpu_check.sh runs these), skipped with a reason on CPU. The parts that do
not need a GPU (gating, config composition) are tested on CPU here too."""
import pytest
import torch

from harness.precision.registry import all_schemes, get_scheme, unavailable_reason

from tests.conftest import ROOT, run_harness, tiny_llama

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_gpu_sweep_preset_composes():
    proc = run_harness("+sweep=gpu_h200", "--cfg", "job")
    assert "device: cuda" in proc.stdout and "gpu_h200.csv" in proc.stdout


def test_device_cuda_without_a_gpu_is_recorded_unavailable(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from harness.record.store import read_rows

    out = tmp_path / "r.csv"
    run_harness("model=tiny-random", "bench=quick", "eval=none", "device=cuda", f"results.path={out}")
    (row,) = read_rows(out)
    assert row["status"] == "unavailable" and "CUDA" in row["error"]


def test_cpu_only_schemes_are_gated_on_cuda():
    for name, scheme in all_schemes().items():
        if scheme.devices == ("cpu",):
            assert "cpu only" in unavailable_reason(scheme, "cuda")


@cuda
def test_cuda_timing_uses_events_and_memory_peaks():
    from harness.engines.timer import StepTimer
    from harness.engines.torch_engine import TorchEngine
    from harness.measure.memory import cuda_after_load_mb, cuda_peaks_mb, nvml_used_mb
    from harness.measure.speed import measure_speed

    engine = TorchEngine(tiny_llama().to("cuda"), device="cuda")
    weights, _ = cuda_after_load_mb()
    timer = StepTimer("cuda")
    timer.start()
    engine.generate(torch.tensor([[1, 2, 3]]), 4, on_token=timer)
    assert all(isinstance(m, torch.cuda.Event) for m in timer.marks) and len(timer.intervals_ms()) == 4
    speed = measure_speed(engine, torch.tensor([[1, 2, 3, 4]]), 8, warmup=1, repeats=3)
    assert speed["decode_tok_s"] > 0
    alloc, reserved = cuda_peaks_mb()
    assert weights <= alloc <= reserved  # peaks were reset after the "load": the weights are in them, nothing older
    assert nvml_used_mb([0]) == {} or nvml_used_mb([0])["nvml_used_mb"] > 0


@cuda
def test_architecture_only_weights_are_created_on_the_gpu_in_bf16():
    from omegaconf import OmegaConf

    from harness.models.random_arch import load

    torch.cuda.reset_peak_memory_stats()
    model = load(OmegaConf.load(ROOT / "conf" / "model" / "qwen2.5-0.5b-arch.yaml"), device="cuda",
                 dtype="bfloat16").model
    params = sum(p.numel() for p in model.parameters())
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    # no fp32 copy of the model: the peak stays under the bf16 weights plus one fp32 tensor (the largest: embedding)
    largest = max(p.numel() for p in model.parameters())
    assert torch.cuda.max_memory_allocated() < params * 2 + largest * 4 + 2**28


@cuda
@pytest.mark.parametrize("name", ["bnb-nf4", "torchao-int8wo"])
def test_cuda_schemes_are_proven(name, tmp_path):
    from transformers import AutoModelForCausalLM

    from harness.precision.proof import config_param_count, count_params, linear_inventory, prove

    scheme = get_scheme(name)
    dtype = scheme.compute_dtype("cuda")
    if scheme.quantization_config:
        tiny_llama().save_pretrained(tmp_path)
        model = AutoModelForCausalLM.from_pretrained(tmp_path, device_map="cuda", dtype=getattr(torch, dtype),
                                                     quantization_config=scheme.quantization_config(dtype))
        params = config_param_count(model.config)
    else:
        model = tiny_llama().to("cuda")
        params = count_params(model)
    inv = linear_inventory(model)
    if scheme.apply and not scheme.quantization_config:
        model = scheme.apply(model, "cuda", dtype)
    assert prove(model, scheme, inv, params, dtype).quantized_fraction > 0.5
