"""The GPU call's smoke test (scripts/gpu_run.sh, before the sweep, one process, ~15 s): the CUDA paths the CPU
rehearsal cannot run, each checked on a tiny model and reported in one line, so that a broken path is known before
the sweep spends the budget on it:

  cuda events     StepTimer records CUDA events, intervals read after one synchronise
  int4 tinygemm   torchao Int4WeightOnlyConfig, tile_packed_to_4d layout, matches bf16 within 5%
  fp8             torchao float8 dynamic activations + weights (torch._scaled_mm), matches bf16 within 10%
  nf4 in place    bitsandbytes NF4 on a model built on the GPU, proven, its bf16 layers freed
  cuda graphs     the static-cache decode replayed as CUDA graphs gives the eager loop's tokens
  host-bound      GPU busy fraction of eager and CUDA-graph decode (a diagnostic)
  nvml energy     NVML's energy counter readable

Exit code 0 when every check ran or was skipped for a stated reason, 1 when one failed (the sweep still runs: a
failed path's rows then say why)."""
from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def tiny(hidden: int = 256, layers: int = 2, init: float = 0.5):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=512, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      initializer_range=init)
    return LlamaForCausalLM(cfg).eval()


def _close(a, b) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def cuda_events():
    import torch

    from harness.engines.timer import StepTimer

    timer = StepTimer("cuda")
    timer.start()
    x = torch.randn(1024, 1024, device="cuda")
    for _ in range(3):
        x = x @ x
        timer()
    iv = timer.intervals_ms()
    assert all(isinstance(m, torch.cuda.Event) for m in timer.marks) and len(iv) == 3 and all(v > 0 for v in iv)
    return f"3 intervals {', '.join(f'{v:.3f}' for v in iv)} ms"


def _linear_check(config_factory, tolerance: float):
    import torch
    from torchao.quantization import quantize_

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1024, 1024, bias=False)).to("cuda", torch.bfloat16)
    x = torch.randn(8, 1024, device="cuda", dtype=torch.bfloat16)
    want = model(x)
    quantize_(model, config_factory())
    got = model(x)
    err = _close(got, want)
    assert err < tolerance, f"relative error {err:.3f} over {tolerance}"
    return f"{type(model[0].weight).__name__}, relative error {err:.4f}"


def int4_tinygemm():
    from harness.precision.torchao import _int4wo_cuda

    return _linear_check(_int4wo_cuda, 0.05)


def fp8():
    import torch

    if torch.cuda.get_device_capability() < (8, 9):
        return "skipped: needs compute capability >= 8.9"
    from harness.precision.torchao import _fp8

    return _linear_check(_fp8, 0.10)


def nf4_in_place():
    import torch

    from harness.precision.proof import count_params, linear_inventory, prove
    from harness.precision.registry import get_scheme

    with torch.device("cuda"):
        model = tiny().to(torch.bfloat16)
    scheme = get_scheme("bnb-nf4")
    inventory, params = linear_inventory(model), count_params(model)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    model = scheme.apply(model, "cuda", "bfloat16")
    torch.cuda.synchronize()
    after = torch.cuda.memory_allocated()
    proof = prove(model, scheme, inventory, params, "bfloat16")
    out = model(torch.tensor([[1, 2, 3]], device="cuda")).logits
    assert torch.isfinite(out).all()
    assert after < before * 0.6, f"allocated {before / 2**20:.1f} -> {after / 2**20:.1f} MiB: bf16 layers kept"
    return f"{proof.types.split(';')[0]}; allocated {before / 2**20:.1f} -> {after / 2**20:.1f} MiB"


def cuda_graphs():
    import torch

    from harness.engines.torch_engine import TorchEngine

    model = tiny().to("cuda", torch.bfloat16)
    ids = torch.randint(0, 512, (2, 20), generator=torch.Generator().manual_seed(1))
    want = TorchEngine(model, device="cuda", decode="eager").generate(ids, 12)
    engine = TorchEngine(model, device="cuda", decode="cudagraph")
    calls = []
    got = engine.generate(ids, 12, on_token=lambda: calls.append(1))
    again = engine.generate(ids, 12)
    assert engine.decode_path.startswith("static cache + CUDA graph"), engine.decode_path
    same = int((got == want).all(dim=1).sum())
    assert torch.equal(got, again) and len(calls) == 12, "replays differ or hook calls missing"
    assert same == len(ids), f"{same} of {len(ids)} rows equal the eager loop's tokens"
    return f"{engine.decode_path}: tokens equal the eager loop's, 12 hook calls"


def host_bound():
    import torch

    from harness.engines.torch_engine import TorchEngine
    from harness.measure.host_bound import gpu_busy_columns

    model = tiny(hidden=512, layers=4).to("cuda", torch.bfloat16)
    ids = torch.randint(0, 512, (1, 32), generator=torch.Generator().manual_seed(2))
    out = []
    for how in ("eager", "cudagraph"):
        cols = gpu_busy_columns(TorchEngine(model, device="cuda", decode=how), ids)
        out.append(f"{how} {cols.get('gpu_busy_frac', float('nan')):.2f} ({cols.get('gpu_busy_note', '')[:60]})")
    return "; ".join(out)


def nvml_energy():
    from harness.measure.nvml import energy_mj

    a = energy_mj([0])
    time.sleep(0.2)
    return f"counter {a / 1e3:.1f} J -> {energy_mj([0]) / 1e3:.1f} J"


CHECKS = [("cuda events", cuda_events), ("int4 tinygemm", int4_tinygemm), ("fp8", fp8),
          ("nf4 in place", nf4_in_place), ("cuda graphs", cuda_graphs), ("host-bound", host_bound),
          ("nvml energy", nvml_energy)]


def main() -> int:
    t0 = time.perf_counter()
    import torch

    if not torch.cuda.is_available():
        for name, _ in CHECKS:
            print(f"[smoke] {name}: skipped: no CUDA device", flush=True)
        return 0
    failed = 0
    for name, check in CHECKS:
        t = time.perf_counter()
        try:
            result = check()
            print(f"[smoke] {name}: ok, {time.perf_counter() - t:.1f} s: {result}", flush=True)
        except Exception as exc:  # noqa: BLE001 - each check is one line, the rest still run
            failed += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"[smoke] {name}: FAILED, {time.perf_counter() - t:.1f} s: {type(exc).__name__}: "
                  f"{str(exc).splitlines()[0][:200] if str(exc) else ''} ({Path(where.filename).name}:{where.lineno})",
                  flush=True)
    print(f"[smoke] {len(CHECKS) - failed} of {len(CHECKS)} passed, {time.perf_counter() - t0:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
