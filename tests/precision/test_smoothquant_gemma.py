"""SmoothQuant on Gemma 3 (llmcompressor_oneshot.py): its RMSNorms scale by (1 + weight), so dividing the weight by
the smoothing scales (what SmoothQuant does to a norm) changes the model, unless the norms are first swapped for ones
that scale by weight. And the MLP is fed by pre_feedforward_layernorm, which is the norm to smooth. Checked on a tiny
random Gemma 3 built here, smoothing by hand as SmoothQuant does (norm weight / s, the linears' columns x s)."""
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from harness.precision.llmcompressor_oneshot import SANDWICH_NORM_MAPPINGS, smoothquant_mappings, unit_offset_norms


def tiny_gemma():
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=16)
    model = Gemma3ForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(torch.randn_like(p) * 0.3)  # Gemma's trained norm weights are far from 0
    return model


def smooth(model, norm_name: str, linears: tuple[str, ...]):
    """SmoothQuant's transform on every layer: the norm's weight divided by s, the linears' input columns times s."""
    with torch.no_grad():
        for layer in model.model.layers:
            norm = getattr(layer, norm_name)
            s = torch.linspace(0.5, 2.0, norm.weight.shape[0])
            norm.weight.div_(s)
            for name in linears:
                module = layer.self_attn if name.endswith(("q_proj", "k_proj", "v_proj")) else layer.mlp
                getattr(module, name).weight.mul_(s.view(1, -1))


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def test_smoothing_is_exact_only_after_the_norms_are_swapped():
    ids = torch.randint(0, 256, (1, 12))
    model = tiny_gemma()
    before = logits(model, ids)

    restore = unit_offset_norms(model)
    assert torch.allclose(logits(model, ids), before, atol=1e-5)  # the swap alone changes nothing
    smooth(model, "input_layernorm", ("q_proj", "k_proj", "v_proj"))
    smooth(model, "pre_feedforward_layernorm", ("gate_proj", "up_proj"))
    smoothed = logits(model, ids)
    assert torch.allclose(smoothed, before, atol=1e-4)
    restore()  # back to Gemma's own norms (weight - 1), as saved: the same function
    assert type(model.model.layers[0].input_layernorm).__name__ == "Gemma3RMSNorm"
    assert torch.allclose(logits(model, ids), before, atol=1e-4)

    unswapped = tiny_gemma()  # what llm-compressor 0.14 does to Gemma 3: the division on (1 + w) norms
    smooth(unswapped, "input_layernorm", ("q_proj", "k_proj", "v_proj"))
    assert (logits(unswapped, ids) - before).abs().max() > 1e-2


def test_gemma_smooths_the_norm_that_feeds_its_mlp():
    assert smoothquant_mappings(tiny_gemma()) == SANDWICH_NORM_MAPPINGS
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    assert smoothquant_mappings(llama) is None  # llm-compressor's registry decides
    assert unit_offset_norms(llama).__name__ == "restore" and type(llama.model.norm).__name__ == "LlamaRMSNorm"
