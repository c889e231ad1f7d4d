"""Every CPU scheme applied to a tiny random Llama passes its proof (weights really stored quantised) and still
generates, both ways a model reaches it: in place on a model built in memory, and through its load plan on a saved
checkpoint (a transformers quantization config reaching from_pretrained, or a transform after the load); the proof
catches a scheme that silently skipped layers; GPU-only schemes are gated on CPU."""
import pytest
import torch

from harness.engines.torch_engine import TorchEngine
from harness.precision.proof import ProofError, count_params, linear_inventory, prove
from harness.precision.registry import Scheme, UnknownScheme, all_schemes, get_scheme, unavailable_reason

from tests.conftest import tiny_llama

CPU_DIRECT = [s.name for s in all_schemes().values() if "cpu" in s.devices and s.apply is not None]
CPU_CONFIG = [s.name for s in all_schemes().values() if "cpu" in s.devices and s.quantization_config is not None]


def _apply(name):
    scheme = get_scheme(name)
    model = tiny_llama()
    inventory, params = linear_inventory(model), count_params(model)
    fp32_linear_bytes = 4 * sum(inventory.values())
    model = scheme.apply(model, "cpu", scheme.compute_dtype("cpu"))
    return scheme, model, prove(model, scheme, inventory, params, scheme.compute_dtype("cpu")), fp32_linear_bytes


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


@pytest.mark.parametrize("name", CPU_CONFIG)
def test_a_checkpoint_reaches_its_scheme_through_the_quantization_config(name, tmp_path, monkeypatch):
    """prepare() hands the scheme's transformers config to from_pretrained (seen there), and what loads is proven
    quantised, in the compute dtype, without a transform afterwards."""
    import transformers
    from omegaconf import OmegaConf

    from harness.precision.prepare import prepare

    folder = tmp_path / "ckpt"
    tiny_llama().to(torch.bfloat16).save_pretrained(folder)
    from harness.models.local_tokenizer import local_tokenizer

    local_tokenizer(1024).save_pretrained(folder)
    seen = []
    real = transformers.modeling_utils.PreTrainedModel.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(kwargs.get("quantization_config"))
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.modeling_utils.PreTrainedModel, "from_pretrained", classmethod(spy))
    scheme = get_scheme(name)
    cfg = OmegaConf.create({"model": {"name": "hf", "source": "hub", "id": str(folder)}, "seed": 0, "engine": {}})
    prepared = prepare(cfg, scheme, "cpu")
    assert prepared.plan.how == "load-time config" and prepared.plan.transform is None
    assert any(type(c).__name__ == type(prepared.plan.quantization_config).__name__ for c in seen if c is not None)
    assert prepared.proof.quantized_fraction > 0.5 and prepared.proof.linear_bits_per_weight < scheme.bits * 1.6
    assert prepared.plan.compute_dtype == scheme.compute_dtype("cpu")
    assert TorchEngine(prepared.model).generate(torch.tensor([[1, 2, 3]]), 3).shape == (1, 3)


def test_a_transform_scheme_reads_a_bf16_checkpoint_in_bf16_and_widens_one_layer_at_a_time(tmp_path):
    """int8-dynamic computes in fp32: its plan reads a bf16 checkpoint as bf16 (never a whole fp32 copy), then each
    linear is quantised and the rest widened."""
    from omegaconf import OmegaConf

    from harness.precision.plan import plan_for
    from harness.precision.prepare import prepare

    scheme = get_scheme("int8-dynamic")
    assert plan_for(scheme, "cpu", "hub", "bfloat16").load_dtype == "bfloat16"
    assert plan_for(scheme, "cpu", "hub", "float32").load_dtype == "float32"
    folder = tmp_path / "ckpt"
    tiny_llama().to(torch.bfloat16).save_pretrained(folder)
    from harness.models.local_tokenizer import local_tokenizer

    local_tokenizer(1024).save_pretrained(folder)
    cfg = OmegaConf.create({"model": {"name": "hf", "source": "hub", "id": str(folder)}, "seed": 0, "engine": {}})
    prepared = prepare(cfg, scheme, "cpu")
    assert prepared.plan.how == "transform after load" and prepared.plan.load_dtype == "bfloat16"
    assert prepared.proof.quantized_fraction > 0.5
    floats = {p.dtype for p in prepared.model.parameters() if p.is_floating_point()}
    assert floats == {torch.float32}, floats


def test_proof_catches_a_silently_skipped_layer():
    scheme = get_scheme("torchao-int8wo")
    model = tiny_llama()
    inventory, params = linear_inventory(model), count_params(model)
    skipped = model.model.layers[1].mlp.down_proj
    model = scheme.apply(model, "cpu", "float32")
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


def test_every_scheme_is_a_precision_option_from_the_registry_alone():
    from pathlib import Path

    from hydra.core.config_store import ConfigStore

    from harness.api import compose

    assert not list((Path(__file__).resolve().parents[2] / "conf" / "precision").glob("*.yaml"))  # no copies to keep
    assert compose(["model=tiny-random", "precision=bnb-nf4"]).precision.name == "bnb-nf4"
    options = {name.removesuffix(".yaml") for name in ConfigStore.instance().list("precision")}
    assert options == set(all_schemes())


def test_a_scheme_names_one_of_the_load_plans():
    from harness.precision.registry import HOWS, Scheme

    with pytest.raises(ValueError, match="how='quantise' is not one of dtype, direct, transformers-config"):
        Scheme("x", 4, "lib", ("cpu",), "quantise")
    assert {s.how for s in all_schemes().values()} <= set(HOWS)


def test_a_shape_the_scheme_cannot_quantise_is_unavailable_with_its_reason():
    scheme = get_scheme("torchao-int4wo")
    assert scheme.fits(tiny_llama(hidden=128, inter=256).config) is None
    why = scheme.fits(tiny_llama(hidden=192, inter=384).config)  # 192 = 1.5 x 128, like SmolLM2's 576
    assert "group size 128 does not divide" in why and "192" in why and "torchao-int4wo-g64" in why
    assert get_scheme("torchao-int4wo-g64").fits(tiny_llama(hidden=192, inter=384).config) is None
