"""NVML (the driver's own counters: memory in use, energy) for the GPUs a run's model sits on, read per physical
device. torch numbers the GPUs CUDA_VISIBLE_DEVICES shows; NVML numbers every GPU of the machine: a torch index is
matched to its NVML handle by the device's UUID (by CUDA_VISIBLE_DEVICES' own list where the UUID is not known)."""
from __future__ import annotations

import os


def _nvml():
    import pynvml

    pynvml.nvmlInit()
    return pynvml


def handle(index: int):
    """The NVML handle of torch's CUDA device `index`."""
    nv = _nvml()
    import torch

    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is not None:
        text = str(uuid)
        try:
            return nv.nvmlDeviceGetHandleByUUID(text if text.startswith("GPU-") else f"GPU-{text}")
        except nv.NVMLError:
            pass
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if index < len(visible):
        v = visible[index]
        return nv.nvmlDeviceGetHandleByIndex(int(v)) if v.isdigit() else nv.nvmlDeviceGetHandleByUUID(v)
    return nv.nvmlDeviceGetHandleByIndex(index)


def used_mb(indices: list[int]) -> dict[int, float]:
    """Memory in use on each GPU as the driver sees it (the CUDA context and other processes included)."""
    nv = _nvml()
    return {i: nv.nvmlDeviceGetMemoryInfo(handle(i)).used / 2**20 for i in indices}


def energy_mj(indices: list[int]) -> float:
    """The GPUs' energy counters (millijoules since the driver loaded), summed."""
    nv = _nvml()
    return float(sum(nv.nvmlDeviceGetTotalEnergyConsumption(handle(i)) for i in indices))
