"""The Python API, for notebooks and scripts: the same runs as the command line, returning what it writes.

```python
from harness import api

row = api.run(model="tiny-random", precision="bf16", bench="quick", eval="none", results_path="runs.csv")
rows = api.sweep(model=["smollm2-135m", "gemma3-270m"], precision=["fp32", "gguf-q4_0"])
df = api.load_results("runs.csv")
api.report("runs.csv", hardware=["this-machine"])
```

`run` composes the configuration with Hydra exactly as `python -m harness` does (the same `conf/` and overrides),
validates it with the same checks, skips a configuration already recorded `ok` (unless `force=True`), runs it in its
own child process (`runner.isolate`) and appends its row to the results CSV: the row returned is the row written, with
the same `config_hash` as the command line gives for the same configuration.

Keyword arguments are Hydra overrides: `precision="bf16"` is `precision=bf16`; a dotted key is written with `__`
(`bench__repeats=3` is `bench.repeats=3`) or passed in `overrides=["bench.repeats=3"]`; `results_path=` is
`results.path=`. Lists and booleans are written as Hydra reads them."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

CONF = Path(__file__).resolve().parents[1] / "conf"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_value(x) for x in v) + "]"
    return str(v)


def overrides_of(kwargs: dict[str, Any], extra: list[str] | None = None) -> list[str]:
    """Keyword arguments as Hydra override strings (`bench__repeats=3` -> `bench.repeats=3`)."""
    out = []
    for key, value in kwargs.items():
        key = "results.path" if key == "results_path" else key.replace("__", ".")
        out.append(f"{key}={_value(value)}")
    return out + list(extra or [])


def compose(overrides: list[str]):
    """The resolved configuration `python -m harness <overrides>` would run."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from harness.resolvers import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def run(overrides: list[str] | None = None, **kwargs: Any) -> dict:
    """One run: the row appended to the results CSV (or, for a configuration already recorded `ok`, that row).

    Raises ValueError (with the same one-line message the command line prints) for a configuration the checks
    refuse; a run that fails or times out is a row with its status and error, as on the command line."""
    from harness.__main__ import run_unless_recorded

    for key in GROUPS:
        if key in kwargs and not (isinstance(kwargs[key], str) and kwargs[key].strip()):
            hint = " (a list sweeps: api.sweep)" if isinstance(kwargs[key], (list, tuple)) else ""
            what = "a registered scheme (harness/precision/)" if key == "precision" else f"a conf/{key}/ option"
            raise ValueError(f"{key}={kwargs[key]!r} is not allowed: expected the name of {what}{hint}")
    ov = overrides_of(kwargs, overrides)
    return run_unless_recorded(composed(ov), ov)


GROUPS = ("model", "precision", "engine", "bench", "eval", "capability", "quality")


def composed(overrides: list[str]):
    """compose(), with Hydra's own errors (an unknown option, a malformed override) as one ValueError line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return compose(overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(first) from None


def sweep(overrides: list[str] | None = None, **kwargs: Any) -> list[dict]:
    """Every combination of the list-valued arguments (`model=[...]`, `precision=[...]`), one run each, in order;
    the rows returned. Each run is isolated and recorded as `run` does, so a sweep interrupted and called again
    resumes."""
    axes = {k: v for k, v in kwargs.items() if isinstance(v, (list, tuple)) and k in ("model", "precision", "engine")}
    empty = [k for k, v in axes.items() if not v]
    if empty:
        raise ValueError(f"{empty[0]}=[] is not allowed: a sweep axis needs at least one value")
    fixed = {k: v for k, v in kwargs.items() if k not in axes}
    rows = []
    for combo in itertools.product(*axes.values()):
        rows.append(run(overrides, **fixed, **dict(zip(axes, combo))))
    return rows


def load_results(path: str | Path):
    """The results CSV as a pandas DataFrame: numbers parsed, one column per schema column (the CSV's own values,
    `engine` included), and the analysis's labels added: `config`, `runtime` (the engine or library that ran the row:
    llama.cpp, vllm, compressed-tensors, torchao, ...), `machine`, and `loadgen_<profile>_*` from the LoadGen side
    table."""
    from harness.analysis.report import load_results as load

    return load(path)


def report(csv: str | Path, out_dir: str | Path | None = None, **kwargs: Any) -> Path:
    """Write the Markdown report, its plots and the HTML page for a results CSV; returns the Markdown's path.
    Keyword arguments as `harness.analysis.report.write_report` (hardware, slos, margin, rank_by, context, ...)."""
    from harness.analysis.report import write_report

    return write_report(csv, out_dir, **kwargs)
