"""Run in the calibrating environment (.venv-llmcompressor), not imported by the harness: llm-compressor's `oneshot`
on a checkpoint folder with one of the recipes below, saved as a compressed-tensors checkpoint (the format vLLM
serves). Standalone on purpose: that environment has llm-compressor's transformers (<= 5.17), not this project's.

usage: python llmcompressor_oneshot.py SCHEME SOURCE_DIR OUT_DIR CALIBRATION_JSONL SAMPLES SEQ_LEN SEED

Calibration text: by default OpenBookQA's train split (shipped, harness/evaluate/data/openbookqa/train.jsonl), each
item's question stem and its correct answer, in file order; or any JSONL file with a "text" field per line, or plain
text. Joined and cut into SAMPLES windows of SEQ_LEN tokens; the shipped set is in neither the quality text
(WikiText-2 test) nor the capability tasks' test items.

The model is loaded in bf16 (the unquantised tensors it saves are bf16, not a widened fp32 copy); on a machine with a
GPU, llm-compressor's sequential pipeline moves one layer at a time onto it (its own big-model loading)."""
from __future__ import annotations

import json
import random
import sys
import time


# Gemma 2/3 put a norm before the MLP (pre_feedforward_layernorm) besides the one after attention
# (post_attention_layernorm, whose output joins the residual stream, not the MLP): SmoothQuant must smooth the former.
# llm-compressor 0.14 maps Gemma 3 to its default (post_attention_layernorm -> gate/up), which breaks the model.
SANDWICH_NORM_MAPPINGS = [[["re:.*q_proj$", "re:.*k_proj$", "re:.*v_proj$"], "re:.*input_layernorm$"],
                          [["re:.*gate_proj$", "re:.*up_proj$"], "re:.*pre_feedforward_layernorm$"]]


def smoothquant_mappings(model):
    """SmoothQuant's norm -> linears mappings for `model`: the sandwich-norm ones above where the model has a
    pre-MLP norm, else None (llm-compressor's own registry by architecture)."""
    if model is not None and any(n.endswith("pre_feedforward_layernorm") for n, _ in model.named_modules()):
        return SANDWICH_NORM_MAPPINGS
    return None


def unit_offset_norms(model):
    """Gemma's RMSNorms scale by (1 + weight). SmoothQuant divides a norm's weight by its scales, which is exact
    only for a norm that scales by weight, so each such norm is swapped for one that does (weight 1 + w, computed the
    same way in float32). Found by behaviour, not by name: a norm whose output is not zero with a zero weight.
    Returns a function that swaps them back (weight - 1), to be called before saving."""
    import torch

    class ScaledRMSNorm(torch.nn.Module):
        def __init__(self, norm):
            super().__init__()
            self.eps = norm.eps
            self.weight = torch.nn.Parameter(1.0 + norm.weight.detach().float())

        def forward(self, x):
            out = x.float()
            out = out * torch.rsqrt(out.pow(2).mean(-1, keepdim=True) + self.eps)
            return (out * self.weight.float()).type_as(x)

    swapped = []
    for name, module in list(model.named_modules()):
        w = getattr(module, "weight", None)
        if not (name.endswith("norm") and isinstance(w, torch.nn.Parameter) and w.ndim == 1
                and hasattr(module, "eps")):
            continue
        with torch.no_grad():
            kept = w.detach().clone()
            w.zero_()
            offset = bool(module(torch.ones(1, w.shape[0], dtype=w.dtype)).abs().sum() > 0)
            w.copy_(kept)
        if offset:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, ScaledRMSNorm(module))
            swapped.append((parent, child, module))

    def restore():
        with torch.no_grad():
            for parent, child, original in swapped:
                original.weight.copy_(getattr(parent, child).weight.detach().to(original.weight.dtype) - 1.0)
                setattr(parent, child, original)
    return restore


def scales_norms(scheme: str) -> bool:
    """Schemes that divide a norm's weight by their scales (SmoothQuant; AWQ, whose mappings start at a norm): on
    Gemma's (1 + weight) norms they need the swap above. AWQ was run without it until it was found to make AWQ the
    worst 4-bit scheme on Gemma 3."""
    return scheme == "w8a8-int8" or scheme.startswith("awq-")


def recipe(scheme: str, model=None):
    import torch
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier

    ignore = ["lm_head"]

    def int4(symmetric: bool) -> dict:
        """compressed-tensors' W4A16 / W4A16_ASYM preset (group 128), or the same with the name's group size."""
        group = int(scheme.rsplit("-g", 1)[1])
        if group == 128:
            return {"targets": "Linear", "scheme": "W4A16" if symmetric else "W4A16_ASYM"}
        return {"config_groups": {"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": 4, "type": "int", "symmetric": symmetric, "strategy": "group", "group_size": group}}}}

    if scheme.startswith("gptq-w4a16-g"):
        return [GPTQModifier(**int4(True), ignore=ignore)]
    if scheme.startswith("rtn-w4a16-"):  # GPTQ's (symmetric) or AWQ's (asymmetric) grid, rounded to nearest
        return [QuantizationModifier(**int4("-asym-" not in scheme), ignore=ignore)]
    if scheme == "w8a8-int8-naive":
        return [QuantizationModifier(config_groups={"group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "tensor"},
            "input_activations": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "tensor",
                                  "dynamic": False}}}, ignore=ignore)]
    if scheme.startswith("awq-w4a16-g"):
        from llmcompressor.modifiers.transform.awq import AWQModifier

        if not torch.cuda.is_available():  # 0.14's AWQ pins host memory for GPU copies: fails without a GPU, no use
            from llmcompressor.pipelines.cache import IntermediatesCache

            IntermediatesCache.pin_memory = lambda self, *a, **k: None
        return [AWQModifier(), QuantizationModifier(**int4(False), ignore=ignore)]
    if scheme == "w8a8-int8":
        from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier

        return [SmoothQuantModifier(smoothing_strength=0.8, mappings=smoothquant_mappings(model)),
                GPTQModifier(targets="Linear", scheme="W8A8", ignore=ignore)]
    if scheme == "fp8-dynamic":
        return [QuantizationModifier(targets="Linear", scheme="FP8_DYNAMIC", ignore=ignore)]
    raise SystemExit(f"unknown scheme {scheme!r}")


def _texts(path: str) -> list[str]:
    """The calibration text: OpenBookQA items (stem + correct answer), JSONL lines' "text", or the file as it is."""
    if not path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            return [f.read()]
    text = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            if "question" in item and "answerKey" in item:
                q = item["question"]
                answer = next(c["text"] for c in q["choices"] if c["label"] == item["answerKey"])
                text.append(f"{q['stem'].strip()} {answer.strip()}.")
            else:
                text.append(str(item["text"]))
    return text


def windows(tokenizer, path: str, samples: int, seq_len: int) -> list[list[int]]:
    """The calibration text joined and cut into `samples` windows of `seq_len` tokens, in file order (also used by
    the OpenVINO exporter's data-aware compression, openvino_data_aware.py)."""
    ids = tokenizer("\n".join(_texts(path)), add_special_tokens=False)["input_ids"]
    if len(ids) < samples * seq_len:
        raise SystemExit(f"the calibration text has {len(ids)} tokens, fewer than {samples} x {seq_len}")
    return [ids[i * seq_len:(i + 1) * seq_len] for i in range(samples)]


def calibration(tokenizer, path: str, samples: int, seq_len: int):
    from datasets import Dataset

    cut = windows(tokenizer, path, samples, seq_len)
    return Dataset.from_dict({"input_ids": cut, "attention_mask": [[1] * seq_len for _ in cut]})


def main() -> None:
    scheme, source, out, calib, samples, seq_len, seed = sys.argv[1:8]
    samples, seq_len, seed = int(samples), int(seq_len), int(seed)
    import torch
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM, AutoTokenizer

    random.seed(seed)
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16)
    data = None if scheme == "fp8-dynamic" or scheme.startswith("rtn-") else \
        calibration(tokenizer, calib, samples, seq_len)
    t0 = time.perf_counter()
    kwargs = {} if data is None else {"dataset": data, "num_calibration_samples": samples,
                                      "max_seq_length": seq_len, "shuffle_calibration_samples": False}
    restore = unit_offset_norms(model) if scales_norms(scheme) else (lambda: None)
    oneshot(model=model, recipe=recipe(scheme, model), **kwargs)
    restore()
    calibrate_s = time.perf_counter() - t0
    model.save_pretrained(out, save_compressed=True)
    tokenizer.save_pretrained(out)
    with open(f"{out}/calibration.json", "w") as f:
        json.dump({"scheme": scheme, "calibrate_s": calibrate_s, "samples": 0 if data is None else samples,
                   "seq_len": seq_len, "seed": seed, "text": calib.rsplit("/", 1)[-1], "dtype": "bfloat16"}, f)


if __name__ == "__main__":
    main()
