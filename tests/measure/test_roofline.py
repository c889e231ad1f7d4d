"""Roofline arithmetic on hand numbers, and which bytes a decode step reads (through the engine's own method)."""
import pytest
import torch

from harness.engines.torch_engine import TorchEngine
from harness.measure.roofline import roofline_tok_s


def test_roofline_on_hand_numbers():
    # 100 GB/s and 1 GB read per step: 100 tokens/s; a batch of 4 shares the weight reads: 400 tokens/s
    assert roofline_tok_s(100, 10**9, 1) == pytest.approx(100)
    assert roofline_tok_s(100, 10**9, 4) == pytest.approx(400)


def test_step_bytes_of_the_tiny_model_by_hand(tiny_model):
    # hidden 128 / 4 heads = head dim 32; 2 key/value heads; 2 layers; fp32 (4 bytes):
    # K and V: 2 x 2 layers x 2 heads x 32 x 4 bytes = 1,024 bytes per token
    engine = TorchEngine(tiny_model)
    assert engine.kv_bytes_per_token() == 1024
    assert TorchEngine(tiny_model.to(torch.bfloat16)).kv_bytes_per_token() == 512
    # 1 GB of weights (tied embedding: read every step) + 2 sequences x 1,000 tokens x 512 bytes
    assert engine.step_bytes(10**9, 1_000, 2) == 10**9 + 2 * 1_000 * 512


def test_tied_embeddings_are_read_every_step_and_untied_ones_are_not(tiny_model):
    tied = TorchEngine(tiny_model)
    emb = tiny_model.get_input_embeddings().weight
    assert tiny_model.get_output_embeddings().weight is emb
    assert tied.lookup_only_bytes() == 0
    dynamic = torch.ao.quantization.quantize_dynamic(tiny_model, {torch.nn.Linear}, dtype=torch.qint8, inplace=False)
    # int8-dynamic gives lm_head its own packed int8 copy: the fp32 embedding (1024 x 128 x 4 bytes) is only looked up
    untied = TorchEngine(dynamic)
    assert untied.lookup_only_bytes() == 1024 * 128 * 4
    assert untied.step_bytes(10**7, 0, 1) == 10**7 - 1024 * 128 * 4
    with pytest.raises(ValueError):
        untied.step_bytes(1024 * 128 * 4, 0, 1)  # lookup-only bytes cannot be all the weights
