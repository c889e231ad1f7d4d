"""The engine-neutral per-token timer: an engine calls it as each token exists; intervals are read afterwards.

On CUDA each mark records a CUDA event and the intervals are read after one synchronise (no host sync inside the
timed loop); on CPU each mark reads perf_counter. No I/O happens between marks."""
from __future__ import annotations

import time


class StepTimer:
    def __init__(self, device: str):
        self.cuda = device == "cuda"
        self.marks: list = []

    def start(self) -> None:
        self.marks = []
        self.mark()

    def mark(self) -> None:
        if self.cuda:
            import torch

            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.marks.append(ev)
        else:
            self.marks.append(time.perf_counter())

    __call__ = mark

    def intervals_ms(self) -> list[float]:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            return [a.elapsed_time(b) for a, b in zip(self.marks, self.marks[1:])]
        return [(b - a) * 1e3 for a, b in zip(self.marks, self.marks[1:])]


