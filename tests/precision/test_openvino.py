"""OpenVINO schemes on the tiny model: exported by optimum-intel in its own environment, proven from the OpenVINO
model (weight element types and bytes), run by the openvino engine, and the quality of each against the plain fp32
forward of the same weights; the unavailable path when the exporter's environment is missing."""
import pytest

from harness.precision.openvino import exporter_python
from harness.precision.registry import get_scheme

from tests.conftest import run_harness
from tests.conftest import compose_run as _cfg
from tests.precision.conftest import quality

pytest.importorskip("openvino", reason="openvino not installed (make openvino)")
needs_exporter = pytest.mark.skipif(not exporter_python().exists(),
                                    reason="the OpenVINO exporter's environment is missing (make openvino)")


KLD: dict[str, float] = {}  # filled by the parametrised test below, checked for order by the one after it


@needs_exporter
@pytest.mark.parametrize("name, kind, bits", [
    ("ov-fp32", "f32", 32.0), ("ov-fp16", "f16", 16.0), ("ov-int8", "u8", 8.0), ("ov-int4", "i4", 4.25),
    ("ov-int4-ch", "i4", 4.0)])
def test_exported_proven_and_measured(plain, name, kind, bits):
    from harness.engines.base import build_engine

    scheme = get_scheme(name)
    built = build_engine(_cfg("tiny-random", name, "openvino"), scheme, "cpu", "openvino")
    proof = built.proof
    assert built.convert_s > 0 and "optimum-intel" in built.source_weights
    assert f"OpenVINO decoder {kind} x14" in proof.types  # 2 layers x 7 linear layers, each stored as `kind`
    assert "runtime: inference f32, KV cache f32" in proof.types
    # decoder bits per weight: the stored bits plus scales (and zero points): at most 1 bit more here
    assert bits - 0.01 <= proof.linear_bits_per_weight <= bits + (0.01 if kind.startswith("f") else 1.0)
    assert proof.quantized_fraction == (0 if kind.startswith("f") else pytest.approx(1.0, abs=0.02))
    KLD[name], top1 = quality(built.engine, plain)
    if kind == "f32":  # the same weights and arithmetic: equal to float rounding
        assert KLD[name] < 1e-6 and top1 == 1.0
    built.engine.close()


@needs_exporter
def test_fewer_bits_lose_more():
    """Each integer format loses more than the wider one (no threshold fitted to these random weights)."""
    if len(KLD) != 5:
        pytest.skip("needs the five exports above")
    # fp32 and fp16 both sit at float rounding on these weights (their order there is noise)
    assert max(KLD["ov-fp32"], KLD["ov-fp16"]) < KLD["ov-int8"] < min(KLD["ov-int4"], KLD["ov-int4-ch"]), KLD


@needs_exporter
def test_data_aware_int4_calibrates_on_the_stated_set_and_is_keyed_by_it(plain):
    """ov-int4-awq: ov-int4's grid, compressed by NNCF's AWQ and scale estimation on the calibration set: proven from
    the OpenVINO model (every decoder linear int4), its calibration recorded beside it, and another calibration set
    another conversion (the cache key holds it); its loss on these random weights is measured, not ordered."""
    from harness.engines.base import build_engine
    from harness.precision.openvino import exporter_versions

    calibration = ["calibration.samples=8", "calibration.seq_len=32"]
    built = build_engine(_cfg("tiny-random", "ov-int4-awq", "openvino", *calibration), get_scheme("ov-int4-awq"),
                         "cpu", "openvino")
    assert "OpenVINO decoder i4 x14" in built.proof.types and built.proof.quantized_fraction == pytest.approx(1.0, abs=0.02)
    import json

    record = json.loads((built.engine.folder / "calibration.json").read_text())
    assert record["samples"] == 8 and record["seq_len"] == 32 and record["method"] == "awq + scale_estimation"
    kld, _ = quality(built.engine, plain)
    assert 0 < kld < 1.0  # quantised (not float-equal), and still the model
    built.engine.close()
    from harness.precision.calibrated import calibration_of

    cfg = _cfg("tiny-random", "ov-int4-awq", "openvino", *calibration)
    assert exporter_versions("ov-int4-awq", calibration_of(cfg)) != exporter_versions("ov-int4-awq", None)
    assert "calibration" not in exporter_versions("ov-int4")  # data-free schemes keep their cache keys


def test_unavailable_when_the_exporters_environment_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_OPENVINO_EXPORTER", str(tmp_path / "nowhere" / "python"))
    out = tmp_path / "r.csv"
    run_harness("model=tiny-random", "precision=ov-int8", "eval=none", "quality=none", f"results.path={out}")
    from harness.record.store import read_rows

    (row,) = read_rows(out)
    assert row["status"] == "unavailable" and "make openvino" in row["error"] and row["load_s"] == ""
