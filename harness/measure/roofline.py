"""Roofline for decode: each decoded token must read every weight byte and the KV cache once, so a memory-bound
decoder cannot exceed bandwidth / bytes-per-step (times the batch, which shares the weight reads). One exception: an
input embedding that is not also the output projection is only looked up (one row per token), so its bytes are not
read per step and are left out.

The bandwidth is measured once per machine with a large-array copy benchmark and cached."""
from __future__ import annotations

import json
import time

from harness.core.environment import cpu_name
from harness.core.paths import cache_dir


def measure_bandwidth_gbs(size_mb: int = 256, repeats: int = 5) -> float:
    """Copy bandwidth in GB/s (bytes read + bytes written per second), best of `repeats`."""
    import torch

    src = torch.ones(size_mb * 2**20 // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.numel() * 4 / best / 1e9


def machine_bandwidth_gbs() -> float:
    import torch

    return _cached(f"{cpu_name()}|threads={torch.get_num_threads()}", measure_bandwidth_gbs)


def bandwidth_gbs(device: str) -> float:
    """The device's copy bandwidth, measured once per machine and cached. On a GPU a run asks for it before loading
    its model, so the 2 GiB the measurement allocates is in no peak that the row reports."""
    if device == "cuda":
        import torch

        return _cached(f"cuda|{torch.cuda.get_device_name()}", cuda_bandwidth_gbs)
    return machine_bandwidth_gbs()


def _cached(key: str, measure) -> float:
    """The bandwidth cached for `key` in bandwidth.json (validated: a finite number > 0; a torn file or a bad entry
    is named and measured again), written atomically."""
    import math

    from harness.core.cache_files import atomic_write_text, read_json_cache

    path = cache_dir() / "bandwidth.json"
    data = read_json_cache(path, lambda k, v: isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) and v > 0)
    if key not in data:
        data[key] = measure()
        atomic_write_text(path, json.dumps(data, indent=1), "the measured memory bandwidth")
    return data[key]


def roofline_tok_s(bandwidth_gbs: float, step_bytes: int, batch_size: int) -> float:
    """Upper bound on decode tokens/s: batch * bandwidth / bytes read per step."""
    return batch_size * bandwidth_gbs * 1e9 / step_bytes


def roofline_columns(engine, weight_bytes: int, context_tokens: int, batch_size: int, decode_tok_s: float) -> dict:
    bw = bandwidth_gbs(engine.device)
    step = engine.step_bytes(weight_bytes, context_tokens, batch_size)
    roof = roofline_tok_s(bw, step, batch_size)
    return {"mem_bandwidth_gbs": bw, "roofline_step_mb": step / 1e6, "roofline_tok_s": roof,
            "roofline_frac": decode_tok_s / roof}


def cuda_bandwidth_gbs() -> float:
    import torch

    src = torch.ones(1 << 28, dtype=torch.float32, device="cuda")  # 1 GiB
    dst = torch.empty_like(src)
    dst.copy_(src)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    best = float("inf")
    for _ in range(5):
        start.record()
        dst.copy_(src)
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3)
    gbs = 2 * src.numel() * 4 / best / 1e9
    del src, dst
    torch.cuda.empty_cache()
    return gbs
