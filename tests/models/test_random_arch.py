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
             "smollm2-360m-arch": 361_821_120, "smollm2-1.7b-arch": 1_711_376_384}


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
