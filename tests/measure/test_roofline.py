"""Roofline arithmetic on hand numbers, and which weight bytes a decode step reads."""
import pytest
import torch

from harness.engines.hf import HFEngine
from harness.measure.roofline import roofline_tok_s, step_bytes


def test_roofline_on_hand_numbers():
    # 100 GB/s, 1 GB of weights, no KV: 100 tokens/s; batch 4 shares the weight reads: 400 tokens/s
    assert roofline_tok_s(100, 10**9, 0, 0, 1) == pytest.approx(100)
    assert roofline_tok_s(100, 10**9, 0, 0, 4) == pytest.approx(400)
    # KV cache: 1,000 tokens of context x 500,000 bytes per token = 0.5 GB more per sequence
    assert roofline_tok_s(100, 10**9, 500_000, 1_000, 1) == pytest.approx(100 / 1.5)
    assert roofline_tok_s(100, 10**9, 500_000, 1_000, 2) == pytest.approx(200 / 2.0)
    # an embedding of 0.25 GB that is only looked up is not read per step
    assert step_bytes(10**9, 250_000_000, 0, 0, 1) == 750_000_000
    assert roofline_tok_s(100, 10**9, 0, 0, 1, lookup_only_bytes=250_000_000) == pytest.approx(100 / 0.75)
    with pytest.raises(ValueError):
        step_bytes(10**9, 10**9, 0, 0, 1)


def test_tied_embeddings_are_read_every_step_and_untied_ones_are_not(tiny_model):
    tied = HFEngine(tiny_model)
    emb = tiny_model.get_input_embeddings().weight
    assert tiny_model.get_output_embeddings().weight is emb
    assert tied.lookup_only_bytes() == 0
    dynamic = torch.ao.quantization.quantize_dynamic(tiny_model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False)
    # int8-dynamic gives lm_head its own packed int8 copy: the fp32 embedding is now only looked up
    assert HFEngine(dynamic).lookup_only_bytes() == emb.numel() * 4


def test_kv_bytes_per_token_of_the_tiny_model(tiny_model):
    cfg = tiny_model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    expected = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * 4
    assert HFEngine(tiny_model).kv_bytes_per_token() == expected
