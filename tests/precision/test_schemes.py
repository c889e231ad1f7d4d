"""Every CPU scheme applied to a tiny random Llama passes its proof (weights really stored quantised) and still
generates; the proof catches a scheme that silently skipped layers; GPU-only schemes are gated on CPU."""
import pytest
import torch

from harness.engines.torch_engine import TorchEngine
from harness.precision.proof import ProofError, count_params, linear_inventory, prove
from harness.precision.registry import Scheme, UnknownScheme, all_schemes, get_scheme, unavailable_reason

from tests.conftest import tiny_llama

CPU_DIRECT = [s.name for s in all_schemes().values() if "cpu" in s.devices and s.how in ("dtype", "direct")]


def _apply(name):
    scheme = get_scheme(name)
    model = tiny_llama()
    inventory, params = linear_inventory(model), count_params(model)
    fp32_linear_bytes = 4 * sum(inventory.values())
    model = scheme.apply(model, "cpu")
    return scheme, model, prove(model, scheme, inventory, params), fp32_linear_bytes


@pytest.mark.parametrize("name", CPU_DIRECT)
def test_cpu_scheme_is_proven_and_generates(name):
    scheme, model, proof, fp32_linear_bytes = _apply(name)
    if scheme.quantizes:
        assert proof.quantized_fraction > 0.5  # the decoder's linears; embeddings stay float
        # int8 stores about a quarter of fp32's linear bytes, int4 about an eighth (plus scales)
        assert proof.linear_bytes < fp32_linear_bytes * (scheme.bits / 32) * 1.6
        assert proof.linear_bits_per_weight >= scheme.bits
    else:
        assert proof.quantized_fraction == 0
    out = TorchEngine(model).generate(torch.tensor([[1, 2, 3, 4]]), 5)
    assert out.shape == (1, 5)


@pytest.mark.parametrize("name", ["bnb-int8", "bnb-nf4"])
def test_bitsandbytes_load_time_schemes(name, tmp_path):
    from transformers import AutoModelForCausalLM

    from harness.precision.proof import config_param_count

    tiny_llama().save_pretrained(tmp_path)
    scheme = get_scheme(name)
    model = AutoModelForCausalLM.from_pretrained(tmp_path, **scheme.load_kwargs())
    proof = prove(model, scheme, linear_inventory(model), config_param_count(model.config))
    assert proof.quantized_fraction > 0.5
    assert proof.linear_bits_per_weight < scheme.bits * 1.6
    assert TorchEngine(model).generate(torch.tensor([[1, 2, 3]]), 3).shape == (1, 3)


def test_proof_catches_a_silently_skipped_layer():
    scheme = get_scheme("torchao-int8wo")
    model = tiny_llama()
    inventory, params = linear_inventory(model), count_params(model)
    skipped = model.model.layers[1].mlp.down_proj
    model = scheme.apply(model, "cpu")
    model.model.layers[1].mlp.down_proj = torch.nn.Linear(skipped.in_features, skipped.out_features, bias=False)
    with pytest.raises(ProofError, match="left unquantised"):
        prove(model, scheme, inventory, params)


def test_proof_catches_a_cast_that_did_not_happen():
    model = tiny_llama()
    with pytest.raises(ProofError, match="not bfloat16"):
        prove(model, get_scheme("bf16"), linear_inventory(model), count_params(model))


def test_gpu_only_schemes_are_gated_on_cpu():
    for name in ("torchao-fp8", "torchao-int4wo-cuda"):
        reason = unavailable_reason(get_scheme(name), "cpu")
        assert reason and "cuda" in reason


def test_missing_library_names_the_extra():
    fake = Scheme(name="x", bits=4, library="nopkg", devices=("cpu",), how="direct", requires=("no_such_module",),
                  extra="llamacpp")
    assert "pip install -e '.[llamacpp]'" in unavailable_reason(fake, "cpu")


def test_unknown_scheme_lists_choices():
    with pytest.raises(UnknownScheme, match="choices: .*fp32"):
        get_scheme("int3-magic")


def test_every_scheme_has_a_config_file():
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "conf" / "precision"
    assert {p.stem for p in conf.glob("*.yaml")} == set(all_schemes())


def test_a_shape_the_scheme_cannot_quantise_is_unavailable_with_its_reason():
    scheme = get_scheme("torchao-int4wo")
    assert scheme.fits(tiny_llama(hidden=128, inter=256)) is None
    why = scheme.fits(tiny_llama(hidden=192, inter=384))  # 192 = 1.5 x 128, like SmolLM2's 576
    assert "group size 128 does not divide" in why and "192" in why and "torchao-int4wo-g64" in why
    assert get_scheme("torchao-int4wo-g64").fits(tiny_llama(hidden=192, inter=384)) is None
