"""The calibrated schemes: llm-compressor's oneshot in its own environment, on the tiny model (a few seconds each),
cached like a conversion, and proven from the checkpoint's own tensors (packed int32 words, int8 or fp8 weights,
scales, group size). A float checkpoint fails the proof."""
import json

import pytest

from harness.core.errors import ProofError
from harness.precision.calibrated import CALIBRATED, calibrator_python, ct_proof, safetensors_headers

pytestmark = pytest.mark.skipif(not calibrator_python().exists(),
                                reason="llm-compressor's environment is missing (make llmcompressor)")

STORED = {"gptq-w4a16-g128": ("I32", 4, 128), "awq-w4a16-g128": ("I32", 4, 128), "gptq-w4a16-g64": ("I32", 4, 64),
          "awq-w4a16-g64": ("I32", 4, 64), "w8a8-int8": ("I8", 8, None),
          "fp8-dynamic": ("F8_E4M3", 8, None), "rtn-w4a16-g64": ("I32", 4, 64), "rtn-w4a16-g128": ("I32", 4, 128), "rtn-w4a16-asym-g64": ("I32", 4, 64),
          "w8a8-int8-naive": ("I8", 8, None)}


@pytest.fixture(scope="module")
def tiny_folder():
    from omegaconf import OmegaConf

    from harness.models.checkpoint import checkpoint
    from tests.conftest import ROOT

    return checkpoint(OmegaConf.load(ROOT / "conf" / "model" / "tiny-random.yaml")).folder


@pytest.mark.parametrize("scheme", sorted(CALIBRATED))
def test_each_scheme_is_calibrated_once_and_proven_from_its_tensors(scheme, tiny_folder):
    from harness.precision.calibrated import calibrated

    first = calibrated(tiny_folder, scheme)
    again = calibrated(tiny_folder, scheme)
    assert again.cached and again.folder == first.folder and again.convert_s == first.convert_s
    proof = ct_proof(first.folder, scheme, 430_000)
    dtype, bits, group = STORED[scheme]
    assert f"weight{'_packed' if bits == 4 else ''} {dtype} x14" in proof.types  # 2 layers x 7 linears
    h, inter, kv = 128, 256, 2 * 32  # tiny-random: hidden, MLP, kv heads x head dim; 2 layers
    assert proof.quantized_params == proof.linear_params == 2 * (2 * h * h + 2 * h * kv + 3 * h * inter)  # unpacked
    # the bytes follow the bits: 4-bit packed words plus an fp32 scale (and a 4-bit zero point) per group, or 8-bit
    # plus a scale per row
    over = (32 + 4) / group + 0.02 if group else 0.5
    assert bits - 0.01 < proof.linear_bits_per_weight < bits + over, proof.linear_bits_per_weight
    config = json.loads((first.folder / "config.json").read_text())["quantization_config"]
    weights = next(iter(config["config_groups"].values()))["weights"]
    assert weights["num_bits"] == bits
    if group:
        assert weights["group_size"] == group and f"group size {group}" in proof.types
    else:
        assert weights["strategy"] == ("tensor" if scheme.endswith("-naive") else "channel")
        assert "per channel" in proof.types
    calib = json.loads((first.folder / "calibration.json").read_text())
    from harness.precision.calibrated import NO_DATA

    assert calib["samples"] == (0 if scheme in NO_DATA else 64) and calib["seed"] == 0
    # loaded in bf16 for calibration: the tensors left unquantised (embedding, norms) are saved in bf16, not fp32
    tensors = safetensors_headers(first.folder)
    assert tensors["model.embed_tokens.weight"]["dtype"] == "BF16"
    assert {t["dtype"] for n, t in tensors.items() if n.endswith("norm.weight")} == {"BF16"}


def test_the_calibration_set_is_configurable_and_named_in_the_row(tmp_path):
    from omegaconf import OmegaConf

    from harness.core.errors import Unavailable
    from harness.precision.calibrated import calibration_file, calibration_label, calibration_of

    c = calibration_of(OmegaConf.create({"calibration": {"samples": 128, "seq_len": 512}}))
    assert c == {"text": "openbookqa-train", "samples": 128, "seq_len": 512, "seed": 0}
    assert calibration_label(c, "gptq-w4a16-g128") == "openbookqa-train: 128 windows of 512 tokens, seed 0"
    assert calibration_file(c).name == "train.jsonl"
    mine = tmp_path / "c4-sample.jsonl"
    mine.write_text('{"text": "a line of my own data"}\n')
    assert calibration_file({**c, "text": str(mine)}) == mine
    with pytest.raises(Unavailable, match="no such file"):
        calibration_file({**c, "text": str(tmp_path / "none.txt")})


def test_a_float_checkpoint_fails_the_proof(tiny_folder):
    assert all(t["dtype"] == "F32" for t in safetensors_headers(tiny_folder).values())
    with pytest.raises(ProofError, match="compressed-tensors"):
        ct_proof(tiny_folder, "gptq-w4a16-g128", 430_000)


def test_a_calibrated_scheme_runs_on_vllm_end_to_end(tmp_path):
    """engine=vllm precision=w8a8-int8 on the tiny model: the row is ok, proven from the checkpoint, measured through
    vLLM's stream, with perplexity and top-1 agreement but no KLD (and why), and the server's own memory."""
    from harness.engines.vllm_process import vllm_python
    from harness.record.store import read_rows
    from tests.conftest import run_harness

    if not vllm_python().exists():
        pytest.skip("vLLM's environment is missing (make vllm)")
    out = tmp_path / "r.csv"
    run_harness("model=tiny-random", "precision=w8a8-int8", "engine=vllm", "eval=none", "quality.max_tokens=256",
                "quality.context=64", "bench.new_tokens=8", "bench.repeats=2", f"results.path={out}")
    (row,) = read_rows(out)
    assert row["status"] == "ok", row["error"]
    assert "weight I8 x14" in row["quantized_types"] and "vLLM 0.32.0" in row["quantized_types"]
    assert float(row["decode_tok_s"]) > 0 and float(row["engine_rss_mb"]) > 50
    assert row["kld_mean"] == "" and "no KLD" in row["quality_note"] and float(row["ppl"]) > 1
    assert 0 <= float(row["top1_agree"]) <= 1 and row["convert_s"] != ""


@pytest.mark.parametrize("scheme", ["gptq-w4a16-g128", "w8a8-int8"])
def test_a_calibrated_scheme_runs_on_the_torch_engine_decompressed_and_proven_in_memory(scheme, tmp_path):
    """transformers loads the compressed-tensors checkpoint and decompresses it to bf16: the row says so, the weights
    in memory still hold at most 2**bits values per group (grid_check), and quality has the full distributions (KLD)
    that vLLM's API cannot give."""
    from harness.record.store import read_rows
    from tests.conftest import run_harness

    out = tmp_path / "r.csv"
    run_harness("model=tiny-random", f"precision={scheme}", "engine=torch", "eval=none", "quality.max_tokens=256",
                "quality.context=64", "bench.new_tokens=8", "bench.repeats=2", f"results.path={out}")
    (row,) = read_rows(out)
    assert row["status"] == "ok", row["error"]
    most, bits = 16 if "w4" in scheme else 256, 4 if "w4" in scheme else 8
    assert "decompressed by compressed-tensors to bf16" in row["quantized_types"]
    assert f"(<= 2^{bits})" in row["quantized_types"] and "checkpoint: compressed-tensors" in row["quantized_types"]
    assert int(row["quantized_types"].split("at most ")[1].split()[0]) <= most
    assert float(row["kld_mean"]) > 0 and float(row["decode_tok_s"]) > 0


def test_grid_check_refuses_float_weights():
    """The same check on a model whose weights were never quantised: a group holds far more than 16 values."""
    import torch

    from harness.precision.calibrated import grid_check

    torch.manual_seed(0)
    layer = torch.nn.Linear(256, 8)
    layer.weight_scale = torch.nn.Parameter(torch.ones(8, 2), requires_grad=False)  # group 128
    model = torch.nn.ModuleDict({"layers": torch.nn.ModuleList([layer])})
    with pytest.raises(ProofError, match="distinct values in one group of 128"):
        grid_check(model, "gptq-w4a16-g128")
    with torch.no_grad():  # on a 4-bit grid it passes
        layer.weight.copy_(torch.randint(-8, 8, (8, 256)).float() * 0.01)
    assert grid_check(model, "gptq-w4a16-g128")[2] <= 16


def test_a_group_size_that_does_not_tile_the_model_is_refused_before_calibrating():
    """SmolLM2-135M's hidden size is 576 = 4.5 x 128: llm-compressor refuses group 128 there (after loading the model
    in a child); the harness says so first, naming the widths and the group size that fits."""
    from transformers import LlamaConfig

    from harness.precision.calibrated import group_fits

    smollm2 = LlamaConfig(hidden_size=576, intermediate_size=1536, num_attention_heads=9, num_key_value_heads=3)
    why = group_fits("gptq-w4a16-g128", smollm2)
    assert "(q/k/v/gate/up 576, o_proj 576) are not multiples of 128" in why and "gptq-w4a16-g64 fits" in why
    assert group_fits("gptq-w4a16-g64", smollm2) == "" and group_fits("w8a8-int8", smollm2) == ""
    gemma = LlamaConfig(hidden_size=640, intermediate_size=2048, num_attention_heads=4, head_dim=256)
    assert group_fits("awq-w4a16-g128", gemma) == ""


def test_an_asymmetric_checkpoint_on_the_torch_engine_is_unavailable_with_the_reason(tmp_path):
    """AWQ's checkpoint has zero points packed 8 to an int32; transformers 5.24 expects one per row and refuses every
    layer: the row is `unavailable`, says so and points to vLLM, which serves it."""
    from harness.record.store import read_rows
    from tests.conftest import run_harness

    out = tmp_path / "r.csv"
    run_harness("model=tiny-random", "precision=awq-w4a16-g128", "engine=torch", "eval=none", "quality=none",
                "bench.new_tokens=4", "bench.repeats=1", f"results.path={out}")
    (row,) = read_rows(out)
    assert row["status"] == "unavailable", row["error"]
    assert "zero points" in row["error"] and "packed 8 to an int32" in row["error"] and "vllm" in row["error"]


def test_a_checkpoint_published_quantised_runs_as_shipped_its_scheme_read_from_its_config(tmp_path, tiny_folder):
    """A compressed-tensors checkpoint as a user downloads it (here: one llm-compressor wrote, copied to a folder of
    its own, as model=hf model.id=<folder> reads it): as-shipped loads it unchanged, takes its bits from config.json
    and proves them from its tensors; a float checkpoint is unavailable to it, with the reason, and nothing runs."""
    import shutil

    from harness.precision.calibrated import calibrated
    from harness.record.store import read_rows
    from tests.conftest import run_harness

    published = tmp_path / "published-w4a16"
    shutil.copytree(calibrated(tiny_folder, "gptq-w4a16-g128").folder, published)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_folder / name).exists() and not (published / name).exists():
            shutil.copy(tiny_folder / name, published / name)
    out = tmp_path / "r.csv"
    run_harness("model=hf", f"model.id={published}", "precision=as-shipped", "engine=torch", "eval=none",
                "quality=none", "capability=none", "bench.new_tokens=8", "bench.repeats=2", f"results.path={out}")
    run_harness("model=hf", f"model.id={tiny_folder}", "precision=as-shipped", "engine=torch", "eval=none",
                "quality=none", "capability=none", f"results.path={out}")
    shipped, floats = read_rows(out)
    assert shipped["status"] == "ok", shipped["error"]
    assert float(shipped["scheme_bits"]) == 4 and "(<= 2^4)" in shipped["quantized_types"]
    assert "weight_packed I32 x14" in shipped["quantized_types"] and "group size 128" in shipped["quantized_types"]
    assert "quantised as published" in shipped["source_weights"] and float(shipped["decode_tok_s"]) > 0
    assert floats["status"] == "unavailable" and "declares no compressed-tensors quantization" in floats["error"]
