"""Architecture-only models: a published (or tiny) config with seeded random weights, for tests and for a size axis
of speed and memory. Rows are marked weights=random; accuracy and quality are left empty for them (except the
tiny test model, whose numbers are only used to check plumbing)."""
from __future__ import annotations

import psutil

from harness.models import LoadedModel, ModelLoadError
from harness.models.local_tokenizer import local_tokenizer


def estimate_params(config) -> int:
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    heads, kv = config.num_attention_heads, getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or h // heads
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2
    mlp = 3 * h * i
    embed = config.vocab_size * h * (1 if getattr(config, "tie_word_embeddings", False) else 2)
    return n * (attn + mlp + 2 * h) + embed + h


def build_config(model_cfg):
    from transformers import AutoConfig

    arch = dict(model_cfg.arch)
    model_type = arch.pop("model_type")
    return AutoConfig.for_model(model_type, **arch)


def load(model_cfg, device: str = "cpu", load_kwargs: dict | None = None) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM

    config = build_config(model_cfg)
    need = estimate_params(config) * 4 * 1.3  # fp32 weights plus working room
    avail = psutil.virtual_memory().available
    if need > avail:
        raise ModelLoadError(
            f"{model_cfg.name}: about {need / 2**30:.1f} GiB needed for fp32 random weights, "
            f"{avail / 2**30:.1f} GiB available; refusing to load (pick a smaller model)")
    seed = int(model_cfg.get("seed", 0))
    if load_kwargs:  # a load-time scheme (bitsandbytes' config) applies only through from_pretrained
        folder = materialised(config, seed)
        model = AutoModelForCausalLM.from_pretrained(str(folder), **{"dtype": torch.float32, **load_kwargs})
    else:
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.eval()
    tok = local_tokenizer(int(model_cfg.get("tokenizer_vocab", 1024)))
    return LoadedModel(model=model, tokenizer=tok, name=model_cfg.name,
                       baseline=f"fp32 seeded random weights (seed {model_cfg.get('seed', 0)})",
                       weights=model_cfg.get("weights", "random"))


def materialised(config, seed: int):
    """The seeded random model saved once as a checkpoint folder in the cache, keyed by its config and seed, so that
    transformers' load-time quantisation (BitsAndBytesConfig) can apply to it exactly as to a real checkpoint."""
    import hashlib
    import json
    import os
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    from harness.paths import cache_dir

    key = hashlib.sha256(json.dumps({"config": config.to_dict(), "seed": seed}, sort_keys=True, default=str)
                         .encode()).hexdigest()[:16]
    target = cache_dir("random-models") / f"{config.model_type}-{key}"
    if (target / "config.json").exists():
        return target
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    try:
        os.replace(tmp, target)
    except OSError:  # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target

