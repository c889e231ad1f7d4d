"""The whole composed config checked before anything is loaded: one line naming the key, the value and what is
allowed. Hydra already refuses unknown config groups and options; this refuses keys no shipped config declares (a
misspelling added with `+`) and checks the values inside them.

A table of rules rather than Hydra structured configs: the model group holds free-form architecture keys, and the
rules here also need the task registry (shots against the few-shot split) and the file system (results.path)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from harness.core.errors import ConfigError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _int(low: int, high: int | None = None) -> tuple[Callable[[Any], bool], str]:
    allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high),
            allowed)


def _optional(rule):
    check, allowed = rule
    return (lambda v: v is None or check(v)), f"null or {allowed}"


_BOOL = (lambda v: isinstance(v, bool)), "true or false"
_NAME = (lambda v: isinstance(v, str) and bool(SAFE_NAME.match(v))), \
    "a plain name (letters, digits, '.', '_', '+', '-'; no '/' or '..')"
_POSITIVE = (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0), "a number > 0"
_NAMES = (lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)), "a list of names"

RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model.name": _NAME,
    "model.source": ((lambda v: v in ("packaged_gguf", "hub", "random")), "packaged_gguf, hub or random (where the "
                     "model's weights come from; a model YAML names it)"),
    "precision.name": _NAME,
    "engine.name": _NAME,
    "bench.prompt_tokens": _int(1, 1 << 20),
    "bench.new_tokens": _int(2, 1 << 20),  # the first token ends prefill; decode latency needs at least one more
    "bench.batch_size": _int(1),
    "bench.warmup": _int(0),
    "bench.repeats": _int(1),
    "bench.concurrency": ((lambda v: _int(1)[0](v) or (isinstance(v, (list, tuple)) and len(v) > 0
                                                         and all(_int(1)[0](x) for x in v))),
                          "an integer >= 1 or a list of them, e.g. [1,4,16]"),
    "bench.curve_repeats": _int(1),
    "bench.min_gain": ((lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0), "a number >= 0"),
    "bench.level_time_s": _POSITIVE,
    "eval.tasks": _NAMES,
    "eval.shots": _int(0),
    "eval.per_subject": _optional(_int(1)),
    "eval.limit": _optional(_int(1)),
    "eval.subjects": _optional(_NAMES),
    "eval.batch_size": ((lambda v: v == "auto" or _int(1)[0](v)), "auto or an integer >= 1"),
    "quality.enabled": _BOOL,
    "threads": _optional(_int(1)),
    "seed": _int(0),
    "device": ((lambda v: v in ("auto", "cpu", "cuda")), "auto, cpu or cuda"),
    "runner.isolate": _BOOL,
    "results.bundle": ((lambda v: isinstance(v, str) and v.endswith(".tar.gz") and len(v) > 7),
                       "null or a file path ending in .tar.gz"),
    "runner.timeout_s": _POSITIVE,
    "runner.gpus_per_run": _optional(_int(1, 8)),
    "calibration.text": ((lambda v: isinstance(v, str) and bool(v.strip())), "openbookqa-train or a file path"),
    "calibration.samples": _int(1),
    "calibration.seq_len": _int(8),
    "calibration.seed": _int(0),
    "force": _BOOL,
    "log_level": ((lambda v: str(v).upper() in ("DEBUG", "INFO", "WARNING", "ERROR")), "DEBUG, INFO, WARNING or ERROR"),
    "llamacpp.n_ctx": _int(16),
    "engine.max_length": _int(16),
    "engine.decode": ((lambda v: v in ("auto", "eager", "compiled", "cudagraph")),
                      "auto (cudagraph on CUDA, eager on a CPU), eager, compiled or cudagraph"),
    "engine.tensor_parallel_size": _int(1),
    "engine.gpu_memory_utilization": ((lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                                       and 0 < v <= 1),
                                      "a fraction of each GPU's memory, > 0 and <= 1"),
    "engine.enforce_eager": _optional(_BOOL),
    "engine.python": ((lambda v: v is None or (isinstance(v, str) and bool(v.strip()))), "null or an interpreter path"),
    "engine.device_map": ((lambda v: v in ("auto", "balanced", "balanced_low_0", "sequential")),
                          "auto, balanced, balanced_low_0 or sequential (accelerate's device maps)"),
    "engine.max_memory": ((lambda v: v is None or (isinstance(v, dict) and all(
        (str(k).isdigit() or k == "cpu") and isinstance(x, (str, int)) for k, x in v.items()))),
                          "null or {GPU index: size}, e.g. {0: 70GiB, 1: 70GiB}"),
    "model.revision": _optional(((lambda v: isinstance(v, str) and bool(v.strip())), "a branch, tag or commit")),
    "model.trust_remote_code": _BOOL,
    "progress": _BOOL,
    "capability.enabled": _BOOL,
    "bench.loadgen.enabled": _BOOL,
    "engine.inference_precision": ((lambda v: v in ("f32", "bf16", "f16")),
                                   "f32, bf16 or f16 (OpenVINO's INFERENCE_PRECISION_HINT)"),
    "engine.kv_cache_precision": ((lambda v: v in ("f32", "bf16", "f16", "u8")),
                                  "f32, bf16, f16 or u8 (OpenVINO's KV_CACHE_PRECISION)"),
    "engine.kv_cache_gib": (_int(1)[0], "a whole number of GiB >= 1 (VLLM_CPU_KVCACHE_SPACE)"),
    "engine.prefix_caching": _BOOL,
}
MAY_BE_ABSENT = ("quality.full_windows", "threads", "results.bundle", "runner.gpus_per_run", "calibration.text", "calibration.samples",
                 "calibration.seq_len", "calibration.seed", "log_level", "llamacpp.n_ctx", "engine.max_length",
                 "engine.decode", "engine.tensor_parallel_size", "engine.gpu_memory_utilization",
                 "engine.enforce_eager", "engine.python",
                 "engine.device_map", "engine.max_memory", "model.revision", "model.trust_remote_code",
                 "bench.concurrency", "bench.curve_repeats", "bench.min_gain",
                 "bench.level_time_s", "capability.target_ci95", "bench.loadgen.offline_query_count",
                 "bench.loadgen.max_run_s", "bench.loadgen.search_budget_s",
                 "bench.loadgen.max_batch_tokens", "bench.loadgen.enabled", "engine.inference_precision",
                 "engine.kv_cache_precision", "engine.kv_cache_gib", "engine.prefix_caching")  # absent or null: the library's default
CAPABILITY_RULES = {
    "capability.tasks": _NAMES,
    "capability.sample": _int(2),
    "capability.seed": _int(0),
    "capability.baseline": _NAME,
    "capability.target_ci95": ((lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1),
                               "null (a fixed sample) or a half-width between 0 and 1, e.g. 0.02"),
}
LOADGEN_RULES = {
    "bench.loadgen.prompts": _int(1),
    "bench.loadgen.min_query_count": (_int(100)[0], "an integer >= 100 (a Server run's p99 judged on fewer "
                                                 "queries is little more than its largest latency)"),
    "bench.loadgen.min_duration_ms": _int(0),
    "bench.loadgen.start_qps": ((lambda v: v == "auto" or _POSITIVE[0](v)),
                                "auto (half the Offline throughput) or a number > 0"),
    "bench.loadgen.offline_query_count": _int(1),
    "bench.loadgen.max_run_s": _optional(_POSITIVE),
    "bench.loadgen.search_budget_s": _optional(_POSITIVE),
    "bench.loadgen.max_batch_tokens": _optional(_int(1)),
    "bench.loadgen.bisections": _int(0),
    "bench.loadgen.max_runs": _int(1),
    "bench.loadgen.profiles": _NAMES,
    "bench.loadgen.mixed": _BOOL,
    "bench.loadgen.cache_memory_percent": ((lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                                            and 0 < v <= 1), "a share of free memory, > 0 and <= 1, e.g. 0.05"),
}
QUALITY_RULES = {
    "quality.baseline": _NAME,
    "quality.context": _int(2),
    "quality.max_tokens": _int(1),
    "quality.full_windows": _BOOL,
    "quality.topk": _int(1),
}


def _get(cfg, dotted: str, default=KeyError):
    node = cfg
    for part in dotted.split("."):
        if node is None or part not in node:
            if default is KeyError:
                raise ConfigError(f"{dotted} is missing from the config")
            return default
        node = node[part]
    return node


CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("model", "precision", "engine", "bench", "eval", "capability", "quality")
FREE = ("model.arch",)  # free-form: an architecture's own keys (transformers' config), not the harness's


def declared_keys() -> tuple[set[str], set[str]]:
    """The keys the shipped configuration declares: (leaves, mappings), dotted. conf/config.yaml's own keys and, for a
    config group, the union of the keys of its options (any option of engine may be chosen, so any engine's keys).
    A leaf set to a mapping on the command line (engine.max_memory={0: 70GiB}) is still that leaf."""
    import yaml

    leaves, mappings = set(), set()

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and value:
                mappings.add(dotted)
                walk(value, dotted + ".")
            else:
                leaves.add(dotted)

    top = yaml.safe_load((CONF / "config.yaml").read_text())
    walk({k: v for k, v in top.items() if k not in ("defaults", "hydra")}, "")
    leaves.add("precision.name")  # a scheme's options come from the registry (harness/resolvers.py store_schemes)
    for group in GROUPS:
        mappings.add(group)
        for path in sorted((CONF / group).glob("*.yaml")):
            walk({k: v for k, v in (yaml.safe_load(path.read_text()) or {}).items() if k != "defaults"}, f"{group}.")
    return leaves, mappings


def check_keys(data: dict) -> None:
    """A key no shipped config declares (a misspelling like +bench.level_time=5) is refused, with the nearest
    declared key; Hydra refuses such a key without `+`, this refuses it with `+` too."""
    import difflib

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
            siblings = sorted(k for k in leaves | mappings if k.rpartition(".")[0] == prefix.rstrip("."))
            near = difflib.get_close_matches(dotted, siblings, n=1, cutoff=0.6)
            hint = f"did you mean {near[0]}? " if near else ""
            where = f"keys of {prefix.rstrip('.')}" if prefix else "top-level keys"
            raise ConfigError(f"{dotted} is not a configuration key: {hint}{where}: "
                              f"{', '.join(s.rpartition('.')[2] for s in siblings)}")

    walk({k: v for k, v in data.items() if k != "hydra"}, "")


def check_values(cfg) -> None:
    """Every key declared, every rule above (the quality ones when quality is on), then results.path against the file
    system."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(cfg, resolve=True)
    check_keys(data)
    rules = {**RULES, **(QUALITY_RULES if _get(data, "quality.enabled", False) else {}),
             **(CAPABILITY_RULES if _get(data, "capability.enabled", False) else {}),
             **(LOADGEN_RULES if _get(data, "bench.loadgen.enabled", False) else {})}
    if not _get(data, "capability.enabled", False):
        set_keys = [k for k in CAPABILITY_RULES if _get(data, k, None) is not None]
        if set_keys:
            raise ConfigError(f"{set_keys[0]}={_get(data, set_keys[0])!r} has no effect: capability is off "
                              "(capability=none, the default); add capability=default (or capability=sweep) to "
                              "measure it")
    for key, (ok, allowed) in rules.items():
        value = _get(data, key, None if key in MAY_BE_ABSENT else KeyError)
        if value is None and key in MAY_BE_ABSENT:
            continue
        if not ok(value):
            raise ConfigError(f"{key}={value!r} is not allowed: expected {allowed}")
    _check_engine(str(_get(data, "engine.name")))
    _check_results_path(str(data["results"]["path"]))
    _check_positions(data)
    _check_prompt_text(data["bench"])
    if _get(data, "bench.loadgen.enabled", False):
        from harness.profiles.slo import slo_names
        from harness.record.schema import LOADGEN_PROFILES

        asked = list(data["bench"]["loadgen"]["profiles"])
        bad = [p for p in asked if p not in slo_names()]
        if bad:
            raise ConfigError(f"bench.loadgen.profiles={bad!r} is not allowed: expected names of conf/slo/ "
                              f"({', '.join(slo_names())})")
        if without := [p for p in asked if p not in LOADGEN_PROFILES]:  # refused now, not after the whole search
            raise ConfigError(f"bench.loadgen.profiles={without!r} is not allowed: LoadGen's Server search records "
                              f"columns for {', '.join(LOADGEN_PROFILES)} only (harness/record/schema.py "
                              "LOADGEN_PROFILES)")


def _check_engine(name: str) -> None:
    from harness.engines.base import engine_names

    if name != "auto" and name not in engine_names():
        raise ConfigError(f"engine.name={name!r} is not allowed: expected auto or one of {', '.join(engine_names())}")


def max_positions(model: dict) -> int | None:
    """The longest sequence the model takes, where its config says so without loading anything: an architecture-only
    model's `arch`, a local checkpoint's config.json (None when it cannot be told cheaply)."""
    import json

    arch = model.get("arch") or {}
    if arch.get("max_position_embeddings"):
        return int(arch["max_position_embeddings"])
    model_id = str(model.get("id") or "")
    if model.get("source") == "hub" and model_id:
        path = Path(model_id).expanduser() / "config.json"
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        text = config.get("text_config") or config
        value = text.get("max_position_embeddings") or text.get("n_positions")
        return int(value) if value else None
    return None


def _check_positions(data: dict) -> None:
    """A prompt and its new tokens longer than the model's positions are refused before a load (a model past its
    positions computes garbage, recorded ok)."""
    most = max_positions(data.get("model") or {})
    bench = data["bench"]
    need = int(bench["prompt_tokens"]) + int(bench["new_tokens"])
    if most is not None and need > most:
        raise ConfigError(f"bench.new_tokens={bench['new_tokens']} is not allowed: bench.prompt_tokens + "
                          f"bench.new_tokens = {need} tokens, more than the model's {most} positions")


def _check_prompt_text(bench: dict) -> None:
    """The load curve's prompts are distinct windows of the shipped WikiText-2 text: a level that needs more tokens
    than the text has characters cannot be built, whatever the tokenizer; refused before any load."""
    from harness.core.corpus import wikitext_test
    from harness.measure.load_curve import levels_of

    try:
        most = max([*levels_of(bench.get("concurrency") or bench["batch_size"]), int(bench["batch_size"])])
    except ValueError:
        return  # the rule above names the bad value
    need, have = most * int(bench["prompt_tokens"]), len(wikitext_test())
    if need > have:
        raise ConfigError(f"bench.concurrency={bench.get('concurrency')!r} is not allowed: {most} distinct prompts of "
                          f"bench.prompt_tokens={bench['prompt_tokens']} need {need:,} tokens, more than the "
                          f"{have:,} characters of the shipped WikiText-2 text; at most "
                          f"{have // int(bench['prompt_tokens']):,} prompts of that length")


def _check_results_path(path: str) -> None:
    p = Path(path)
    longest = max(len(f"{p.stem}.{kind}".encode()) for kind in ("predictions", "curves.csv"))  # its side names
    too_long = [part for part in p.parent.parts if len(part.encode()) > 255]
    if too_long or longest > 255:
        raise ConfigError(f"results.path={path[:60]!r}... is not allowed: a file or folder name over 255 bytes "
                          f"({'a folder of it' if too_long else 'the CSV name with its side folders, '}"
                          f"{'' if too_long else f'{longest} bytes'}); give a shorter name")
    if p.exists() and not p.is_dir() and not p.is_file():
        raise ConfigError(f"results.path={path!r} is not allowed: it exists and is not a regular file (a device or a "
                          "pipe); give a CSV file path, e.g. results/runs.csv")
    if not path or p.is_dir():
        raise ConfigError(f"results.path={path!r} is not allowed: expected a CSV file path, e.g. "
                          f"{(p / 'runs.csv') if path else 'results/runs.csv'}")
    parent = p.parent if str(p.parent) else Path(".")
    existing = next((q for q in (parent, *parent.parents) if q.exists()), Path("."))
    if not existing.is_dir():
        raise ConfigError(f"results.path={path!r} is not allowed: {existing} is a file, not a folder")


def check_tasks(cfg) -> None:
    """Task names, MMLU subjects and shots against what the shipped data holds."""
    from harness.evaluate.tasks import load_task

    shots = int(cfg.eval.shots)
    for name in cfg.eval.tasks:
        task = load_task(name)  # unknown task -> the choices
        groups = task.select_groups(cfg.eval.get("subjects")) if task.spec.get("group_by") else [None]
        if shots and task.takes_shots:
            have = min(len(task.docs(task.spec["fewshot_split"], g)) for g in groups)
            if shots > have:
                raise ConfigError(f"eval.shots={shots} is not allowed for {name}: expected an integer from 0 to "
                                  f"{have} (the few-shot examples its {task.spec['fewshot_split']} split holds)")
    if cfg.get("capability", {}).get("enabled"):
        for name in cfg.capability.tasks:
            if load_task(name).spec.get("group_by"):
                raise ConfigError(f"capability.tasks: {name} is grouped by subject; capability takes 0-shot tasks "
                                  "scored on their whole test set (arc_easy, piqa, ...)")
