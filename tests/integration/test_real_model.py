"""The loader works on the real embedded model (SmolLM2-135M from its PyPI GGUF): small and few tokens."""
import pytest
import torch

from harness.engines.torch_engine import TorchEngine
from harness.evaluate.accuracy import evaluate_task
from harness.models import ModelLoadError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def smollm():
    from omegaconf import OmegaConf

    from harness.models import load_model

    cfg = OmegaConf.load(__import__("pathlib").Path(__file__).resolve().parents[2] / "conf/model/smollm2-135m.yaml")
    return load_model(cfg)


def test_real_model_loads_with_an_honest_baseline(smollm):
    assert smollm.source_weights == "fp32 dequantised from Q4_1 GGUF"
    n = sum(p.numel() for p in smollm.model.parameters())
    assert 130e6 < n < 140e6
    assert next(smollm.model.parameters()).dtype == torch.float32


def test_real_model_generates_and_scores(smollm):
    engine = TorchEngine(smollm.model, pad_id=smollm.tokenizer.eos_token_id)
    ids = torch.tensor([smollm.tokenizer.encode("The capital of France is")])
    text = smollm.tokenizer.decode(engine.generate(ids, 4)[0])
    assert "Paris" in text
    metrics, preds = evaluate_task(engine, smollm.tokenizer, "mmlu", shots=1, per_group=1, batch_size=8,
                                   progress=False)
    assert metrics["n"] == 57 and all(len(p["loglikelihoods"]) == 4 for p in preds)


def test_corrupt_gguf_gives_a_clear_message(tmp_path):
    from harness.models.packaged_gguf import check_gguf

    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"NOTGGUF" + b"\0" * 4096)
    with pytest.raises(ModelLoadError, match="not a valid GGUF"):
        check_gguf(bad)
