"""vLLM's server dies with the harness: stopped with its whole process group (engine core included) when the engine
closes, and killed by Linux when the harness is SIGKILLed (PR_SET_PDEATHSIG); its folder under the harness's cache is
removed, or swept by the next start when the harness was killed. Checked by PID."""
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.engines.vllm_process import vllm_python

needs_vllm = pytest.mark.skipif(not vllm_python().exists(), reason="vLLM's environment is missing (make vllm)")

CHILD = r"""
import os, sys, time
from omegaconf import OmegaConf
from harness.models.checkpoint import checkpoint
from harness.engines.vllm_process import VllmProcess
folder = checkpoint(OmegaConf.load(sys.argv[1])).folder
p = VllmProcess(folder, "float32", 256)
print(p.proc.pid, p.home, flush=True)
time.sleep(600)
"""


def _group(pgid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.getpgid(int(d)) == pgid:
                    out.append(int(d))
            except ProcessLookupError:
                pass
    return out


def _gone(pids: list[int], timeout_s: float = 30) -> list[int]:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        alive = [p for p in pids if os.path.exists(f"/proc/{p}") and "zombie" not in _state(p)]
        if not alive:
            return []
        time.sleep(0.5)
    return alive


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/status").read().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


@needs_vllm
def test_a_sigkilled_harness_leaves_no_vllm_process_and_the_next_start_sweeps_its_folder(tmp_path):
    from pathlib import Path

    from tests.conftest import ROOT

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT / "conf" / "model" / "tiny-random.yaml")],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        leader, home = child.stdout.readline().split()
        group = _group(int(leader))
        assert int(leader) in group and len(group) >= 2, group  # the API server and vLLM's engine core
        assert Path(home).is_dir()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert _gone(group) == [], f"vLLM processes outlived the SIGKILLed harness: {group}"
    assert Path(home).exists()  # SIGKILL leaves no time to clean up: the next start sweeps it
    from harness.engines.vllm_process import sweep_stale_runs

    sweep_stale_runs()
    assert not Path(home).exists()


@needs_vllm
def test_closing_the_engine_stops_the_whole_group_and_removes_its_folder():
    from harness.engines.base import build_engine
    from harness.precision.registry import get_scheme
    from tests.conftest import compose_run as _cfg

    built = build_engine(_cfg("tiny-random", "fp32", "vllm"), get_scheme("fp32"), "cpu", "vllm")
    process = built.engine.process
    group = _group(process.proc.pid)
    assert len(group) >= 2 and process.home.is_dir()
    built.engine.close()
    built.engine.close()  # twice is harmless
    assert _gone(group, 5) == [] and not process.home.exists()


@needs_vllm
@pytest.mark.parametrize("caching", [False, True])
def test_a_repeated_prompt_is_a_prefix_cache_hit_only_when_prefix_caching_is_asked_for(caching):
    """The request sets repeat prompts: with prefix caching off (the default) a repeat computes its prompt again, as on
    the other engines; `engine.prefix_caching=true` makes it a hit (the control that the metric is read right)."""
    import re
    import urllib.request

    from omegaconf import open_dict

    from harness.engines.base import build_engine
    from harness.precision.registry import get_scheme
    from tests.conftest import compose_run as _cfg

    cfg = _cfg("tiny-random", "fp32", "vllm")
    with open_dict(cfg):
        cfg.engine.prefix_caching = caching
    built = build_engine(cfg, get_scheme("fp32"), "cpu", "vllm")
    try:
        assert f"prefix caching {'on' if caching else 'off'}" in built.proof.types
        prompt = [5 + i % 200 for i in range(300)]  # longer than vLLM's CPU KV block (128 tokens): two full blocks
        for _ in range(3):
            built.engine._stream(prompt, 2)
        with urllib.request.urlopen(built.engine.process.url + "/metrics", timeout=10) as r:
            text = r.read().decode()
        hits = sum(float(v) for v in re.findall(r"^vllm:prefix_cache_hits_total\{[^}]*\} (\S+)$", text, re.M))
        assert (hits > 0) == caching, f"prefix cache hits: {hits}"
    finally:
        built.engine.close()


def test_the_cuda_command_has_tensor_parallelism_and_cuda_graphs():
    """Built, not run (no GPU here): on CUDA no --enforce-eager, the GPUs' share and the tensor-parallel size."""
    from pathlib import Path

    from harness.engines.vllm_process import server_command

    cmd = server_command(Path("/opt/vllm/bin/python"), Path("/models/llama-70b"), "bfloat16", 8192, 8000,
                         device="cuda", tensor_parallel_size=4, gpu_memory_utilization=0.85)
    assert "--enforce-eager" not in cmd
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "4"
    assert cmd[cmd.index("--gpu-memory-utilization") + 1] == "0.85"
    assert cmd[cmd.index("--dtype") + 1] == "bfloat16" and cmd[cmd.index("--max-model-len") + 1] == "8192"
    assert cmd[0] == "/opt/vllm/bin/python"
    cpu = server_command(Path("python"), Path("/m"), "float32", 256, 8000)
    assert "--enforce-eager" in cpu and "--tensor-parallel-size" not in cpu


def test_cuda_without_a_named_vllm_is_unavailable_with_what_to_do(monkeypatch):
    from harness.engines.vllm_process import check_vllm
    from harness.core.errors import Unavailable

    monkeypatch.delenv("HARNESS_VLLM_PYTHON", raising=False)
    with pytest.raises(Unavailable, match="engine.python=/path/to/venv/bin/python or HARNESS_VLLM_PYTHON"):
        check_vllm("cuda")
