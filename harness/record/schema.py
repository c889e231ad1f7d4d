"""The one row a run produces: every column declared once, with its unit and meaning.

The README's column table is generated from COLUMNS (``python -m harness.record.schema``), so this file is the single
source of truth for the CSV layout.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    unit: str
    meaning: str


def _c(name: str, unit: str, meaning: str) -> Column:
    return Column(name, unit, meaning)


COLUMNS: tuple[Column, ...] = (
    # identity and outcome
    _c("run_id", "", "unique id of this run (timestamp + config hash)"),
    _c("timestamp", "ISO 8601 UTC", "when the run finished"),
    _c("status", "", "ok | failed | timeout | unavailable"),
    _c("error", "", "error class and first line of the message when status is not ok"),
    _c("log_path", "", "full log of the run's child process"),
    _c("overrides", "", "the Hydra overrides that reproduce this run: `python -m harness <overrides>`"),
    _c("config_hash", "", "sha256 (16 hex) of the resolved config; the config itself is stored beside the CSV"),
    # what ran
    _c("model", "", "the model: a hub id (with @revision when one was asked for), a local checkpoint folder's name, "
       "or the model config's name (packaged and architecture-only models)"),
    _c("model_source", "", "where the weights came from: packaged_gguf | hub (a hub id or a local folder) | random"),
    _c("architecture", "", "the checkpoint's architecture class, from its config (e.g. LlamaForCausalLM)"),
    _c("checkpoint_fingerprint", "", "a fingerprint of a hub or local checkpoint's content (configs, tokenizer, "
       "sampled weight bytes): part of the resume key and of the reference cache's key"),
    _c("model_params", "count", "parameters of the model before quantisation (tied weights counted once)"),
    _c("weights", "", "real | random (architecture-only, seeded random weights: no accuracy/quality)"),
    _c("source_weights", "", "what the full-precision weights every scheme starts from are, e.g. 'fp32 dequantised "
       "from Q4_1 GGUF' (files before it name this column baseline)"),
    _c("precision", "", "precision scheme name"),
    _c("scheme_bits", "bits", "nominal bits of the scheme's weights"),
    _c("library", "", "library that applied the scheme, with its version"),
    _c("calibration", "", "the calibration set of an llm-compressor scheme or of NNCF's data-aware ov-int4-awq: "
       "text, windows x tokens, seed (calibration= in the config)"),
    _c("compute_dtype", "", "dtype of the activations and unquantised tensors (a scheme's own, or the device's: "
       "float32 on a CPU, bfloat16 on CUDA)"),
    _c("load_plan", "", "how the model reached its scheme: cast, load-time config (which), transform after load, "
       "built in place or as shipped; the dtype it was read in"),
    _c("engine", "", "engine that ran the model: torch, llamacpp, onnxruntime or openvino (files before it name this column backend, hf = torch)"),
    _c("device", "", "cpu | cuda"),
    _c("device_name", "", "CPU model or GPU name"),
    _c("threads", "count", "torch intra-op threads"),
    _c("batch_size", "sequences", "sequences generated at once in the speed benchmark"),
    _c("prompt_tokens", "tokens", "prompt length per sequence in the speed benchmark"),
    _c("new_tokens", "tokens", "greedy tokens generated per sequence (min = max)"),
    _c("repeats", "count", "timed repetitions (after bench.warmup untimed ones)"),
    _c("concurrency", "sequences", "load-curve levels asked for (bench.concurrency), comma-separated"),
    # speed
    _c("ttft_ms_p50", "ms", "time to first token (prefill + first token), median over repeats"),
    _c("ttft_ms_p90", "ms", "time to first token, 90th percentile over repeats"),
    _c("ttft_ms_p99", "ms", "time to first token, 99th percentile over repeats"),
    _c("tpot_ms_p50", "ms", "per-token decode latency (timed per step by a hook), median over all steps of all repeats"),
    _c("tpot_ms_p90", "ms", "per-token decode latency, 90th percentile"),
    _c("tpot_ms_p99", "ms", "per-token decode latency, 99th percentile"),
    _c("ttft_n", "samples", "timed generations behind the TTFT percentiles (a p99 of few samples is its maximum)"),
    _c("tpot_n", "samples", "decode steps behind the TPOT percentiles"),
    _c("tpot_cv", "ratio", "coefficient of variation (std/mean) of per-token decode latency"),
    _c("decode_tok_s", "tokens/s", "decode throughput: batch * (new_tokens - 1) / decode time, median over repeats"),
    _c("prefill_tok_s", "tokens/s", "prefill throughput: batch * prompt_tokens / TTFT, median over repeats"),
    _c("e2e_s_p50", "s", "end-to-end generation time, median over repeats"),
    _c("gpu_busy_frac", "ratio", "GPU busy time (kernels seen by torch's profiler) / wall time over 16 decode steps at "
       "the speed measurement's batch: how far decode is from host-bound (CUDA only)"),
    _c("gpu_busy_note", "", "the kernel and wall milliseconds behind gpu_busy_frac, or why it is empty"),
    _c("energy_j_per_token", "J/token", "energy per generated token over the timed generations (prefill included): "
       "NVML's energy counter of the GPUs holding the model, or a CPU's RAPL package counter where readable"),
    _c("energy_note", "", "where energy_j_per_token comes from (counter, joules, seconds), or why it is empty"),
    _c("decode_path", "", "how the torch engine's decode steps ran: the eager loop with a dynamic cache, or a static "
       "cache with a torch.compile'd step (CUDA graphs on CUDA; engine.decode); why, when the compiled path was not "
       "taken"),
    _c("e2e_cv", "ratio", "coefficient of variation of end-to-end time over repeats"),
    _c("max_decode_tok_s", "tokens/s", "highest decode throughput of the load curve (its levels: <stem>.curves.csv)"),
    _c("max_decode_concurrency", "sequences", "the concurrency level that reached max_decode_tok_s"),
    _c("concurrency_levels", "sequences", "levels the load curve measured, comma-separated"),
    _c("curve_stop", "", "why the load curve ended: all levels measured, throughput stopped rising, memory, time"),
    # MLPerf LoadGen over continuous batching (bench.loadgen; harness/measure/loadgen.py)
    _c("loadgen_note", "", "what the LoadGen figures are (a performance run, not a compliant MLPerf submission) and the "
       "reduced query count and duration, or why there are none"),
    _c("loadgen_offline_tok_s", "tokens/s", "LoadGen Offline: completed tokens per second"),
    _c("loadgen_offline_queries", "queries", "queries LoadGen issued in the Offline run"),
    # the Server search of each SLO profile: lines of the side table <stem>.loadgen.csv (LOADGEN_PROFILE_COLUMNS)
    _c("loadgen_s", "s", "wall seconds of the LoadGen runs"),
    _c("download_s", "s", "seconds the hub download took, before the run (not load time, not under runner.timeout_s); "
       "empty when the checkpoint was already local"),
    _c("load_s", "s", "seconds to load the weights (from the cache), apply the scheme and prove it; module imports "
                      "excluded (a per-process cost, counted in run_s)"),
    _c("convert_s", "s", "seconds the engine's one-off model conversion took (ONNX Runtime, OpenVINO): measured when "
                         "the cached conversion was made, so a run that reuses it still shows it; not part of load_s"),
    _c("bench_s", "s", "wall seconds of the speed measurement (warm-up and repetitions, roofline)"),
    _c("curve_s", "s", "wall seconds of the load curve (levels other than the batch-1 measurement above)"),
    _c("eval_s", "s", "wall seconds of the accuracy tasks"),
    _c("quality_s", "s", "wall seconds of the quality measurement against the baseline (reference build included)"),
    _c("run_s", "s", "wall seconds of the whole run as the sweep saw it (process start, imports and load included)"),
    # memory
    _c("weight_bytes", "bytes", "bytes the parameters and buffers really occupy (quantised storage as stored, scales included)"),
    _c("bits_per_weight", "bits", "8 * weight_bytes / model_params (whole model, embeddings included)"),
    _c("linear_bits_per_weight", "bits", "stored bits per weight of the decoder's linear layers (what schemes quantise)"),
    _c("quantized_fraction", "ratio", "share of model parameters held in quantised form"),
    _c("quantized_types", "", "module/tensor types found holding the decoder's linear weights (the proof)"),
    _c("kv_bytes_per_token", "bytes", "KV-cache bytes one token adds, all layers, in the engine's cache dtype"),
    _c("peak_rss_mb", "MiB", "peak resident memory of the run's process"),
    _c("rss_before_load_mb", "MiB", "resident memory of the run's process just before the weights load (imports, "
       "tokenizer): the load's own growth is load_peak_rss_mb - rss_before_load_mb"),
    _c("load_peak_rss_mb", "MiB", "peak resident memory of the run's process when the model is loaded, quantised and "
       "proven (before any measurement)"),
    _c("weight_devices", "", "devices holding the weights, comma-separated (cpu, cuda:0, ...)"),
    _c("gpu_count", "count", "GPUs holding part of the weights (accelerate's device map over engine.max_memory)"),
    _c("weights_per_device_mb", "", "MiB of weights on each device, `cuda:0=15312.4;cuda:1=15010.2`"),
    _c("engine_rss_mb", "MiB", "resident memory of the engine's own processes outside the run's (vLLM's server and engine "
       "core) after the speed measurement; empty for engines that run inside it"),
    _c("cuda_weights_mb", "MiB", "torch.cuda.memory_allocated right after the load, scheme and proof: the model as "
       "it sits on the GPU (CUDA only)"),
    _c("cuda_load_peak_mb", "MiB", "torch.cuda.max_memory_allocated during the load (CUDA only); peaks are reset "
       "after it"),
    _c("cuda_peak_alloc_mb", "MiB", "torch.cuda.max_memory_allocated during the speed measurement and load curve "
       "(peaks reset after the load): weights + KV cache + activations at the largest level (CUDA only)"),
    _c("cuda_peak_reserved_mb", "MiB", "torch.cuda.max_memory_reserved over the same span (CUDA only)"),
    _c("nvml_used_mb", "MiB", "device memory in use per NVML at the end of the run on the GPUs holding the model "
       "(summed; read per physical device under CUDA_VISIBLE_DEVICES), CUDA context included (CUDA only)"),
    _c("nvml_used_per_gpu_mb", "", "the same per GPU, `cuda:0=41234;cuda:1=40112` (CUDA only)"),
    # roofline
    _c("mem_bandwidth_gbs", "GB/s", "memory bandwidth of this machine (copy benchmark, cached)"),
    _c("roofline_step_mb", "MB", "bytes one decode step reads: weights (less an input embedding that is only "
                                 "looked up, not the output projection) + KV cache of every sequence"),
    _c("roofline_tok_s", "tokens/s", "bandwidth / roofline_step_mb * batch: the memory-bound ceiling"),
    _c("roofline_frac", "ratio", "decode_tok_s / roofline_tok_s"),
    # accuracy
    _c("mmlu_acc", "ratio", "MMLU accuracy (lm-eval `mmlu` prompt and scoring)"),
    _c("mmlu_stderr", "ratio", "binomial standard error of mmlu_acc"),
    _c("mmlu_ci95", "ratio", "half-width of the 95% interval (1.96 * stderr)"),
    _c("mmlu_n", "questions", "questions scored"),
    _c("mmlu_shots", "count", "few-shot examples (dev split, file order)"),
    _c("mmlu_subset", "", "which questions: 'all' or 'first N per subject'"),
    _c("mmlu_agree", "ratio", "share of questions with the same predicted letter as the baseline"),
    _c("mmlu_flips_correct_to_wrong", "questions", "baseline right, this run wrong"),
    _c("mmlu_flips_wrong_to_correct", "questions", "baseline wrong, this run right"),
    _c("mmlu_mcnemar_p", "p-value", "exact McNemar test of the accuracy difference against the baseline"),
    _c("mmlu_acc_norm", "ratio", "MMLU accuracy by length-normalised log-likelihood (equal to acc for letters)"),
    _c("mmlu_chance", "ratio", "accuracy of uniform guessing on these questions (mean of 1/number of choices)"),
    _c("predictions_path", "", "per-question predictions of this run (JSONL; other tasks beside it)"),
    # capability: accuracy comparable across models (harness/evaluate/capability.py)
    _c("capability", "ratio", "estimated accuracy on the full sets of capability_tasks (question-weighted): the "
                              "baseline's full-set accuracy + this run's paired difference on a random sample"),
    _c("capability_ci95", "ratio", "95% half-width of capability as an estimate of the full-set accuracy (0 for the baseline)"),
    _c("capability_set_ci95", "ratio", "95% binomial half-width of the full sets themselves (benchmark sampling error)"),
    _c("capability_n", "questions",
       "questions behind the estimate: the final sample, all tasks (the full sets for the baseline)"),
    _c("capability_full_n", "questions", "questions in the full sets"),
    _c("capability_tasks", "", "tasks of the capability estimate, '+'-joined"),
    _c("capability_s", "s", "wall seconds of the capability step (a baseline's full-set build included)"),
    _c("capability_status", "", "ok, or failed: the reason (its baseline could not be built; the row's other columns "
       "stand)"),
    # quality against the baseline
    _c("quality_status", "", "ok, or failed: the reason (the reference could not be built; the row's other columns "
       "stand)"),
    _c("quality_ref", "", "reference the quality columns compare against (model / precision / token set); by default "
       "the checkpoint's own dtype (quality.reference=auto)"),
    _c("quality_tokens", "tokens", "scored token positions of the WikiText-2 test windows"),
    _c("kld_mean", "nats", "mean KL(baseline || this run) over token positions"),
    _c("kld_stderr", "nats", "standard error of kld_mean (sqrt(var / (n - 1)), as llama-perplexity)"),
    _c("kld_median", "nats", "median per-position KL"),
    _c("kld_p99", "nats", "99th percentile of per-position KL"),
    _c("quality_note", "", "why a quality column is empty (an engine whose log-probs are not whole distributions: no KLD)"),
    _c("top1_agree", "ratio", "share of positions whose argmax token matches the baseline's (llama-perplexity's "
                              "\"same top p\")"),
    _c("rms_dp", "ratio", "RMS over positions of p(next token) - the baseline's p(next token) (llama-perplexity's "
                          "\"RMS Δp\", as a fraction)"),
    _c("rms_dp_stderr", "ratio", "standard error of rms_dp (delta method, as llama-perplexity)"),
    _c("ppl", "perplexity", "token perplexity on the WikiText-2 windows"),
    _c("ppl_delta", "perplexity", "ppl - baseline ppl"),
    _c("ppl_delta_stderr", "perplexity", "standard error of ppl_delta (delta method on paired per-token NLL differences)"),
    # environment
    _c("torch_version", "", "torch version"),
    _c("transformers_version", "", "transformers version"),
    _c("cpu", "", "CPU model name"),
    _c("cuda_version", "", "CUDA runtime version (CUDA only)"),
    _c("driver_version", "", "NVIDIA driver version (CUDA only)"),
)



def _task_columns() -> tuple[Column, ...]:
    """Per-task accuracy columns for every task shipped in harness/evaluate/tasks/ other than mmlu (whose columns
    are above): adding a task YAML adds its columns (start a new CSV when you do)."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "evaluate" / "tasks"
    cols = []
    for task in sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "mmlu"):
        cols += [_c(f"{task}_acc", "ratio", f"{task} accuracy (lm-eval `{task}` prompts and scoring)"),
                 _c(f"{task}_acc_norm", "ratio", f"{task} accuracy with log-likelihood / answer length in characters"),
                 _c(f"{task}_stderr", "ratio", f"binomial standard error of {task}_acc"),
                 _c(f"{task}_n", "questions", f"{task} questions scored"),
                 _c(f"{task}_shots", "count", f"{task} few-shot examples"),
                 _c(f"{task}_subset", "", f"which {task} questions: 'all' or 'first N ...'"),
                 _c(f"{task}_chance", "ratio", f"{task} accuracy of uniform guessing (mean 1/number of choices)"),
                 _c(f"{task}_agree", "ratio", f"share of {task} questions answered as the baseline did"),
                 _c(f"{task}_mcnemar_p", "p-value", f"exact McNemar test of {task}_acc against the baseline")]
    return tuple(cols)


NAMES_ENV = ("torch_version", "transformers_version", "cpu", "cuda_version", "driver_version")
COLUMNS = tuple(c for c in COLUMNS if c.name not in NAMES_ENV) + _task_columns() + tuple(
    c for c in COLUMNS if c.name in NAMES_ENV)
NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)


def markdown_table() -> str:
    lines = ["| column | unit | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.unit} | {c.meaning} |" for c in COLUMNS]
    return "\n".join(lines)


def print_table(argv=None) -> int:
    """`harness columns`: the result columns as a Markdown table."""
    print(markdown_table())
    return 0


if __name__ == "__main__":
    print_table()


# LoadGen's Server search, one line per (run, SLO profile) in the side table <stem>.loadgen.csv
# (harness/record/loadgen_profiles.py), so that a new profile is one YAML in conf/slo/ and no new column
LOADGEN_PROFILE_COLUMNS = (
    ("run_id", "", "the run (row of the results CSV) this search belongs to"),
    ("profile", "", "the SLO profile (conf/slo/<name>.yaml) whose TTFT and TPOT bounds, at its percentile, LoadGen's "
                    "Server scenario enforced"),
    ("qps", "queries/s", "highest Server target QPS LoadGen judged VALID under the profile (empty: none was)"),
    ("invalid_qps", "queries/s", "lowest Server target QPS LoadGen judged INVALID (the bracket's top; empty when none "
                                 "was run)"),
    ("tok_s", "tokens/s", "completed tokens per second at qps"),
    ("ttft_p99_ms", "ms", "LoadGen's p99 time to first token at qps"),
    ("tpot_p99_ms", "ms", "LoadGen's p99 time per output token at qps"),
    ("n", "queries", "queries behind those percentiles"),
    ("runs", "count", "LoadGen runs the search made under the profile (0: not searched, loadgen_note says why)"),
)
# the row's columns that held the two profiles of their day before the side table: read from older files (and moved
# to the side table by `python -m harness.record.upgrade`), never written
RETIRED = {f"loadgen_{profile}_{stat}": (profile, stat) for profile in ("server", "interactive")
           for stat, _, _ in LOADGEN_PROFILE_COLUMNS[2:]}

TEXT = {"concurrency", "concurrency_levels"}  # lists written as text, though counted in sequences
# carried from the run to the launcher, written to their side tables (harness/record/side_table.py), never columns
INTERNAL = {"load_curve", "loadgen_profiles"}
_BY_NAME = {c.name: c for c in COLUMNS}


def numeric(name: str) -> bool:
    """A column that holds a number: one with a unit (bytes, ms, ratio, ...), except time stamps and level lists."""
    c = _BY_NAME[name]
    return bool(c.unit) and c.unit != "ISO 8601 UTC" and name not in TEXT


class Record(dict):
    """The row as each stage fills it: a column must be declared above, and a numeric column gets a number (or None),
    checked when the stage fills it rather than when the row is appended, so a stage that writes a wrong value is
    named at once."""

    def __init__(self, other=(), **kwargs) -> None:
        super().__init__()
        self.update(other, **kwargs)

    def __setitem__(self, key: str, value) -> None:
        super().__setitem__(key, _checked(key, value))

    def update(self, other=(), **kwargs) -> None:
        for key, value in dict(other, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default=None):
        """As dict's, through the column check (dict's own would bypass it)."""
        if key not in self:
            self[key] = default
        return self[key]


def _checked(key: str, value):
    if key in INTERNAL:
        return value
    if key not in _BY_NAME:
        raise KeyError(f"column {key!r} is not declared in harness/record/schema.py")
    if value is None or not numeric(key):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy as np

            if isinstance(value, np.number):
                return value.item()
        except ImportError:
            pass
        raise TypeError(f"column {key!r} ({_BY_NAME[key].unit}) takes a number, not {type(value).__name__} {value!r}")
    return value
