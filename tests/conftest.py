"""Shared fixtures: tiny random-initialised Llama models built in the test (no download)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def tiny_llama(seed: int = 0, vocab: int = 1024, hidden: int = 128, inter: int = 256, layers: int = 2):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture
def tiny_model():
    return tiny_llama()


@pytest.fixture(scope="session")
def tokenizer():
    from harness.models.local_tokenizer import local_tokenizer

    return local_tokenizer(1024)


def compose_run(model: str, precision: str, engine: str, *overrides: str):
    """The configuration `python -m harness model=.. precision=.. engine=..` runs (harness.api.compose), two threads
    and a short llama.cpp context: what the engine and scheme tests build their engines from."""
    from harness.api import compose

    return compose([f"model={model}", f"precision={precision}", f"engine={engine}", "threads=2", "llamacpp.n_ctx=512",
                    *overrides])


def run_harness(*args: str, timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python -m harness ...` from the repository root, as a user would."""
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"harness exited {proc.returncode}\nSTDOUT:\n{proc.stdout[-3000:]}\n"
                             f"STDERR:\n{proc.stderr[-3000:]}")
    return proc


SLOW_MODULES = ("test_contract", "test_calibrated", "test_openvino", "test_ort_genai", "test_vllm_process",
                "test_vllm_peer_trace", "test_gguf", "test_docs", "test_check_results", "test_html_report",
                "test_real_model", "test_loadgen", "test_hub_checkpoints", "test_reference_first", "test_gpu_script",
                "test_smoothquant_gemma", "test_static_decode")
SLOW_CALLS = ("run_harness(", "subprocess.", "sys.executable", "api.run(", "api.sweep(", "_call(")


def pytest_collection_modifyitems(config, items):
    """`slow`: a test of a module that needs a side environment, a browser or the real models, or one that starts
    the harness as a process; `make test-fast` runs the others (`pytest -m "not slow"`)."""
    import inspect

    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if getattr(item, "module", None) else ""
        try:
            source = inspect.getsource(item.function)
        except (OSError, TypeError):
            source = ""
        if module in SLOW_MODULES or any(call in source for call in SLOW_CALLS) or item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.slow)
