"""Named profiles (a leaf package: every stage may read them, it imports no stage). The files the run and the analysis read (conf/hardware/*.yaml, conf/slo/*.yaml): a name is a plain name of a shipped
file (never a path), and a malformed file is refused with the file, the key and what is expected."""
from __future__ import annotations

import math
import re
from pathlib import Path

import yaml
from harness.core.errors import ConfigError, UnknownName

PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def names(conf: Path) -> list[str]:
    return sorted(p.stem for p in conf.glob("*.yaml"))


def read(conf: Path, kind: str, name: str, required: dict[str, str]) -> tuple[dict, Path]:
    """The profile's mapping and its path. `required`: key -> what is expected there (for the message)."""
    name = str(name)
    path = conf / f"{name}.yaml"
    if not PLAIN.match(name) or ".." in name or not path.is_file():
        raise UnknownName(f"unknown {kind} profile {name!r} (a plain name of conf/{conf.name}/); choices: "
                       f"{', '.join(names(conf))}")
    where = f"conf/{conf.name}/{path.name}"
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{where} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a mapping of keys, e.g. name: {name}")
    for key, expected in required.items():
        if key not in data or data[key] is None:
            raise ConfigError(f"{where}: missing key {key!r} ({expected})")
    if not PLAIN.match(str(data.get("name", ""))):
        raise ConfigError(f"{where}: name={data.get('name')!r} must be a plain name (letters, digits, . _ -)")
    return data, path


def number(data: dict, key: str, where: str, minimum: float = 0.0, allow_zero: bool = False,
           default=None) -> float | None:
    """A finite number >= minimum (> minimum unless allow_zero), or `default` when absent."""
    value = data.get(key, default)
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"conf/{where}: {key}={value!r} is not a number") from None
    if not math.isfinite(x) or x < minimum or (x == minimum and not allow_zero):
        raise ValueError(f"conf/{where}: {key}={value!r} must be a finite number "
                         f"{'>=' if allow_zero else '>'} {minimum:g}")
    return x
