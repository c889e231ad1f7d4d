"""The torch engine's shared-context scoring on a sliding-window model (Gemma 3 layout, tiny and random): packed
questions inside the window and questions longer than it (scored one continuation at a time) both equal a plain
forward."""
import pytest
import torch

from harness.engines.torch_engine import TorchEngine


def tiny_gemma3(window: int):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=32, sliding_window=window,
                           layer_types=["sliding_attention", "full_attention"], max_position_embeddings=256)
    return Gemma3ForCausalLM(cfg).eval()


def _plain(model, ctx, cont):
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].float(), -1)
    return sum(float(lp[len(ctx) - 1 + k, t]) for k, t in enumerate(cont))


@pytest.mark.parametrize("context_len", [5, 20])  # inside the window of 12 / longer than it
def test_shared_context_on_a_sliding_window_model_equals_a_plain_forward(context_len):
    model = tiny_gemma3(window=12)
    engine = TorchEngine(model)
    assert engine.window == 12
    items = [(list(range(3, 3 + context_len)), [[40, 41, 42], [50], [60, 61]]), ([7, 8, 9], [[70, 71]])]
    got = engine.continuation_logprobs(items)
    for (ctx, conts), lls in zip(items, got):
        for cont, ll in zip(conts, lls):
            assert ll == pytest.approx(_plain(model, ctx, cont), abs=1e-4)
