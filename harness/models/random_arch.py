"""Architecture-only models: a published (or tiny) config with seeded random weights, for tests and for a size axis
of speed and memory. The weights are created where they run, in the dtype they run in. Rows are marked weights=random; accuracy and quality are left empty for them (except the
tiny test model, whose numbers are only used to check plumbing)."""
from __future__ import annotations

import psutil

from harness.config.schema import ModelConfig
from harness.core.errors import ModelLoadError
from harness.models.loaded import LoadedModel
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


def device_free_bytes(device: str) -> int:
    """Memory a new allocation can get on `device`: free GPU memory, or the host's available memory."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.mem_get_info()[0]
    return psutil.virtual_memory().available


def load(model_cfg, device: str = "cpu", dtype: str = "float32") -> LoadedModel:
    """Seeded random weights created directly on `device` in `dtype` (the scheme's): an 8B model on a GPU in bf16
    is 16 GB allocated there in seconds, never a 32 GB fp32 copy on the host or a checkpoint on disk. Load-time
    quantisation configs do not apply here: the torch engine quantises such a model in place (see precision/bnb.py)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = build_config(model_cfg)
    torch_dtype = getattr(torch, dtype)
    need = estimate_params(config) * torch_dtype.itemsize * 1.15  # the weights plus working room
    avail = device_free_bytes(device)
    if need > avail:
        where = "on the GPU" if device.startswith("cuda") else "available"
        raise ModelLoadError(
            f"{model_cfg.name}: about {need / 2**30:.1f} GiB needed for {dtype} random weights, "
            f"{avail / 2**30:.1f} GiB {where}; refusing to load (pick a smaller model)")
    m = ModelConfig.of(model_cfg)
    seed = m.seed
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    reseed_matrices(model, seed, float(getattr(config, "initializer_range", 0.02)))
    model.eval()
    tok = local_tokenizer(m.tokenizer_vocab)
    return LoadedModel(model=model, tokenizer=tok, name=model_cfg.name,
                       source_weights=f"seeded random weights (seed {seed}), created in {dtype} on {device}",
                       weights=m.weights)


def reseed_matrices(model, seed: int, std: float) -> None:
    """Give every weight matrix values that do not depend on the dtype it is stored in: drawn in fp32 from a
    generator seeded per tensor, then cast in place, one tensor at a time (the only fp32 copy is the tensor being
    filled). So a bf16 model is exactly its fp32 twin cast to bf16, as a real checkpoint cast would be, and quality
    against an fp32 baseline means the same as on real weights. Norms and biases keep their initial values."""
    import torch

    with torch.no_grad():
        for i, (_, p) in enumerate(model.named_parameters()):
            if p.dim() < 2:
                continue
            g = torch.Generator(device=p.device).manual_seed(seed * 1_000_003 + i)
            p.copy_(torch.randn(p.shape, generator=g, device=p.device, dtype=torch.float32).mul_(std))


def materialised(config, seed: int):
    """The seeded random model saved once as a checkpoint folder in the cache, keyed by its config and seed, so that
    transformers' load-time quantisation (BitsAndBytesConfig) can apply to it exactly as to a real checkpoint."""
    import hashlib
    import json
    import os
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    from harness.core.paths import cache_dir

    from harness.core.cache_files import cache_write, checkpoint_folder_torn, record_folder_sizes, remove_stale_tmp

    key = hashlib.sha256(json.dumps({"config": config.to_dict(), "seed": seed, "values": "reseed_matrices-1"}, sort_keys=True, default=str)
                         .encode()).hexdigest()[:16]
    target = cache_dir("random-models") / f"{config.model_type}-{key}"
    if target.exists():
        why = checkpoint_folder_torn(target)
        if why is None:
            return target
        from harness.core.logs import get

        get(__name__).warning(f"cached model {target} {why}: building it again")
        shutil.rmtree(target, ignore_errors=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    reseed_matrices(model, seed, float(getattr(config, "initializer_range", 0.02)))
    remove_stale_tmp(target)  # left by a run killed while saving
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with cache_write(target, "the architecture-only model's random weights"):
            model.save_pretrained(tmp)
            record_folder_sizes(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written left under the cache
        raise
    try:
        os.replace(tmp, target)
    except OSError:  # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target

