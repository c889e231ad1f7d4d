"""Shared set-up for the benchmark scripts: the embedded model, loaded through the harness's own loader."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]


def load(model: str = "smollm2-135m", precision: str = "fp32", decode: str = "eager"):
    """(model, tokenizer, torch engine) of `model` in `precision`, prepared as a run prepares it (its load plan)."""
    from harness.engines.torch_engine import TorchEngine
    from harness.precision.prepare import prepare
    from harness.precision.registry import get_scheme

    prepared = prepare(compose(f"model={model}", f"precision={precision}", "device=cpu"), get_scheme(precision), "cpu")
    tok = prepared.tokenizer
    return prepared.model.eval(), tok, TorchEngine(prepared.model, pad_id=tok.eos_token_id or 0, decode=decode)


def compose(*overrides: str):
    """The run configuration the CLI would compose from these overrides (conf/)."""
    from harness.api import compose as harness_compose

    return harness_compose(list(overrides))
