"""The whole composed config checked before anything is loaded: one line naming the key, the value and what is
allowed. Keys, types, defaults and ranges are the dataclasses' of harness/config/schema.py (Hydra already refuses
unknown config groups and options; a key added with `+` that no dataclass declares is refused there too); this module
adds the checks across fields and against the world: the engine registry, the model's positions, the shipped text the
load curve cuts its prompts from, the SLO profiles, the file system (results.path) and the task registry."""
from __future__ import annotations

from pathlib import Path

from harness.config.schema import Config, section, typed
from harness.core.errors import ConfigError


def check_values(cfg) -> Config:
    """The typed config (every key declared, every range), then the checks across fields; returns the typed config."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    config = typed(data)
    _check_engine(config.engine.name)
    _check_results_path(str(config.results.path))
    _check_positions(data.get("model") or {}, config.bench)
    _check_prompt_text(config.bench)
    if config.bench.loadgen.enabled:
        _check_loadgen_profiles(list(config.bench.loadgen.profiles))
    return config


def _check_loadgen_profiles(asked: list[str]) -> None:
    from harness.profiles.slo import slo_names
    bad = [p for p in asked if p not in slo_names()]
    if bad:
        raise ConfigError(f"bench.loadgen.profiles={bad!r} is not allowed: expected names of conf/slo/ "
                          f"({', '.join(slo_names())})")
    from harness.profiles.slo import load_slo

    # a profile without a latency bound has no Server search to make (its QPS is unbounded): refused now, not after
    # the Offline run; load_slo refuses a malformed one, naming its file
    if unbounded := [p for p in asked if (s := load_slo(p)).ttft_ms is None and s.tpot_ms is None]:
        raise ConfigError(f"bench.loadgen.profiles={unbounded!r} is not allowed: a LoadGen Server search needs a "
                          "profile with a TTFT or TPOT bound (conf/slo/); the Offline run measures the unbounded "
                          "throughput")


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


def _check_positions(model: dict, bench) -> None:
    """A prompt and its new tokens longer than the model's positions are refused before a load (a model past its
    positions computes garbage, recorded ok)."""
    most = max_positions(model)
    need = bench.prompt_tokens + bench.new_tokens
    if most is not None and need > most:
        raise ConfigError(f"bench.new_tokens={bench.new_tokens} is not allowed: bench.prompt_tokens + "
                          f"bench.new_tokens = {need} tokens, more than the model's {most} positions")


def _check_prompt_text(bench) -> None:
    """The load curve's prompts are distinct windows of the shipped WikiText-2 text: a level that needs more tokens
    than the text has characters cannot be built, whatever the tokenizer; refused before any load."""
    from harness.core.corpus import wikitext_test

    most = max([*bench.levels, bench.batch_size])
    need, have = most * bench.prompt_tokens, len(wikitext_test())
    if need > have:
        raise ConfigError(f"bench.concurrency={bench.concurrency!r} is not allowed: {most} distinct prompts of "
                          f"bench.prompt_tokens={bench.prompt_tokens} need {need:,} tokens, more than the "
                          f"{have:,} characters of the shipped WikiText-2 text; at most "
                          f"{have // bench.prompt_tokens:,} prompts of that length")


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

    ev, capability = section(cfg, "eval"), section(cfg, "capability")
    for name in ev.tasks:
        task = load_task(name)  # unknown task -> the choices
        groups = task.select_groups(ev.subjects) if task.spec.get("group_by") else [None]
        if ev.shots and task.takes_shots:
            have = min(len(task.docs(task.spec["fewshot_split"], g)) for g in groups)
            if ev.shots > have:
                raise ConfigError(f"eval.shots={ev.shots} is not allowed for {name}: expected an integer from 0 to "
                                  f"{have} (the few-shot examples its {task.spec['fewshot_split']} split holds)")
    if capability.enabled:
        for name in capability.tasks:
            if load_task(name).spec.get("group_by"):
                raise ConfigError(f"capability.tasks: {name} is grouped by subject; capability takes 0-shot tasks "
                                  "scored on their whole test set (arc_easy, piqa, ...)")
