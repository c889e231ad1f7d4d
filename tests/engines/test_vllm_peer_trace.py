"""The peer check's replay (benchmarks/vllm_peer_check.py): the trace the harness writes of its own LoadGen run is
read by vLLM's `timed_trace` dataset, the one `bench serve` replays, as the same requests in the same order at the
same send times, with prompt token ids the harness can send itself (the same in every process)."""
import importlib.util

import pytest

from harness.engines.vllm_process import vllm_python
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not vllm_python().exists(), reason="vLLM's environment is missing (make vllm)")


def _peer_check():
    spec = importlib.util.spec_from_file_location("vllm_peer_check", ROOT / "benchmarks" / "vllm_peer_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_serve_reads_the_harness_trace_as_the_same_requests_at_the_same_times(tmp_path):
    from omegaconf import OmegaConf

    from harness.models.checkpoint import checkpoint

    peer = _peer_check()
    folder = checkpoint(OmegaConf.load(ROOT / "conf" / "model" / "tiny-random.yaml")).folder
    prompts = peer.trace_prompts(folder, 5, 16, tmp_path)
    # LoadGen's requests as the harness recorded them: (perf_counter at sending, prompt index), a prompt used twice
    sent = [(100.0, 3), (100.25, 0), (101.5, 3), (102.0, 4)]
    trace = peer.write_trace(tmp_path / "trace.jsonl", sent, 16, 7)
    replayed = peer.read_trace(folder, trace, len(sent), 16, tmp_path)  # a new process: its own hash salt unless fixed
    assert [t for t, _, _ in replayed] == pytest.approx([0.0, 0.25, 1.5, 2.0])
    assert [p for _, p, _ in replayed] == [prompts[i] for _, i in sent]
    assert [n for _, _, n in replayed] == [7] * len(sent)
