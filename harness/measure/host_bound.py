"""How host-bound a GPU decode step is: the GPU's busy time (the kernels torch's profiler saw, CUPTI) over the wall
time of the same decode steps. Two profiled generations of one prompt, of 2 and of 2 + STEPS tokens, after the timed
ones: their difference is STEPS decode steps alone (the prefill and the first step cancel). 1.0: the GPU never waits;
0.1: nine tenths of each step is the host's Python launching kernels (the eager loop on a small model)."""
from __future__ import annotations

import time

STEPS = 16


def _profiled(engine, prompt, tokens: int) -> tuple[float, float]:
    """(kernel seconds, wall seconds) of one generation."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        engine.generate(prompt, tokens)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    busy_us = sum(e.device_time for e in prof.events() if getattr(e, "device_type", None) is not None
                  and e.device_type.name == "CUDA")
    return busy_us / 1e6, wall


def gpu_busy_columns(engine, prompt) -> dict:
    """The row's gpu_busy_frac and its note; empty off CUDA."""
    if not str(engine.device).startswith("cuda"):
        return {}
    try:
        engine.generate(prompt, 2)  # the profiler's own first-use costs outside both windows
        busy_a, wall_a = _profiled(engine, prompt, 2)
        busy_b, wall_b = _profiled(engine, prompt, 2 + STEPS)
    except Exception as exc:  # noqa: BLE001 - the profiler is a diagnostic: the row stands without it
        return {"gpu_busy_note": f"not measured: {type(exc).__name__}: {str(exc)[:150]}"}
    busy, wall = busy_b - busy_a, wall_b - wall_a
    if wall <= 0 or busy <= 0:
        return {"gpu_busy_note": f"not measured: {STEPS} steps took {wall * 1e3:.2f} ms wall, {busy * 1e3:.2f} ms "
                                 "of kernels seen (the profiler saw no kernels of this decode path?)"}
    return {"gpu_busy_frac": min(busy / wall, 1.0),
            "gpu_busy_note": f"{busy * 1e3:.2f} ms of kernels in {wall * 1e3:.2f} ms wall over {STEPS} decode steps "
                             f"at batch {prompt.shape[0]} ({engine.decode_path or engine.name})"}
