"""Shared by the converted-engine scheme tests (ONNX Runtime, OpenVINO): the plain fp32 forward of the tiny model and
the quality of an engine's next-token distribution against it. Here, so that one runtime missing skips only its own
tests."""
import pytest
import torch

SEQ = [t % 1024 for t in (1, 504, 3458, 282, 4649, 314, 17, 29, 1000, 7, 88, 901, 3, 640, 12, 5)]  # tiny vocab


@pytest.fixture(scope="module")
def plain():
    from harness.engines.base import build_engine
    from harness.precision.registry import get_scheme
    from tests.conftest import compose_run as _cfg

    return build_engine(_cfg("tiny-random", "fp32", "torch"), get_scheme("fp32"), "cpu", "torch").engine.model


def quality(engine, model):
    """(KLD of the engine's next-token distribution from the plain fp32 one, top-1 agreement), over SEQ."""
    positions = list(range(len(SEQ) - 1))
    (lp,) = engine.logprobs([SEQ], [positions])
    with torch.no_grad():
        ref = torch.log_softmax(model(torch.tensor([SEQ])).logits[0].float(), -1)[positions]
    kld = float((ref.exp() * (ref - lp)).sum(-1).mean())
    return kld, float((lp.argmax(-1) == ref.argmax(-1)).float().mean())
