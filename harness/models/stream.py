"""Load a checkpoint folder with transformers' `from_pretrained`, its tensors streamed one at a time.

transformers memory-maps safetensors files; every page it reads stays resident (and counted in the process's RSS)
until the whole mapping is dropped, so a scheme that quantises while loading (BitsAndBytesConfig, TorchAoConfig,
QuantoConfig) peaks at the full 16-bit checkpoint plus its quantised copy. Here the same `from_pretrained` gets a
state dict of safetensors' own lazy slices read with `pread` (safetensors' `backend="pread"`), so each tensor is read
into ordinary memory when transformers asks for it, cast or quantised, and freed; glibc is told to give such large
blocks back to the system at once (`M_MMAP_THRESHOLD` during the load: by default it keeps freed blocks in its heap).
Measured on a SmolLM2-360M-shaped bf16 checkpoint (724 MB), growth of the peak RSS over the imports: torchao int8
weight-only 1,100 -> 603 MB, bnb NF4 990 -> 495 MB, bf16 894 MB (the weights themselves).

Written here rather than taken from a library because transformers offers no switch for it (`disable_mmap` reads
each file whole into memory). Checkpoints without safetensors, and models whose code comes from the hub
(`trust_remote_code`), take transformers' own path unchanged."""
from __future__ import annotations

import ctypes
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.core.errors import ModelLoadError

M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
_LOADING_THRESHOLD = 1 << 16  # blocks of 64 KiB and more are mapped, so a freed tensor leaves the process at once
_AFTER_THRESHOLD = 32 << 20  # afterwards: glibc's own ceiling of its dynamic threshold on 64-bit


class _LazyStateDict(dict):
    """`from_pretrained` deep-copies its keyword arguments; the slices it holds cannot be copied (nor need to be)."""

    def __deepcopy__(self, memo):
        return self


def safetensors_files(folder: Path) -> list[Path]:
    """The checkpoint's safetensors shards: those its index names, else model.safetensors, else every such file."""
    index = folder / "model.safetensors.index.json"
    if index.exists():
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{index} is not a readable safetensors index ({type(exc).__name__}: {exc})") from None
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise ModelLoadError(f"{folder.name}: the safetensors index names {len(missing)} missing shard(s), "
                                 f"e.g. {missing[0]} (an interrupted download?)")
        return [folder / n for n in names]
    single = folder / "model.safetensors"
    return [single] if single.is_file() else sorted(folder.glob("*.safetensors"))


def storage_dtype(folder: Path) -> str:
    """The float dtype most of the checkpoint's bytes are stored in (from the safetensors headers), e.g. 'bfloat16';
    the config's declared dtype where the folder has no safetensors."""
    names = {"F32": "float32", "BF16": "bfloat16", "F16": "float16", "F64": "float64"}
    counts: dict[str, int] = {}
    for path in safetensors_files(folder):
        for t in _header(path).values():
            if isinstance(t, dict) and t.get("dtype") in names:
                start, end = t["data_offsets"]
                counts[names[t["dtype"]]] = counts.get(names[t["dtype"]], 0) + end - start
    if counts:
        return max(counts, key=counts.get)
    config = json.loads((folder / "config.json").read_text())
    declared = config.get("dtype") or config.get("torch_dtype") or "float32"
    return str(declared).replace("torch.", "")


def _header(path: Path) -> dict:
    import struct

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def _mallopt(param: int, value: int) -> None:
    try:
        ctypes.CDLL("libc.so.6").mallopt(param, value)
    except (OSError, AttributeError):  # not glibc: the load still works, with glibc-less memory behaviour
        pass


def malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@contextmanager
def _freed_blocks_returned():
    _mallopt(M_MMAP_THRESHOLD, _LOADING_THRESHOLD)
    try:
        yield
    finally:
        _mallopt(M_MMAP_THRESHOLD, _AFTER_THRESHOLD)
        malloc_trim()


def load_folder(folder: Path, dtype: str, quantization_config: Any = None, device_map: Any = None,
                max_memory: dict | None = None, trust_remote_code: bool = False):
    """The causal LM in `folder`, its floating tensors in `dtype` (or quantised by `quantization_config` while
    loading), placed by `device_map` (None: the host; "auto" with `max_memory`: accelerate's planner over the GPUs).
    Raises ModelLoadError naming the folder."""
    import torch
    import transformers
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if device_map is not None:
        kwargs["device_map"] = device_map
    if max_memory:
        kwargs["max_memory"] = max_memory
    files = safetensors_files(folder)
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
        model_class = transformers.MODEL_FOR_CAUSAL_LM_MAPPING.get(type(config), None)
        if not files or trust_remote_code or model_class is None:
            return AutoModelForCausalLM.from_pretrained(str(folder), trust_remote_code=trust_remote_code, **kwargs)
        handles, state = [], _LazyStateDict()
        with _freed_blocks_returned():
            try:
                for path in files:
                    handle = safe_open(str(path), framework="pt", device="cpu", backend="pread")
                    handles.append(handle)
                    for key in handle.keys():
                        state[key] = handle.get_slice(key)
                model = model_class.from_pretrained(None, config=config, state_dict=state, **kwargs)
            finally:
                state.clear()
                for handle in handles:
                    handle.__exit__(None, None, None)
        return model
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the folder named
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(f"could not load the checkpoint {folder.name}: {type(exc).__name__}: {first}") from exc
