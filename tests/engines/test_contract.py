"""The engine contract, run against every registered engine: greedy tokens, log-probs equal to a plain forward of
the same weights, one hook call per token, memory accounting, close. Engines are built through `build_engine`, the
one place a run builds them: torch on the tiny random model, llama.cpp on SmolLM2's GGUF at f16 (compared with the
fp32 model dequantised from the same GGUF)."""
import pytest
import torch

from harness.engines.base import Engine, build_engine, engine_names, resolve_engine
from harness.core.errors import Unavailable
from harness.precision.registry import get_scheme

from tests.conftest import ROOT, run_harness

CASES = {  # engine -> (model, precision, log-prob tolerance against the plain fp32 forward)
    "torch": ("tiny-random", "fp32", 1e-4),
    "llamacpp": ("smollm2-135m", "gguf-f16", 0.05),  # f16 weights, llama.cpp kernels vs fp32 torch: 0.013 seen
    "onnxruntime": ("tiny-random", "ort-fp32", 1e-4),  # the builder's fp32 graph of the same weights
    "openvino": ("tiny-random", "ov-fp32", 1e-4),  # the exporter's fp32 model, run in f32
    "vllm": ("tiny-random", "fp32", 1e-3),  # vLLM's own CPU kernels on the fp32 weights
}
NEEDS = {"llamacpp": ("llama_cpp", "llama-cpp-python not installed (make llamacpp)"),
         "onnxruntime": ("onnxruntime_genai", "onnxruntime-genai not installed (pip install -e '.[onnxruntime]')"),
         "openvino": ("openvino", "openvino not installed (make openvino)")}


from tests.conftest import compose_run as _cfg  # noqa: E402


def test_every_registered_engine_has_a_contract_case():
    assert sorted(CASES) == engine_names()


@pytest.fixture(scope="module", params=sorted(CASES))
def built(request):
    name = request.param
    if name in NEEDS:
        pytest.importorskip(NEEDS[name][0], reason=NEEDS[name][1])
    if name == "openvino":
        from harness.precision.openvino import exporter_python

        if not exporter_python().exists():
            pytest.skip("the OpenVINO exporter's environment is missing (make openvino)")
    if name == "vllm":
        from harness.engines.vllm_process import vllm_python

        if not vllm_python().exists():
            pytest.skip("vLLM's environment is missing (make vllm)")
    model, precision, tol = CASES[name]
    cfg = _cfg(model, precision, name)
    scheme = get_scheme(precision)
    b = build_engine(cfg, scheme, "cpu", resolve_engine(name, scheme))
    plain = build_engine(_cfg(model, "fp32", "torch"), get_scheme("fp32"), "cpu", "torch")  # the plain forward
    yield name, b, plain.engine.model, tol
    b.engine.close()


def test_the_engine_is_an_engine_with_declared_capabilities(built):
    name, b, _, _ = built
    assert isinstance(b.engine, Engine) and b.engine.name == name
    assert b.load_s > 0 and b.source_weights and b.weights in ("real", "random") and b.tokenizer is not None


def test_greedy_tokens_with_one_hook_call_per_token_agree_with_its_log_probs(built):
    _, b, _, _ = built
    engine = b.engine
    prompt = [t % engine.vocab_size for t in (1, 504, 3458, 282, 4649, 314, 17, 29)]
    calls = []
    out = engine.generate(torch.tensor([prompt]), 6, on_token=lambda: calls.append(1))
    assert out.shape == (1, 6) and len(calls) == 6
    tokens = out[0].tolist()
    for i, tok in enumerate(tokens):  # each greedy token is the argmax of the engine's own log-probs there
        seq = prompt + tokens[:i]
        (lp,) = engine.logprobs([seq + [0]], [[len(seq) - 1]])
        assert int(lp[0].argmax()) == tok


def test_n_sequences_decoded_together_give_each_the_tokens_it_gets_alone(built):
    """Different prompts of one length in one batch (the torch engine's batch; llama.cpp's n sequence ids in one
    llama_batch): per sequence, the same greedy tokens as decoding it alone, and one hook call per step."""
    from harness.measure.speed import distinct_prompts

    _, b, _, _ = built
    engine = b.engine
    prompts = distinct_prompts(b.tokenizer, 24, 4, engine.vocab_size)
    assert len({tuple(p) for p in prompts.tolist()}) == 4  # different prompts, not one copied
    calls = []
    together = engine.generate(prompts, 12, on_token=lambda: calls.append(1))
    assert together.shape == (4, 12) and len(calls) == 12
    alone = torch.cat([engine.generate(prompts[i:i + 1], 12) for i in range(4)])
    assert torch.equal(together, alone)
    assert torch.equal(engine.generate(prompts[:2], 12), together[:2])  # the context is reused at a smaller level


def test_log_probs_equal_a_plain_forward_of_the_same_weights(built):
    _, b, model, tol = built
    seq = [t % b.engine.vocab_size for t in (1, 504, 3458, 282, 4649, 314, 17, 29, 1000, 7)]
    positions = [3, 5, 8]
    (lp,) = b.engine.logprobs([seq], [positions])
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.tensor([seq])).logits[0].float(), -1)[positions]
    assert lp.shape == ref.shape
    if b.engine.capabilities.full_logprobs:
        top = ref.topk(20, dim=-1).indices  # where the probability mass is
    else:  # an engine that returns the actual next token's log-prob and its top-1 only: those two are compared
        top = torch.stack([torch.tensor([seq[p + 1] for p in positions]), ref.argmax(-1)], 1)
        assert torch.isinf(lp).sum(-1).min() >= lp.shape[1] - 2  # nothing else is claimed
    assert (lp.gather(1, top) - ref.gather(1, top)).abs().max() < tol
    assert torch.equal(lp.argmax(-1), ref.argmax(-1))


def test_continuations_on_a_shared_context_equal_a_plain_forward_of_each(built):
    """Engines that declare shared_context: several questions in one call, each context computed once, give each
    continuation the summed log-probability a plain forward of context + continuation gives."""
    _, b, model, tol = built
    if not b.engine.capabilities.shared_context:
        pytest.skip(f"the {b.engine.name} engine does not declare shared_context")
    v = b.engine.vocab_size
    items = [([1, 504 % v, 3458 % v, 282], [[17, 29, 7], [4649 % v], [314, 1000 % v]]),
             ([9, 8, 7, 6, 5, 4], [[3, 2], [1, 2, 3, 4]])]
    got = b.engine.continuation_logprobs(items)
    for (ctx, conts), lls in zip(items, got):
        for cont, ll in zip(conts, lls):
            with torch.no_grad():
                lp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].float(), -1)
            assert ll == pytest.approx(sum(float(lp[len(ctx) - 1 + k, t]) for k, t in enumerate(cont)), abs=tol * 4)


def test_memory_accounting(built):
    name, b, _, _ = built
    engine, weights = b.engine, b.proof.weight_bytes
    assert weights > 0 and engine.kv_bytes_per_token() > 0
    if name != "torch":
        pytest.skip("the KV cache is measured from the torch engine's own cache tensors; the runtimes hide theirs")
    from harness.engines.torch_engine import returned_cache

    with torch.no_grad():  # the bytes the cache really holds after 100 tokens of 2 sequences
        cache = returned_cache(engine.model(input_ids=torch.ones((2, 100), dtype=torch.long), use_cache=True))
    held = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert held == 2 * 100 * engine.kv_bytes_per_token()
    emb = engine.model.get_input_embeddings().weight  # tied in tiny-random: no lookup-only bytes to leave out
    assert engine.lookup_only_bytes() == (0 if engine.model.config.tie_word_embeddings else emb.numel() * 4)


def test_close_frees_and_is_harmless_twice():
    cfg = _cfg("tiny-random", "fp32", "torch")
    b = build_engine(cfg, get_scheme("fp32"), "cpu", "torch")
    assert b.engine.generate(torch.tensor([[1, 2, 3]]), 2).shape == (1, 2)
    import gc
    import weakref

    model = weakref.ref(b.engine.model)
    b.engine.close()
    b.engine.close()
    b = None
    gc.collect()
    assert model() is None  # nothing holds the weights any more: their memory is returned


@pytest.mark.parametrize("engine, precision", [("llamacpp", "fp32"), ("torch", "gguf-q8_0")])
def test_an_impossible_engine_and_scheme_pair_is_unavailable_before_loading(tmp_path, engine, precision):
    with pytest.raises(Unavailable, match="engine"):
        resolve_engine(engine, get_scheme(precision))
    out = tmp_path / "r.csv"
    run_harness("model=tiny-random", f"engine={engine}", f"precision={precision}", "eval=none", "quality=none",
                f"results.path={out}")
    from harness.record.store import read_rows

    (row,) = read_rows(out)
    assert row["status"] == "unavailable" and "engine" in row["error"] and row["engine"] == engine
    assert row["load_s"] == ""  # nothing was loaded


def test_continuous_batching_gives_each_request_its_tokens_alone(built):
    """Every engine that declares continuous batching: requests submitted together, and one arriving mid-decode, each
    get the greedy tokens of decoding it alone; the late short request finishes before the long running one."""
    import threading

    name, b, _, _ = built
    if not b.engine.capabilities.continuous_batching:
        pytest.skip(f"the {name} engine does not declare continuous batching")
    engine = b.engine
    prompts = [[1, 5, 9, 33, 100, 7], [7, 8, 9], [200, 300, 400, 500, 600, 700, 12]]
    alone = [engine.generate(torch.tensor([p]), 6)[0].tolist() for p in prompts]
    server = engine.server()
    done, order, first = {}, [], threading.Event()
    try:
        def submit(i, p, n, on_first=lambda: None):
            server.submit(i, p, n, on_first, lambda n_tokens, i=i: (order.append(i), done.setdefault(i, n_tokens)))

        for i, p in enumerate(prompts):
            submit(i, p, 6)
        server.wait_idle()
        got = [server.tokens[f"r{i}"] for i in range(3)]
        # a long request is decoding ... (1500 tokens: vLLM decodes the tiny model at hundreds of tokens a second, so
        # 200 could end on a busy machine before the short request's submission reached the server)
        submit(10, prompts[0], 1500, on_first=first.set)
        assert first.wait(60)
        submit(11, prompts[1], 3)  # ... when a short one arrives: it joins and leaves first
        server.wait_idle()
    finally:
        server.close()
    assert got == alone
    assert server.tokens["r11"] == alone[1][:3] and order.index(11) < order.index(10)
