"""GPUs of one machine shared by the runs of a parallel sweep (hydra/launcher=per_gpu): a run takes
`runner.gpus_per_run` of them, each under a lock file in the cache (one per host and GPU), sees only those
(CUDA_VISIBLE_DEVICES in its process), and gives them back when it ends, however it ends (the lock goes with the
process that held it). A run that finds too few free waits for them."""
from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
from contextlib import contextmanager

from harness.core.errors import ConfigError
from harness.core.logs import get
from harness.core.paths import cache_dir


def machine_gpus() -> list[str]:
    """The GPUs runs may take: $HARNESS_GPU_IDS, else this process's CUDA_VISIBLE_DEVICES, else every GPU
    nvidia-smi lists (their indices)."""
    given = os.environ.get("HARNESS_GPU_IDS") or os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None and given.strip():
        return [g.strip() for g in given.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(ln for ln in out.splitlines() if ln.startswith("GPU "))]


@contextmanager
def gpu_slots(count: int, poll_s: float = 2.0):
    """Hold `count` of the machine's GPUs for the block; yields their ids (for CUDA_VISIBLE_DEVICES)."""
    gpus = machine_gpus()
    if count > len(gpus):
        raise ConfigError(f"runner.gpus_per_run={count} is not allowed: this machine has {len(gpus)} GPU(s) "
                          f"({','.join(gpus) or 'none seen by nvidia-smi'}; HARNESS_GPU_IDS names them)")
    folder = cache_dir("gpu-slots")
    host = socket.gethostname()
    said = False
    while True:
        held = []
        for gpu in gpus:
            handle = open(folder / f"{host}-gpu{gpu.replace('/', '_')}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            held.append((gpu, handle))
            if len(held) == count:
                break
        if len(held) == count:
            try:
                yield [gpu for gpu, _ in held]
            finally:
                for _, handle in held:
                    handle.close()
            return
        for _, handle in held:
            handle.close()
        if not said:
            get(__name__).info(f"waiting for {count} free GPU(s) of {len(gpus)} (others are running)")
            said = True
        time.sleep(poll_s)
