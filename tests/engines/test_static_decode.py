"""The compiled decode path (a static KV cache and a torch.compile'd step) gives the eager loop's greedy tokens, one
hook call per token, and says which path ran; a model it cannot take falls back to the eager loop and says why. The
CUDA-graph path (CUDA's default) needs a GPU: the GPU smoke test (scripts/gpu/smoke.py) checks its tokens there."""
import pytest
import torch

from harness.engines.torch_engine import TorchEngine


def lively_llama():
    """A tiny Llama whose greedy tokens change from step to step (the default init is close to uniform)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.5)
    return LlamaForCausalLM(cfg).eval()


def test_compiled_decode_gives_the_eager_loops_tokens():
    model = lively_llama()
    ids = torch.randint(0, 512, (3, 17), generator=torch.Generator().manual_seed(1))
    eager = TorchEngine(model, decode="eager")
    compiled = TorchEngine(model, decode="compiled")
    assert eager.decode_path == "eager loop, dynamic cache"
    assert compiled.decode_path == "static cache + torch.compile mode=default"
    want = eager.generate(ids, 12)
    assert len(set(want[0].tolist())) > 2  # a test that cannot pass by repeating one token
    calls = []
    for rows in (ids, ids[:1]):  # batch 3, then batch 1 (another shape, another graph)
        got = compiled.generate(rows, 12, on_token=lambda: calls.append(1))
        assert torch.equal(got, want[: len(rows)])
    assert len(calls) == 24
    assert compiled.decode_path.startswith("static cache")  # no fallback happened


def test_auto_is_eager_on_a_cpu():
    assert TorchEngine(lively_llama()).decode_path == "eager loop, dynamic cache"


def test_a_compile_failure_falls_back_to_the_eager_loop_and_says_why(monkeypatch):
    model = lively_llama()
    engine = TorchEngine(model, decode="compiled")

    def broken(*args, **kwargs):
        raise RuntimeError("inductor: no C++ compiler")

    monkeypatch.setattr(engine.static, "generate", broken)
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(engine.generate(ids, 5), TorchEngine(model, decode="eager").generate(ids, 5))
    assert engine.decode_path == "eager loop, dynamic cache (torch.compile failed: RuntimeError: inductor: no C++ " \
                                 "compiler)"


def test_an_unknown_decode_mode_is_refused():
    with pytest.raises(ValueError, match="engine.decode must be auto, eager, compiled or cudagraph"):
        TorchEngine(lively_llama(), decode="fast")
    with pytest.raises(ValueError, match="cudagraph needs device=cuda"):
        TorchEngine(lively_llama(), decode="cudagraph")
