"""Energy per output token: a counter read before and after the timed generations (outside every timed step).

On CUDA: NVML's energy counter of every GPU holding the model (summed), the GPU's own energy only. On a CPU: the
RAPL package counters of /sys/class/powercap where the kernel exposes them and this user may read them (the whole
processor package: other processes' work counts too, which the note says). Elsewhere, or unreadable: no figure, and
the note says why."""
from __future__ import annotations

import glob
from pathlib import Path

RAPL = "/sys/class/powercap/intel-rapl:*"


def _rapl_domains() -> list[Path]:
    """Top-level package domains (intel-rapl:N, not their sub-domains)."""
    return [Path(p) for p in sorted(glob.glob(RAPL)) if p.count(":") == 1]


class EnergyMeter:
    def __init__(self, device: str, gpus: list[int] | None = None):
        self.device, self.gpus = device, gpus or [0]
        self.source, self.reason = "", ""
        self._wrap: list[float] = []
        if str(device).startswith("cuda"):
            try:
                from harness.measure.nvml import energy_mj

                energy_mj(self.gpus)
                self.source = f"NVML energy counter, GPU {','.join(map(str, self.gpus))}"
            except Exception as exc:  # noqa: BLE001 - no NVML, or a GPU without the counter (pre-Volta)
                self.reason = f"NVML energy counter not readable ({type(exc).__name__}: {str(exc)[:120]})"
            return
        domains = _rapl_domains()
        if not domains:
            self.reason = "no RAPL energy counter here (/sys/class/powercap absent: a VM, or not an Intel/AMD RAPL CPU)"
            return
        try:
            self._wrap = [float((d / "max_energy_range_uj").read_text()) for d in domains]
            for d in domains:
                int((d / "energy_uj").read_text())
        except (OSError, ValueError) as exc:
            self.reason = f"RAPL counters not readable by this user ({type(exc).__name__}; root or a powercap group)"
            return
        self.domains = domains
        self.source = f"RAPL package energy, {len(domains)} package(s) (the whole package: other processes count too)"

    def read(self) -> list[float] | None:
        """Joules now, per counter (None when no counter can be read)."""
        if not self.source:
            return None
        if str(self.device).startswith("cuda"):
            from harness.measure.nvml import energy_mj

            return [energy_mj(self.gpus) / 1e3]
        return [int((d / "energy_uj").read_text()) / 1e6 for d in self.domains]

    def joules(self, before: list[float] | None, after: list[float] | None) -> float | None:
        """Joules between two reads (RAPL counters wrap at their range)."""
        if before is None or after is None:
            return None
        total = 0.0
        for i, (a, b) in enumerate(zip(before, after)):
            d = b - a
            if d < 0 and self._wrap:
                d += self._wrap[i] / 1e6
            total += d
        return total
