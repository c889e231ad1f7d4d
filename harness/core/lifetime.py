"""Processes the harness starts die with it, however it dies: Linux's PR_SET_PDEATHSIG, asked for in one place.
(vLLM's watchdog, harness/engines/vllm_process.py WATCHDOG, runs in vLLM's own interpreter, where this package may not
be importable: it makes the same call in its three lines.)"""
from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def ask_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send `sig` to this process when its parent dies; False where the call is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent_preexec() -> None:
    """For subprocess's preexec_fn: the converter (or any helper) is SIGKILLed by Linux when the process that started
    it dies, however it dies (PR_SET_PDEATHSIG survives exec), so a killed sweep leaves no converter running."""
    ask_parent_death_signal(signal.SIGKILL)
