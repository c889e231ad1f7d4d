"""A sweep in one process, most valuable cells first, within a time budget: the GPU machine's call
(scripts/gpu_run.sh), where every fresh interpreter would re-import torch, transformers, torchao and bitsandbytes and
make a CUDA context (6-12 s before a model exists) and the budget is a few minutes.

    python -m harness.one_process --preset gpu_h200 --last fp16 --budget-s 300 --run-cap-s 90 \\
        results.path=... results.bundle=... [model=a,b precision=x,y] [other overrides]

The preset's (conf/sweep/<preset>.yaml) model and precision lists give the cells, unless `model=`/`precision=` lists
among the overrides replace them. Cells are taken model by model in the order given, each model's precisions in the
order given, and the `--last`
precisions after every other cell (fp16 repeats bf16's speed on a GPU with bf16 kernels). Before anything runs, the
plan is printed: each cell's estimated seconds (a projection from the bytes the cell moves, the machine's measured or
stated bandwidth and per-scheme preparation rates, labelled an estimate; scaled by the measured times of rows already
in the results file when there are any) and which cells it expects to reach within the budget. Then each cell runs in
this process (runner.isolate=false: harness/launch.py `_run_inline`, capped at `--run-cap-s`, memory released after
it), is recorded like any other run (skipped when already recorded ok: a second call resumes), and the archive
(`results.bundle`) is rewritten after it. The budget is checked between runs: a cell whose estimate no longer fits
is not started (a cheaper later one may be); cells not started are listed."""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass

# preparation rates (GB of the 16-bit weights per second) by scheme family: guesses for a GPU, stated as such
PREPARE_GBS = {"bf16": 60.0, "fp16": 60.0, "fp32": 60.0, "torchao-int4wo-cuda": 4.0, "torchao-fp8": 15.0,
               "bnb-nf4": 8.0, "bnb-int8": 8.0, "torchao-int8wo-bf16": 15.0, "torchao-int8wo": 15.0}
FIXED_S = 4.0  # compose, tokenizer, warm imports of a family, proof, the row: per run in one process


@dataclass
class Cell:
    model: str
    precision: str
    estimate_s: float = 0.0
    expected: bool = True
    recorded: bool = False  # already recorded ok in the results file (an earlier call): skipped, no time


def order(models: list[str], precisions: list[str], last: list[str]) -> list[Cell]:
    """Model by model, precisions in order, the `last` precisions after all the others."""
    first = [p for p in precisions if p not in last]
    later = [p for p in precisions if p in last]
    return [Cell(m, p) for m, p in itertools.product(models, first)] + \
        [Cell(m, p) for p, m in itertools.product(later, models)]


def estimate_s(cfg, scheme, bandwidth_gbs: float) -> float:
    """Seconds a cell should take in this process (a projection): weights created and prepared, then every decode
    step of the speed measurement and the load curve reading the weights once at `bandwidth_gbs` x 0.6, plus a
    fixed cost and, on the GPU, the graph captures (one per level)."""
    from harness.models.placement import weights_gib
    from harness.models.random_arch import build_config

    from harness.config.schema import section

    b = section(cfg, "bench")
    gib16 = weights_gib(build_config(cfg.model), "bfloat16")
    bits = float(scheme.bits)
    step_s = (gib16 * 2**30 * bits / 16) / (bandwidth_gbs * 1e9 * 0.6) + 0.0003
    levels = b.levels
    steps = (b.warmup + b.repeats) * b.new_tokens
    curve = sum((2 + b.curve_generations * b.new_tokens) * (1 + c / 64) for c in levels[1:])
    prepare = gib16 * 1.07 / PREPARE_GBS.get(scheme.name, 10.0)
    return FIXED_S + prepare + (steps + curve) * step_s + 0.2 * len(levels)


def measured_scale(csv: str, estimates: dict) -> float | None:
    """The median of measured run_s / estimate over rows already recorded ok (a second call refines the first's
    projection), or None without such rows."""
    import statistics
    from pathlib import Path

    from harness.record.store import read_rows

    if not Path(csv).exists():
        return None
    ratios = [float(r["run_s"]) / estimates[(r["model"], r["precision"])] for r in read_rows(csv, strict=False)
              if r.get("status") == "ok" and r.get("run_s") and (r["model"], r["precision"]) in estimates]
    return statistics.median(ratios) if ratios else None


def axes(preset: str, overrides: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(models, precisions, the other overrides with +sweep=<preset> first): the preset's lists, replaced by
    `model=`/`precision=` lists among the overrides."""
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[1] / "conf" / "sweep" / f"{preset}.yaml"
    if not path.is_file():
        raise SystemExit(f"error: no sweep preset {preset!r} (conf/sweep/{preset}.yaml)")
    params = (yaml.safe_load(path.read_text()).get("hydra") or {}).get("sweeper", {}).get("params") or {}
    lists = {k: str(v).split(",") for k, v in params.items()}
    rest = [f"+sweep={preset}"]
    for ov in overrides:
        key, _, value = ov.partition("=")
        if key in ("model", "precision"):
            lists[key] = value.split(",")
        else:
            rest.append(ov)
    if "model" not in lists or "precision" not in lists:
        raise SystemExit(f"error: conf/sweep/{preset}.yaml lists no model or precision axis (give model=a,b and "
                         "precision=x,y)")
    return lists["model"], lists["precision"], rest


def plan(cells: list[Cell], budget_s: float) -> list[Cell]:
    spent = 0.0
    for cell in cells:
        spent += cell.estimate_s
        cell.expected = spent <= budget_s
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.one_process", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True, help="conf/sweep/<preset>.yaml: its model and precision lists "
                                                       "(most valuable first) and its settings")
    parser.add_argument("--last", default="", help="precisions run after every other cell")
    parser.add_argument("--budget-s", type=float, required=True, help="seconds for the whole loop")
    parser.add_argument("--run-cap-s", type=float, default=90, help="runner.timeout_s of each cell")
    parser.add_argument("--bandwidth-gbs", type=float, default=None,
                        help="memory bandwidth for the estimate (default: the cached measurement, else 4300 on CUDA)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides shared by every cell")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()

    from harness.__main__ import ConfigRefused, run_unless_recorded
    from harness.api import compose
    from harness.precision.registry import get_scheme

    models, precisions, base = axes(args.preset, list(args.overrides))
    cells = order(models, precisions, [p for p in args.last.split(",") if p])

    def overrides_of(cell: Cell) -> list[str]:
        return [*base, f"model={cell.model}", f"precision={cell.precision}", "runner.isolate=false",
                f"runner.timeout_s={args.run_cap_s:g}"]

    from harness.config_key import config_hash
    from harness.record.store import done_hashes

    first = compose(overrides_of(cells[0]))
    bandwidth = args.bandwidth_gbs or _bandwidth(str(first.device))
    done = done_hashes(first.results.path)
    for cell in cells:
        cfg = compose(overrides_of(cell))
        cell.estimate_s = estimate_s(cfg, get_scheme(cell.precision), bandwidth)
        cell.recorded = config_hash(cfg) in done
    scale = measured_scale(str(first.results.path), {(c.model, c.precision): c.estimate_s for c in cells})
    for cell in cells:
        cell.estimate_s = 0.0 if cell.recorded else cell.estimate_s * (scale or 1.0)
    left = args.budget_s - (time.perf_counter() - t0)
    plan(cells, left)
    basis = f"x {scale:.2f} from the rows already recorded" if scale else "not yet scaled by a measured row"
    print(f"[one_process] plan: {len(cells)} cells, {left:.0f} s left; estimates from {bandwidth:.0f} GB/s "
          f"({basis}; projections, not measurements):", flush=True)
    total = 0.0
    for i, cell in enumerate(cells, 1):
        total += cell.estimate_s
        what = "recorded by an earlier call: skipped" if cell.recorded else \
            "expected" if cell.expected else "beyond the budget"
        print(f"[one_process]   {i:2d}. {cell.model} {cell.precision}: ~{cell.estimate_s:.0f} s (by {total:.0f} s) "
              f"{what}", flush=True)
    done: list[tuple[Cell, str, float]] = []
    for cell in cells:
        remaining = args.budget_s - (time.perf_counter() - t0)
        if not cell.recorded and remaining < min(cell.estimate_s, args.run_cap_s) * 0.5:
            continue  # too little left for this cell; a cheaper later one may still fit
        cap = min(args.run_cap_s, remaining)
        ov = overrides_of(cell)[:-1] + [f"runner.timeout_s={max(cap, 1):g}"]
        t_run = time.perf_counter()
        try:
            row = run_unless_recorded(compose(ov), ov)
        except ConfigRefused as exc:
            print(f"error: {cell.model} {cell.precision}: {exc}", file=sys.stderr, flush=True)
            row = {"status": "refused"}
        done.append((cell, str(row.get("status")), time.perf_counter() - t_run))
    started = {(c.model, c.precision) for c, _, _ in done}
    print(f"[one_process] {len(done)} of {len(cells)} cells in {time.perf_counter() - t0:.0f} s:", flush=True)
    for cell, status, seconds in done:
        print(f"[one_process]   {cell.model} {cell.precision}: {status}, {seconds:.1f} s (estimated "
              f"{cell.estimate_s:.0f} s)", flush=True)
    missing = [f"{c.model}/{c.precision}" for c in cells if (c.model, c.precision) not in started]
    print(f"[one_process] not started (time budget): {', '.join(missing) or 'none'}", flush=True)
    return 1 if any(s in ("failed",) for _, s, _ in done) else 0


def _bandwidth(device: str) -> float:
    """The machine's copy bandwidth (harness/measure/roofline.py: measured once, cached; every run reads it anyway)."""
    from harness.core.environment import resolve_device
    from harness.measure.roofline import bandwidth_gbs

    return bandwidth_gbs(resolve_device(device))


if __name__ == "__main__":
    sys.exit(main())
