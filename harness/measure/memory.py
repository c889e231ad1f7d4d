"""Memory at run time: peak RSS, available memory, CUDA peaks and NVML. The bytes the weights occupy as stored are
counted by the proof (harness/precision/stored_bytes.py)."""
from __future__ import annotations

import resource


def _status_kib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started or since `reset_peak_rss` (VmHWM; getrusage where
    /proc is absent, which cannot be reset)."""
    hwm = _status_kib("VmHWM")
    return hwm / 1024.0 if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss() -> bool:
    """Start a new peak (Linux: writing 5 to /proc/self/clear_refs resets VmHWM), so that several runs in one
    process each report their own. False where the kernel does not allow it (the peak then spans the process)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def current_rss_mb() -> float | None:
    """Resident memory of this process now (VmRSS), or None where /proc is absent."""
    rss = _status_kib("VmRSS")
    return rss / 1024.0 if rss is not None else None


def available_bytes() -> int | None:
    """Memory the kernel says a new allocation can get now (MemAvailable), or None where /proc/meminfo is absent."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cuda_peaks_mb() -> tuple[float | None, float | None]:
    import torch

    if not torch.cuda.is_available():
        return None, None
    return torch.cuda.max_memory_allocated() / 2**20, torch.cuda.max_memory_reserved() / 2**20


def cuda_after_load_mb() -> tuple[float, float]:
    """(allocated now, peak so far) in MiB, then reset the peaks: called once the model is loaded and proven."""
    import torch

    torch.cuda.synchronize()
    now, peak = torch.cuda.memory_allocated() / 2**20, torch.cuda.max_memory_allocated() / 2**20
    torch.cuda.reset_peak_memory_stats()
    return now, peak


def nvml_used_mb(gpus: list[int]) -> dict:
    """Device memory in use per NVML (the driver) on each GPU holding the model, read per physical device: the
    CUDA context and other processes included. Columns nvml_used_mb (their sum) and nvml_used_per_gpu_mb."""
    try:
        from harness.measure.nvml import used_mb

        per = used_mb(gpus)
    except Exception:  # noqa: BLE001 - NVML is optional
        return {}
    return {"nvml_used_mb": sum(per.values()),
            "nvml_used_per_gpu_mb": ";".join(f"cuda:{i}={v:.0f}" for i, v in sorted(per.items()))}
