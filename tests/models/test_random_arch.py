"""Architecture-only models carry the published parameter counts; sizes that cannot fit are refused before loading."""
import pytest
import torch
from omegaconf import OmegaConf

from harness.models import ModelLoadError
from harness.models.random_arch import build_config, load
from harness.precision.proof import count_params

from tests.conftest import ROOT

# parameter counts published on the model cards / in the configs' checkpoints
PUBLISHED = {"llama-3.1-8b-arch": 8_030_261_248, "llama-3.2-1b-arch": 1_235_814_400,
             "qwen2.5-0.5b-arch": 494_032_768, "qwen2.5-3b-arch": 3_085_938_688,
             "smollm2-360m-arch": 361_821_120, "smollm2-1.7b-arch": 1_711_376_384,
             "llama-3.2-3b-arch": 3_212_749_824, "qwen2.5-14b-arch": 14_770_033_664}


def _cfg(name):
    return OmegaConf.load(ROOT / "conf" / "model" / f"{name}.yaml")


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name):
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(build_config(_cfg(name)))
    assert count_params(model) == PUBLISHED[name]


def test_too_large_a_model_is_refused_before_loading(monkeypatch):
    import psutil

    class Small:
        available = 2 * 2**30

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Small())
    with pytest.raises(ModelLoadError, match="refusing to load"):
        load(_cfg("llama-3.1-8b-arch"))


RSS_PROBE = """
import resource, sys
from omegaconf import OmegaConf
from harness.models.random_arch import load
import transformers.models.llama.modeling_llama
cfg = OmegaConf.create({"name": "probe", "source": "random", "seed": 0, "arch": {
    "model_type": "llama", "vocab_size": 4096, "hidden_size": 512, "intermediate_size": 2048,
    "num_hidden_layers": 16, "num_attention_heads": 8, "num_key_value_heads": 8}})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
model = load(cfg, dtype=sys.argv[1]).model
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
print(sum(p.numel() for p in model.parameters()), grown, {str(p.dtype) for p in model.parameters()})
"""


def test_architecture_only_weights_are_created_in_the_target_dtype():
    """bf16 weights are made as bf16: the process never holds an fp32 copy of the model (peak RSS, in a child)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", RSS_PROBE, "bfloat16"], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.split("\n")[-2]
    params, grown, dtypes = out.split(" ", 2)
    assert dtypes == "{'torch.bfloat16'}"
    fp32_bytes = int(params) * 4
    assert int(grown) < 0.6 * fp32_bytes, f"grew {int(grown) / 1e6:.0f} MB; fp32 weights are {fp32_bytes / 1e6:.0f} MB"


def test_random_weights_do_not_depend_on_the_dtype():
    """The bf16 model is its fp32 twin cast: quality against the fp32 baseline means what it means on real weights."""
    cfg = _cfg("smollm2-360m-arch")
    cfg.arch.num_hidden_layers = 1
    a = load(cfg, dtype="float32").model
    b = load(cfg, dtype="bfloat16").model
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa.to(torch.bfloat16), pb), name
