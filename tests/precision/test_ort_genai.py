"""ONNX Runtime schemes on the tiny model: converted by onnxruntime-genai's builder, proven from the ONNX graph
(MatMulNBits with the scheme's bits, bytes that match), run by the onnxruntime engine, and the quality of each
against the plain fp32 forward of the same weights; the unavailable path when the runtime is missing."""
import pytest

from harness.precision.registry import get_scheme, unavailable_reason

from tests.conftest import run_harness
from tests.conftest import compose_run as _cfg
from tests.precision.conftest import quality

og = pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai not installed (pip install -e '.[onnxruntime]')")

KLD: dict[str, float] = {}  # filled by the parametrised test below, checked for order by the last one


@pytest.mark.parametrize("name, bits", [("ort-fp32", None), ("ort-int8", 8), ("ort-int4", 4)])
def test_converted_proven_and_measured(plain, name, bits):
    from harness.engines.base import build_engine

    scheme = get_scheme(name)
    built = build_engine(_cfg("tiny-random", name, "onnxruntime"), scheme, "cpu", "onnxruntime")
    proof = built.proof
    assert built.convert_s > 0 and "onnxruntime-genai" in built.source_weights
    if bits is None:
        assert proof.quantized_params == 0 and "decoder MatMul FLOAT" in proof.types
        assert proof.linear_bits_per_weight == pytest.approx(32.0)
    else:
        assert f"decoder MatMulNBits int{bits} block 32 x10" in proof.types  # 2 layers x (qkv, o, gate, up, down)
        # bits per decoder weight: the packed bits plus one fp32 scale per block of 32
        assert proof.linear_bits_per_weight == pytest.approx(bits + 32 / 32, abs=0.01)
        assert proof.quantized_fraction > 0.5
    KLD[name], top1 = quality(built.engine, plain)
    if bits is None:  # the same weights and the same arithmetic: equal to float rounding
        assert KLD[name] < 1e-6 and top1 == 1.0
    built.engine.close()


def test_fewer_bits_lose_more():
    """The quantised files order as their bits say (no threshold fitted to these random weights)."""
    if set(KLD) != {"ort-fp32", "ort-int8", "ort-int4"}:
        pytest.skip("needs the three conversions above")
    assert KLD["ort-fp32"] < KLD["ort-int8"] < KLD["ort-int4"], KLD


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
