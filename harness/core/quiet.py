"""Known, harmless library noise: kept in the run's log, kept off the terminal, so that what a user sees is progress
and the result. Each pattern names where it comes from; anything not listed here still reaches the terminal."""
from __future__ import annotations

import re

NOISE = (
    # torchao 0.18 probes optional CUDA/MX kernels it cannot load on a CPU-only torch build
    re.compile(rb"^Failed to load .*/torchao/_C\w*\..*\.so"),
    # torch 2.13's pytree: torchao registers Enum constants the deprecated way
    re.compile(rb"^W\d{4} .*torch/utils/_pytree\.py:\d+\] .* is an Enum subclass .*deprecated"),
)


def is_noise(line: bytes) -> bool:
    return any(p.search(line) for p in NOISE)
