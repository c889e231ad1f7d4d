"""Run in the OpenVINO exporter's environment (.venv-openvino), not imported by the harness: NNCF's data-aware int4
weight compression (activation-aware scaling, AWQ, then scale estimation) through optimum-intel's Python API, saved
as a stateful OpenVINO model like `optimum-cli export openvino` writes.

usage: python openvino_data_aware.py SOURCE_DIR OUT_DIR CALIBRATION_FILE SAMPLES SEQ_LEN GROUP_SIZE

Why not optimum-cli: its `--dataset` takes only the names of hub datasets (wikitext2, c4), downloaded at run time;
optimum-intel's OVWeightQuantizationConfig also takes a list of strings, so the harness's calibration set (by default
OpenBookQA train, shipped) is cut into SAMPLES windows of SEQ_LEN tokens by the same code as llm-compressor's schemes
(llmcompressor_oneshot.windows) and handed over as text (optimum-intel tokenises each again: a window decoded and
re-encoded may differ from SEQ_LEN by a token or two, and Gemma's tokenizer adds its BOS)."""
from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path


def _windows_of_text(tokenizer, path: str, samples: int, seq_len: int) -> list[str]:
    spec = importlib.util.spec_from_file_location("oneshot", Path(__file__).with_name("llmcompressor_oneshot.py"))
    oneshot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oneshot)  # stdlib imports only at its top
    return [tokenizer.decode(w) for w in oneshot.windows(tokenizer, path, samples, seq_len)]


def main() -> None:
    source, out, calib, samples, seq_len, group_size = sys.argv[1:7]
    samples, seq_len, group_size = int(samples), int(seq_len), int(group_size)
    from optimum.intel import OVModelForCausalLM, OVWeightQuantizationConfig
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    text = _windows_of_text(tokenizer, calib, samples, seq_len)
    config = OVWeightQuantizationConfig(bits=4, sym=True, group_size=group_size, ratio=1.0, dataset=text,
                                        tokenizer=source, num_samples=samples, quant_method="awq",
                                        scale_estimation=True)
    t0 = time.perf_counter()
    model = OVModelForCausalLM.from_pretrained(source, export=True, quantization_config=config, stateful=True,
                                               compile=False)
    calibrate_s = time.perf_counter() - t0
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    with open(f"{out}/calibration.json", "w") as f:
        json.dump({"calibrate_s": calibrate_s, "samples": samples, "seq_len": seq_len,
                   "text": calib.rsplit("/", 1)[-1], "method": "awq + scale_estimation", "group_size": group_size}, f)


if __name__ == "__main__":
    main()
