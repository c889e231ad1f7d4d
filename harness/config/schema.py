"""The configuration's types: one dataclass per section (model, precision, one per engine, bench with its loadgen,
eval, capability, quality, calibration, llamacpp, runner, results, and the top level), each field with its default and
its `help`, its range checked in `__post_init__`. They are the one source of the keys (a key no dataclass declares is
refused with the nearest one) and of the defaults (a stage reads `section(cfg, "bench").level_time_s`, never a fallback
of its own); `resolvers.register` stores them in Hydra's ConfigStore (group `schema`). The composed YAML is not
rewritten with them: a run's config hash stays the hash of what was composed, so recorded rows keep their keys.

Plain dataclasses built from the composed values rather than OmegaConf-typed nodes: several keys take one of two types
(`bench.concurrency` an integer or a list, `eval.batch_size` auto or an integer), which OmegaConf's structured configs
cannot declare, and a refusal must keep today's one line `key=value is not allowed: expected ...` (exit 2)."""
import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from harness.core.errors import ConfigError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
PLAIN_NAME = "a plain name (letters, digits, '.', '_', '+', '-'; no '/' or '..')"


def levels_of(concurrency) -> list[int]:
    """The load curve's levels, ascending and distinct, from bench.concurrency (an integer or a list)."""
    levels = [concurrency] if isinstance(concurrency, int) else list(concurrency)
    if not levels or any(not isinstance(c, int) or isinstance(c, bool) or c < 1 for c in levels):
        raise ValueError(f"bench.concurrency must be a positive integer or a list of them, not {concurrency!r}")
    return sorted(set(levels))


class Refused(ValueError):
    """A field's value outside its range: the builder adds the section's prefix to the field's name."""

    def __init__(self, key: str, value, allowed: str):
        super().__init__(f"{key}={value!r} is not allowed: expected {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


def _help(text: str, default=dataclasses.MISSING, factory=dataclasses.MISSING):
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


def _is_int(v, low: int, high: int | None = None) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _need(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise Refused(key, value, allowed)


def _int(section, key: str, low: int, high: int | None = None, optional: bool = False) -> None:
    value = getattr(section, key)
    allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    _need((optional and value is None) or _is_int(value, low, high), key, value,
          f"null or {allowed}" if optional else allowed)


def _bool(section, *keys: str) -> None:
    for key in keys:
        _need(isinstance(getattr(section, key), bool), key, getattr(section, key), "true or false")


def _choice(section, key: str, choices: tuple, allowed: str) -> None:
    _need(getattr(section, key) in choices, key, getattr(section, key), allowed)


def _names(section, key: str, optional: bool = False) -> None:
    value = getattr(section, key)
    ok = isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value)
    _need(ok or (optional and value is None), key, value, "null or a list of names" if optional else "a list of names")


def _plain(section, key: str) -> None:
    value = getattr(section, key)
    _need(isinstance(value, str) and bool(SAFE_NAME.match(value)), key, value, PLAIN_NAME)


class Section:
    """A section's dataclass: `BenchConfig.of(cfg.bench)` builds it from a composed node (or takes it as it is)."""

    @classmethod
    def of(cls, node, prefix: str | None = None):
        from omegaconf import DictConfig, OmegaConf

        if isinstance(node, cls):
            return node
        values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node or {})
        return build(cls, values, f"{NAMES.get(cls, '')}." if prefix is None else prefix)


@dataclass
class ModelConfig(Section):
    name: str = _help("the row's model name (a plain name); model=hf names it after model.id")
    source: str = _help("where the weights come from: packaged_gguf (shipped), hub (an id or a folder) or random "
                        "(an architecture only)")
    id: Optional[str] = _help("model=hf: a Hugging Face id or a local folder", None)
    revision: Optional[str] = _help("a branch, tag or commit of the hub repository (null: main)", None)
    trust_remote_code: bool = _help("run model code shipped in the repository", False)
    family: str = _help("the architecture family, for reports", "")
    nominal_params: str = _help("the published parameter count, for reports (e.g. 135M)", "")
    origin: str = _help("where the weights came from, in words (reports and rows)", "")
    source_weights: Optional[str] = _help("what the full-precision weights every scheme starts from are, in words "
                                          "(null: '<its dtype> checkpoint <id>'); the row's source_weights", None)
    weights: Optional[str] = _help("real or random: random weights have speed and memory, no quality (null: random "
                                   "for source=random, else real)", None)
    evaluate: Optional[bool] = _help("score accuracy and quality (null: real weights only; tiny-random opts in to "
                                     "test the plumbing)", None)
    seed: int = _help("seed of an architecture-only model's random weights", 0)
    tokenizer_vocab: int = _help("vocabulary of the local tokenizer an architecture-only model gets", 1024)
    arch: Dict[str, Any] = _help("an architecture-only model's transformers config keys (free-form)", factory=dict)
    package: Optional[str] = _help("packaged_gguf: the installed package holding the GGUF file", None)
    gguf_glob: str = _help("packaged_gguf: which file of the package", "*.gguf")
    assembler: Optional[str] = _help("packaged_gguf: a package whose assemble() joins the GGUF's parts", None)
    source_quant: Optional[str] = _help("packaged_gguf: the GGUF type the weights ship in (e.g. Q4_1)", None)

    def __post_init__(self):
        _plain(self, "name")
        _choice(self, "source", ("packaged_gguf", "hub", "random"),
                "packaged_gguf, hub or random (where the model's weights come from; a model YAML names it)")
        _need(self.revision is None or (isinstance(self.revision, str) and bool(self.revision.strip())),
              "revision", self.revision, "null or a branch, tag or commit")
        _bool(self, "trust_remote_code")
        if self.weights is None:
            self.weights = "random" if self.source == "random" else "real"
        _choice(self, "weights", ("real", "random"), "real or random")
        _need(self.evaluate is None or isinstance(self.evaluate, bool), "evaluate", self.evaluate,
              "null, true or false")
        if self.evaluate is None:
            self.evaluate = self.weights == "real"  # accuracy and quality mean nothing on random weights
        _int(self, "seed", 0)
        _int(self, "tokenizer_vocab", 16)
        _need(isinstance(self.arch, dict), "arch", self.arch, "a mapping of transformers config keys")


@dataclass
class PrecisionConfig(Section):
    name: str = _help("a registered scheme (harness/precision/registry.py; `precision=` lists them)")

    def __post_init__(self):
        _plain(self, "name")


@dataclass
class EngineConfig(Section):
    """The keys every engine takes; each engine's own class adds its knobs."""
    name: str = _help("torch, llamacpp, onnxruntime, openvino, vllm or auto (the scheme's own engine)", "auto")

    def __post_init__(self):
        _plain(self, "name")


@dataclass
class TorchEngineConfig(EngineConfig):
    device_map: str = _help("accelerate's device map over the visible GPUs", "auto")
    max_memory: Optional[Dict[str, Any]] = _help("{GPU index: size} (null: each GPU's free memory)", None)
    decode: str = _help("auto (CUDA graphs on CUDA, eager on a CPU), eager, compiled or cudagraph", "auto")

    def __post_init__(self):
        super().__post_init__()
        _choice(self, "device_map", ("auto", "balanced", "balanced_low_0", "sequential"),
                "auto, balanced, balanced_low_0 or sequential (accelerate's device maps)")
        mm = self.max_memory
        _need(mm is None or (isinstance(mm, dict) and all((str(k).isdigit() or k == "cpu") and isinstance(x, (str, int))
                                                          for k, x in mm.items())),
              "max_memory", mm, "null or {GPU index: size}, e.g. {0: 70GiB, 1: 70GiB}")
        _choice(self, "decode", ("auto", "eager", "compiled", "cudagraph"),
                "auto (cudagraph on CUDA, eager on a CPU), eager, compiled or cudagraph")


@dataclass
class VllmEngineConfig(EngineConfig):
    max_length: int = _help("--max-model-len", 2048)
    kv_cache_gib: int = _help("VLLM_CPU_KVCACHE_SPACE, whole GiB", 1)
    prefix_caching: bool = _help("vLLM's automatic prefix caching", False)
    python: Optional[str] = _help("the interpreter of your CUDA build of vLLM (null: .venv-vllm or "
                                  "HARNESS_VLLM_PYTHON)", None)
    tensor_parallel_size: int = _help("GPUs one server spans", 1)
    gpu_memory_utilization: float = _help("the share of each GPU's memory vLLM may take", 0.9)
    enforce_eager: Optional[bool] = _help("no CUDA graphs (null: eager on a CPU only)", None)

    def __post_init__(self):
        super().__post_init__()
        _int(self, "max_length", 16)
        _need(_is_int(self.kv_cache_gib, 1), "kv_cache_gib", self.kv_cache_gib,
              "a whole number of GiB >= 1 (VLLM_CPU_KVCACHE_SPACE)")
        _bool(self, "prefix_caching")
        _need(self.python is None or (isinstance(self.python, str) and bool(self.python.strip())), "python",
              self.python, "null or an interpreter path")
        _int(self, "tensor_parallel_size", 1)
        _need(_is_number(self.gpu_memory_utilization) and 0 < self.gpu_memory_utilization <= 1,
              "gpu_memory_utilization", self.gpu_memory_utilization, "a fraction of each GPU's memory, > 0 and <= 1")
        _need(self.enforce_eager is None or isinstance(self.enforce_eager, bool), "enforce_eager", self.enforce_eager,
              "null or true or false")


@dataclass
class OpenVinoEngineConfig(EngineConfig):
    inference_precision: str = _help("OpenVINO's INFERENCE_PRECISION_HINT", "f32")
    kv_cache_precision: str = _help("OpenVINO's KV_CACHE_PRECISION", "f32")
    max_length: int = _help("longest scored sequence", 4096)

    def __post_init__(self):
        super().__post_init__()
        _choice(self, "inference_precision", ("f32", "bf16", "f16"),
                "f32, bf16 or f16 (OpenVINO's INFERENCE_PRECISION_HINT)")
        _choice(self, "kv_cache_precision", ("f32", "bf16", "f16", "u8"),
                "f32, bf16, f16 or u8 (OpenVINO's KV_CACHE_PRECISION)")
        _int(self, "max_length", 16)


@dataclass
class OnnxRuntimeEngineConfig(EngineConfig):
    max_length: int = _help("scoring context (the generator's KV buffer is allocated at this length)", 4096)

    def __post_init__(self):
        super().__post_init__()
        _int(self, "max_length", 16)


@dataclass
class LlamaCppEngineConfig(EngineConfig):
    """llama.cpp's context is the top-level llamacpp.n_ctx (the GGUF conversions share it)."""


ENGINE_CONFIGS: dict[str, type] = {"torch": TorchEngineConfig, "vllm": VllmEngineConfig,
                                   "openvino": OpenVinoEngineConfig, "onnxruntime": OnnxRuntimeEngineConfig,
                                   "llamacpp": LlamaCppEngineConfig}


@dataclass
class LoadGenConfig(Section):
    enabled: bool = _help("run MLPerf LoadGen's Offline and Server scenarios", False)
    prompts: int = _help("distinct WikiText-2 windows of prompt_tokens tokens, the query sample set", 64)
    mixed: bool = _help("the windows cut to 1/4, 1/2, 3/4 and all of prompt_tokens (a mixed-length set)", False)
    min_query_count: int = _help("queries per Server run (the p99 LoadGen judges)", 500)
    min_duration_ms: int = _help("shortest Server run", 10000)
    offline_query_count: Optional[int] = _help("queries of the Offline run (null: min_query_count)", None)
    start_qps: Any = _help("auto (half the Offline throughput) or the Server search's first QPS", "auto")
    bisections: int = _help("bisections of the Server search after its bracket", 2)
    max_runs: int = _help("LoadGen Server runs per profile, at most", 6)
    max_run_s: Optional[float] = _help("no Server run is started that would take longer (null: no cap)", None)
    search_budget_s: Optional[float] = _help("seconds for all profiles' Server searches (null: no cap)", None)
    profiles: List[str] = _help("the SLO profiles (conf/slo) searched", factory=lambda: ["server", "interactive"])
    cache_memory_percent: float = _help("share of free memory for the engine's paged KV cache", 0.05)
    max_batch_tokens: Optional[int] = _help("torch: tokens per continuous-batching step (null: transformers' 8192)",
                                            None)

    def __post_init__(self):
        _bool(self, "enabled", "mixed")
        if not self.enabled:
            return  # the other keys are read only when LoadGen runs
        _int(self, "prompts", 1)
        _need(_is_int(self.min_query_count, 100), "min_query_count", self.min_query_count,
              "an integer >= 100 (a Server run's p99 judged on fewer queries is little more than its largest latency)")
        _int(self, "min_duration_ms", 0)
        _need(self.start_qps == "auto" or (_is_number(self.start_qps) and self.start_qps > 0), "start_qps",
              self.start_qps, "auto (half the Offline throughput) or a number > 0")
        _int(self, "offline_query_count", 1, optional=True)
        for key in ("max_run_s", "search_budget_s"):
            value = getattr(self, key)
            _need(value is None or (_is_number(value) and value > 0), key, value, "null or a number > 0")
        _int(self, "max_batch_tokens", 1, optional=True)
        _int(self, "bisections", 0)
        _int(self, "max_runs", 1)
        _names(self, "profiles")
        _need(_is_number(self.cache_memory_percent) and 0 < self.cache_memory_percent <= 1, "cache_memory_percent",
              self.cache_memory_percent, "a share of free memory, > 0 and <= 1, e.g. 0.05")

    @property
    def offline_queries(self) -> int:
        return int(self.offline_query_count or self.min_query_count)


@dataclass
class BenchConfig(Section):
    prompt_tokens: int = _help("tokens of each timed prompt", 64)
    new_tokens: int = _help("tokens generated per timed generation (the first ends prefill)", 32)
    batch_size: int = _help("prompts per timed generation", 1)
    warmup: int = _help("untimed generations first", 2)
    repeats: int = _help("timed generations (median and spread)", 5)
    concurrency: Any = _help("load-curve levels: an integer or a list, e.g. [1, 4, 16] (null: [batch_size])", None)
    curve_repeats: Optional[int] = _help("timed generations per load-curve level (null: repeats)", None)
    min_gain: float = _help("stop the curve when a level raises decode throughput by less than this fraction", 0.05)
    level_time_s: float = _help("do not start a load-curve level expected to take longer than this", 120.0)
    loadgen: LoadGenConfig = _help("MLPerf LoadGen serving (bench=loadgen)", factory=LoadGenConfig)

    def __post_init__(self):
        _int(self, "prompt_tokens", 1, 1 << 20)
        _int(self, "new_tokens", 2, 1 << 20)  # the first token ends prefill; decode latency needs one more
        _int(self, "batch_size", 1)
        _int(self, "warmup", 0)
        _int(self, "repeats", 1)
        c = self.concurrency
        _need(c is None or _is_int(c, 1) or (isinstance(c, (list, tuple)) and len(c) > 0
                                             and all(_is_int(x, 1) for x in c)),
              "concurrency", c, "an integer >= 1 or a list of them, e.g. [1,4,16]")
        _int(self, "curve_repeats", 1, optional=True)
        _need(_is_number(self.min_gain) and self.min_gain >= -1, "min_gain", self.min_gain,
              "a number >= -1 (negative: a level may lose that fraction; -1: never stop for gain)")
        _need(_is_number(self.level_time_s) and self.level_time_s > 0, "level_time_s", self.level_time_s,
              "a number > 0")

    @property
    def levels(self) -> list[int]:
        return levels_of(self.batch_size if self.concurrency is None else self.concurrency)

    @property
    def curve_generations(self) -> int:
        return int(self.curve_repeats or self.repeats)


@dataclass
class EvalConfig(Section):
    tasks: List[str] = _help("registered tasks (harness/evaluate/tasks)", factory=list)
    shots: int = _help("few-shot examples per prompt", 0)
    per_subject: Optional[int] = _help("grouped tasks (MMLU): the first N questions of each subject (null: all)", None)
    subjects: Optional[List[str]] = _help("grouped tasks: the subjects kept (null: all)", None)
    limit: Optional[int] = _help("other tasks: the first N questions (null: all)", None)
    batch_size: Any = _help("auto (on CPU <= 256 padded new tokens, 16 on CUDA, halved on OOM) or an integer",
                            "auto")

    def __post_init__(self):
        _names(self, "tasks")
        _int(self, "shots", 0)
        _int(self, "per_subject", 1, optional=True)
        _int(self, "limit", 1, optional=True)
        _names(self, "subjects", optional=True)
        _need(self.batch_size == "auto" or _is_int(self.batch_size, 1), "batch_size", self.batch_size,
              "auto or an integer >= 1")


@dataclass
class CapabilityConfig(Section):
    enabled: bool = _help("ARC-Easy + PIQA accuracy comparable across models, with a 95% interval", False)
    tasks: Optional[List[str]] = _help("0-shot tasks scored on their whole test set", None)
    sample: Optional[int] = _help("questions per task in the first sample", None)
    target_ci95: Optional[float] = _help("grow the sample until the 95% half-width is at most this (null: fixed)",
                                         None)
    seed: Optional[int] = _help("the sample's seed", None)
    reference: Optional[str] = _help("the scheme the capability is compared with: auto (the checkpoint's own dtype) "
                                     "or a scheme name", None)

    def __post_init__(self):
        _bool(self, "enabled")
        if not self.enabled:
            set_keys = [f.name for f in dataclasses.fields(self) if f.name != "enabled"
                        and getattr(self, f.name) is not None]
            if set_keys:
                raise ConfigError(f"capability.{set_keys[0]}={getattr(self, set_keys[0])!r} has no effect: capability "
                                  "is off (capability=none, the default); add capability=default (or "
                                  "capability=sweep) to measure it")
            return
        _names(self, "tasks")
        _int(self, "sample", 2)
        _int(self, "seed", 0)
        _plain(self, "reference")
        t = self.target_ci95
        _need(t is None or (_is_number(t) and 0 < t < 1), "target_ci95", t,
              "null (a fixed sample) or a half-width between 0 and 1, e.g. 0.02")


@dataclass
class QualityConfig(Section):
    enabled: bool = _help("divergence from the reference on WikiText-2 windows (KL, perplexity, top-1)", True)
    reference: str = _help("the scheme the divergence is measured from: auto (the checkpoint's own dtype) or a "
                           "scheme name", "auto")
    context: int = _help("tokens per non-overlapping window", 512)
    max_tokens: int = _help("stop after this many tokens of the corpus", 2048)
    topk: int = _help("reference probabilities kept per position (+ one tail bucket) for KL", 256)
    full_windows: bool = _help("score every position of each window (GPTQ's protocol), not the second half", False)

    def __post_init__(self):
        _bool(self, "enabled")
        if not self.enabled:
            return
        _plain(self, "reference")
        _int(self, "context", 2)
        _int(self, "max_tokens", 1)
        _int(self, "topk", 1)
        _bool(self, "full_windows")


@dataclass
class CalibrationConfig(Section):
    text: str = _help("llm-compressor's calibration set: openbookqa-train or a text/JSONL file path",
                      "openbookqa-train")
    samples: int = _help("calibration windows", 64)
    seq_len: int = _help("tokens per window", 256)
    seed: int = _help("which windows", 0)

    def __post_init__(self):
        _need(isinstance(self.text, str) and bool(self.text.strip()), "text", self.text,
              "openbookqa-train or a file path")
        _int(self, "samples", 1)
        _int(self, "seq_len", 8)
        _int(self, "seed", 0)


@dataclass
class LlamaCppConfig(Section):
    n_ctx: int = _help("context of the llama.cpp engine (GGUF schemes)", 4096)

    def __post_init__(self):
        _int(self, "n_ctx", 16)


@dataclass
class RunnerConfig(Section):
    isolate: bool = _help("run each configuration in its own child process", True)
    timeout_s: float = _help("a run past this is killed and recorded status=timeout", 3600)
    gpus_per_run: Optional[int] = _help("with hydra/launcher=per_gpu: GPUs each run takes (null: all it sees)", None)

    def __post_init__(self):
        _bool(self, "isolate")
        _need(_is_number(self.timeout_s) and self.timeout_s > 0, "timeout_s", self.timeout_s, "a number > 0")
        _int(self, "gpus_per_run", 1, 8, optional=True)


@dataclass
class ResultsConfig(Section):
    path: str = _help("the CSV one row per run is appended to; configs, logs and predictions go beside it",
                      "results/runs.csv")
    bundle: Optional[str] = _help("a .tar.gz of the harness's files for this CSV, rewritten after every run", None)

    def __post_init__(self):
        b = self.bundle
        _need(b is None or (isinstance(b, str) and b.endswith(".tar.gz") and len(b) > 7), "bundle", b,
              "null or a file path ending in .tar.gz")


@dataclass
class Config:
    model: ModelConfig = _help("the checkpoint (conf/model)")
    precision: PrecisionConfig = _help("the scheme")
    engine: EngineConfig = _help("the engine and its knobs (conf/engine)", factory=EngineConfig)
    bench: BenchConfig = _help("speed, load curve and LoadGen (conf/bench)", factory=BenchConfig)
    eval: EvalConfig = _help("accuracy tasks (conf/eval)", factory=EvalConfig)
    capability: CapabilityConfig = _help("capability with its interval (conf/capability)", factory=CapabilityConfig)
    quality: QualityConfig = _help("quality lost against the reference (conf/quality)", factory=QualityConfig)
    calibration: CalibrationConfig = _help("llm-compressor's calibration set", factory=CalibrationConfig)
    llamacpp: LlamaCppConfig = _help("llama.cpp's context", factory=LlamaCppConfig)
    runner: RunnerConfig = _help("how runs are started", factory=RunnerConfig)
    results: ResultsConfig = _help("where rows go", factory=ResultsConfig)
    device: str = _help("auto, cpu or cuda", "auto")
    threads: Optional[int] = _help("torch intra-op threads (null: torch's default, all cores)", None)
    seed: int = _help("the run's seed", 0)
    force: bool = _help("rerun configurations already recorded with status=ok", False)
    progress: bool = _help("live progress on the terminal", True)
    log_level: str = _help("DEBUG, INFO, WARNING or ERROR: the harness's loggers", "INFO")

    def __post_init__(self):
        _choice(self, "device", ("auto", "cpu", "cuda"), "auto, cpu or cuda")
        _int(self, "threads", 1, optional=True)
        _int(self, "seed", 0)
        _bool(self, "force", "progress")
        _need(str(self.log_level).upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "log_level", self.log_level,
              "DEBUG, INFO, WARNING or ERROR")


SECTIONS: dict[str, type] = {f.name: f.type for f in dataclasses.fields(Config) if dataclasses.is_dataclass(f.type)}
NAMES = {**{cls: name for name, cls in SECTIONS.items()}, LoadGenConfig: "bench.loadgen",
         **{cls: "engine" for cls in ENGINE_CONFIGS.values()}}
FREE = ("model.arch", "engine.max_memory")  # mappings whose keys are not the harness's


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _optional(hint) -> bool:
    return typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)


def _engine_class(values: dict) -> type:
    """The class of engine.name; `auto` (the scheme picks) takes any engine's knobs, each checked by its engine."""
    return ENGINE_CONFIGS.get(str(values.get("name", "auto")), EngineConfig)


def build(cls: type, values: dict, prefix: str = ""):
    """`cls` from the composed values: a nested section built the same way, an absent key (or a null one the type
    does not allow) its default, a required key missing or a value out of range refused in one line."""
    if cls is EngineConfig and values.get("name", "auto") == "auto":
        for engine_cls in ENGINE_CONFIGS.values():  # every knob checked by the engine that declares it
            own = {f.name for f in dataclasses.fields(engine_cls)}
            build(engine_cls, {k: v for k, v in values.items() if k in own}, prefix)
    elif cls is EngineConfig:
        cls = _engine_class(values)
    hints, kwargs = _hints(cls), {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{prefix}{f.name} is missing from the config")
            continue
        value, hint = values[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            value = build(hint, value if isinstance(value, dict) else {}, f"{prefix}{f.name}.")
        elif value is None and not _optional(hint) and hint is not Any:
            continue  # null: the default
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except Refused as r:
        raise ConfigError(f"{prefix}{r.key}={r.value!r} is not allowed: expected {r.allowed}") from None


def declared_keys() -> tuple[set[str], set[str]]:
    """The declared keys, dotted: (leaves, mappings). The engine section holds every engine's knobs."""
    leaves, mappings = set(), set()

    def walk(cls, prefix: str) -> None:
        for name, hint in _hints(cls).items():
            dotted = f"{prefix}{name}"
            if dataclasses.is_dataclass(hint):
                mappings.add(dotted)
                walk(hint, dotted + ".")
            else:
                leaves.add(dotted)

    walk(Config, "")
    for engine_cls in ENGINE_CONFIGS.values():
        walk(engine_cls, "engine.")
    return leaves, mappings


# keys renamed since: old -> today's (refused with today's name; harness/config_key.py hashes them under the old)
RENAMED_KEYS = {"model.baseline": "model.source_weights", "quality.baseline": "quality.reference",
                "capability.baseline": "capability.reference"}


def unknown_key(dotted: str) -> str:
    """Why `dotted` is refused: renamed (today's name), or not declared (the nearest declared key and the section's)."""
    import difflib

    if dotted in RENAMED_KEYS:
        return f"{dotted} was renamed {RENAMED_KEYS[dotted]}: write {RENAMED_KEYS[dotted]}= instead"
    leaves, mappings = declared_keys()
    prefix = dotted.rpartition(".")[0]
    siblings = sorted(k for k in leaves | mappings if k.rpartition(".")[0] == prefix)
    near = difflib.get_close_matches(dotted, siblings, n=1, cutoff=0.6)
    hint = f"did you mean {near[0]}? " if near else ""
    where = f"keys of {prefix}" if prefix else "top-level keys"
    return f"{dotted} is not a configuration key: {hint}{where}: {', '.join(s.rpartition('.')[2] for s in siblings)}"


def check_keys(data: dict) -> None:
    """A key no dataclass declares (a misspelling like +bench.level_time=5) is refused with the nearest declared key;
    Hydra refuses such a key without `+`, this refuses it with `+` too."""
    leaves, mappings = declared_keys()

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if dotted in leaves or dotted in FREE:
                continue
            if dotted in mappings:
                if isinstance(value, dict):
                    walk(value, dotted + ".")
                continue
            raise ConfigError(unknown_key(dotted))

    walk({k: v for k, v in data.items() if k != "hydra"}, "")


def typed(cfg) -> Config:
    """The whole composed config as its dataclasses (keys checked, defaults filled, ranges checked)."""
    from omegaconf import DictConfig, OmegaConf

    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    data = {k: v for k, v in data.items() if k != "hydra"}
    check_keys(data)
    return build(Config, data)


def section(cfg, name: str):
    """One section of a composed config as its dataclass, defaults filled: what a stage receives."""
    return SECTIONS[name].of(cfg.get(name) if hasattr(cfg, "get") else getattr(cfg, name))


def setting(cfg, key: str):
    """A top-level key of a composed config (`progress`, `log_level`, ...), its declared default when absent or null."""
    value = cfg.get(key) if hasattr(cfg, "get") else getattr(cfg, key, None)
    if value is not None:
        return value
    f = next(f for f in dataclasses.fields(Config) if f.name == key)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def engine_knobs(cfg, engine: str):
    """The knobs of `engine` (the one resolved for this run, also under engine=auto), defaults filled."""
    values = cfg.get("engine") if hasattr(cfg, "get") else cfg.engine
    cls = ENGINE_CONFIGS.get(engine, EngineConfig)
    from omegaconf import DictConfig, OmegaConf

    data = OmegaConf.to_container(values, resolve=True) if isinstance(values, DictConfig) else dict(values or {})
    own = {f.name for f in dataclasses.fields(cls)}
    return build(cls, {k: v for k, v in data.items() if k in own and k != "name"} | {"name": engine}, "engine.")


def store() -> None:
    """Every section in Hydra's ConfigStore, group `schema` (what `harness config` prints; a user's structured config
    can extend them)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, cls in {**{k: v for k, v in SECTIONS.items() if k not in ("model", "precision", "engine")},
                      **{f"engine_{k}": v for k, v in ENGINE_CONFIGS.items()}}.items():
        cs.store(group="schema", name=name, node=cls, provider="harness")


def _type_name(hint) -> str:
    """A type as the table reads it: `int`, `str or null`, `list of str`, `mapping`, `any`."""
    if hint is Any:
        return "any"
    if _optional(hint):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return f"{_type_name(inner[0])} or null"
    origin = typing.get_origin(hint)
    if origin in (list, List):
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    if origin in (dict, Dict):
        return "mapping"
    return getattr(hint, "__name__", str(hint))


def _default_text(f) -> str:
    """A field's default as YAML spells it (`null`, `false`, `[server, interactive]`), or (required)."""
    import yaml

    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    elif f.default is dataclasses.MISSING:
        return "(required)"
    else:
        value = f.default
    return "`" + yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip() + "`"


def _row(key: str, f, hint) -> str:
    text = str(f.metadata.get("help", "")).replace("|", "\\|")
    return f"| {key} | {_type_name(hint)} | {_default_text(f)} | {text} |"


def describe() -> str:
    """Every key with its type, default and help, as Markdown (`harness config`, docs/reference/config.md)."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]

    def walk(cls, prefix: str) -> None:
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                lines.append(_row(f"`{prefix}{f.name}`", f, hints[f.name]))

    walk(Config, "")
    for name, engine_cls in ENGINE_CONFIGS.items():
        hints = _hints(engine_cls)
        lines += [_row(f"`engine.{f.name}` ({name})", f, hints[f.name])
                  for f in dataclasses.fields(engine_cls) if f.name != "name"]
    return "\n".join(lines)


def print_table(argv: list[str] | None = None) -> int:
    print(describe())
    return 0
