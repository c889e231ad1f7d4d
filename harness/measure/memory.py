"""Memory at run time: peak RSS, available memory, CUDA peaks and NVML. The bytes the weights occupy as stored are
counted by the proof (harness/precision/stored_bytes.py)."""
from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


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


def nvml_used_mb() -> float | None:
    """Device memory in use as NVML (the driver) sees it: includes the CUDA context and other processes."""
    try:
        import pynvml

        pynvml.nvmlInit()
        import torch

        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        return pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
    except Exception:  # noqa: BLE001 - NVML is optional
        import subprocess

        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=10).stdout.split()
            return float(out[0]) if out else None
        except Exception:  # noqa: BLE001
            return None
