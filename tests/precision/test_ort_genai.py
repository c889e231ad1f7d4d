"""ONNX Runtime schemes on the tiny model: converted by onnxruntime-genai's builder, proven from the ONNX graph
(MatMulNBits with the scheme's bits, bytes that match), run by the onnxruntime engine, and the quality of each
against the plain fp32 forward of the same weights; the unavailable path when the runtime is missing."""
import pytest
import torch

from harness.precision.registry import get_scheme, unavailable_reason

from tests.conftest import run_harness
from tests.engines.test_contract import _cfg

og = pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai not installed (pip install -e '.[onnxruntime]')")

SEQ = [t % 1024 for t in (1, 504, 3458, 282, 4649, 314, 17, 29, 1000, 7, 88, 901, 3, 640, 12, 5)]  # tiny vocab


@pytest.fixture(scope="module")
def plain():
    from harness.engines.base import build_engine

    return build_engine(_cfg("tiny-random", "fp32", "torch"), get_scheme("fp32"), "cpu", "torch").engine.model


def _quality(engine, model):
    """(KLD of the engine's next-token distribution from the plain fp32 one, top-1 agreement), over SEQ."""
    positions = list(range(len(SEQ) - 1))
    (lp,) = engine.logprobs([SEQ], [positions])
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.tensor([SEQ])).logits[0].float(), -1)[positions]
    kld = float((ref.exp() * (ref - lp)).sum(-1).mean())
    return kld, float((lp.argmax(-1) == ref.argmax(-1)).float().mean())


@pytest.mark.parametrize("name, bits, max_kld", [("ort-fp32", None, 1e-6), ("ort-int8", 8, 1e-3),
                                                  ("ort-int4", 4, 0.05)])
def test_converted_proven_and_measured(plain, name, bits, max_kld):
    from harness.engines.base import build_engine

    scheme = get_scheme(name)
    built = build_engine(_cfg("tiny-random", name, "onnxruntime"), scheme, "cpu", "onnxruntime")
    proof = built.proof
    assert built.convert_s > 0 and "onnxruntime-genai" in built.baseline
    if bits is None:
        assert proof.quantized_params == 0 and "decoder MatMul FLOAT" in proof.types
        assert proof.linear_bits_per_weight == pytest.approx(32.0)
    else:
        assert f"decoder MatMulNBits int{bits} block 32 x10" in proof.types  # 2 layers x (qkv, o, gate, up, down)
        # bits per decoder weight: the packed bits plus one fp32 scale per block of 32
        assert proof.linear_bits_per_weight == pytest.approx(bits + 32 / 32, abs=0.01)
        assert proof.quantized_fraction > 0.5
    kld, top1 = _quality(built.engine, plain)
    assert kld <= max_kld and top1 >= (1.0 if bits is None else 0.8)
    built.engine.close()


def test_unavailable_when_the_runtime_is_missing(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime_genai" else
                        real(name, *a))
    why = unavailable_reason(get_scheme("ort-int4"), "cpu")
    assert "onnxruntime_genai" in why and ".[onnxruntime]" in why


def test_a_model_the_builder_cannot_convert_is_a_row_that_says_why(tmp_path):
    """Gemma 3's config as transformers 5.24 writes it (rope parameters per layer type) is not one the builder reads:
    the row is unavailable with the builder's own error, not a failure."""
    out = tmp_path / "r.csv"
    run_harness("model=tiny-random", "model.arch.model_type=gemma3_text", "+model.arch.head_dim=32",
                "+model.arch.sliding_window=16", "precision=ort-fp32", "eval=none", "quality=none",
                "bench.repeats=1", f"results.path={out}")
    from harness.record.store import read_rows

    (row,) = read_rows(out)
    assert row["status"] == "unavailable" and "model builder" in row["error"] and row["engine"] == "onnxruntime"
