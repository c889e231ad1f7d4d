"""GGUF schemes through llama.cpp on the embedded model: requantised files hold the asked type and the proof counts
their bytes,
the engine generates and scores through the same interface as the torch engine."""
import pytest
import torch

from harness.precision.registry import get_scheme

pytestmark = [pytest.mark.integration, pytest.mark.llamacpp]
llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (make llamacpp)")



@pytest.fixture(scope="module")
def source():
    from harness.api import compose
    from harness.models.packaged_gguf import gguf_path

    return gguf_path(compose(["model=smollm2-135m"]).model)


@pytest.mark.parametrize("name, linear_type", [("gguf-q8_0", "Q8_0"), ("gguf-q4_0", "Q4_0"),
                                               ("gguf-q4_k_m", "Q4_K")])
def test_requantised_file_holds_the_asked_type_and_the_proof_counts_its_bytes(source, name, linear_type):
    from gguf import GGUFReader

    from harness.precision.gguf import LINEAR_SUFFIXES, gguf_proof, requantise

    scheme = get_scheme(name)
    path = requantise(source, scheme, threads=2)
    proof = gguf_proof(path, scheme)
    assert proof.quantized_fraction > 0.9
    tensors = GGUFReader(str(path)).tensors
    kinds = [t.tensor_type.name for t in tensors if t.name.endswith(LINEAR_SUFFIXES)]
    assert not {"F32", "F16", "BF16"} & set(kinds) and linear_type in kinds
    if not linear_type.endswith("_K"):  # K-quants fall back where a row is not a multiple of 256 (SmolLM2's 576)
        assert set(kinds) == {linear_type}
    # the proof's bytes are the file's tensor data: all of the file but its header and metadata
    data = sum(int(t.n_bytes) for t in tensors)
    assert proof.weight_bytes == data and data < path.stat().st_size < data + 8 * 2**20


def test_llamacpp_engine_generates_and_scores(source):
    from transformers import AutoConfig

    from harness.engines.llamacpp import LlamaCppEngine
    from harness.precision.gguf import requantise

    path = requantise(source, get_scheme("gguf-q8_0"), threads=2)
    cfg = AutoConfig.for_model("llama", num_attention_heads=9, num_key_value_heads=3, hidden_size=576,
                               num_hidden_layers=30)
    engine = LlamaCppEngine(path, threads=2, n_ctx=256, hf_config=cfg)
    out = engine.generate(torch.tensor([[1, 504, 3458, 282, 4649, 314]]), 4)
    assert out.shape == (1, 4)
    seq = [1, 504, 3458, 282, 4649, 314, 7042]
    (a,) = engine.logprobs([seq], [[4, 5]])
    (b,) = engine.logprobs([seq[:6] + [9]], [[4, 5]])  # reuses the shared prefix's cache
    assert a.shape == (2, engine.vocab_size)
    assert torch.allclose(a.exp().sum(-1), torch.ones(2), atol=1e-3)
    assert torch.allclose(a, b, atol=1e-4)
    engine._tokens = []  # no reuse: the whole sequence from scratch gives the same rows
    (c,) = engine.logprobs([seq], [[4, 5]])
    assert torch.allclose(a, c, atol=1e-4)
    prompt = [1, 504, 3458, 282, 4649, 314]
    first = engine.generate(torch.tensor([prompt]), 1)[0, 0]
    (d,) = engine.logprobs([prompt + [7]], [[5]])  # scoring agrees with greedy decoding on the next token
    assert int(d[0].argmax()) == int(first)


def test_gguf_scheme_on_a_model_without_gguf_is_unavailable(tmp_path):
    from tests.conftest import run_harness
    from harness.record.store import read_rows

    out = tmp_path / "r.csv"
    run_harness("model=tiny-random", "precision=gguf-q4_0", "bench=quick", "eval=none", f"results.path={out}")
    (row,) = read_rows(out)
    assert row["status"] == "unavailable" and "GGUF" in row["error"]
