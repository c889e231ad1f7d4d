"""Shared set-up for the benchmark scripts: the embedded model, loaded through the harness's own loader."""
from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]


def load(model: str = "smollm2-135m", precision: str = "fp32"):
    from harness.engines.torch_engine import TorchEngine
    from harness.models import load_model
    from harness.precision.registry import get_scheme

    loaded = load_model(OmegaConf.load(ROOT / "conf" / "model" / f"{model}.yaml"))
    scheme = get_scheme(precision)
    model_ = scheme.apply(loaded.model, "cpu") if scheme.apply else loaded.model
    tok = loaded.tokenizer
    return model_.eval(), tok, TorchEngine(model_, pad_id=tok.eos_token_id or 0)


def compose(*overrides: str):
    """The run configuration the CLI would compose from these overrides (conf/)."""
    from hydra import compose as _compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return _compose("config", overrides=list(overrides))
