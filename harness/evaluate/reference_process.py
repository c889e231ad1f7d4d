"""The reference model's outputs built in a process of its own (`python -m harness.evaluate.reference_process`, the job
on its stdin), before the measured model is loaded: a run's peak memory and time stay its own, a GPU never holds the
reference beside the measured model, and the sweep's order does not matter. One process builds everything a run
needs from that reference scheme (the quality reference and the capability baseline) with one load of the model.

Concurrent runs of one model (a launcher's workers, jobs of a cluster on one shared cache) build it once: the build
holds a lock file in the cache (flock, which Linux implements over NFS with POSIX locks too); a run that waited finds
the reference made and loads it. A build that fails raises with the child's own last error line; the run then keeps
its other columns and says the quality columns failed, and why."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Callable

from omegaconf import OmegaConf

from harness.evaluate import reference_cache as cache
from harness.core.logs import get
from harness.core.paths import cache_dir
from harness.core.lifetime import die_with_parent_preexec
from harness.core.cache_files import exclusive_lock


from harness.core.errors import ReferenceBuildError  # noqa: E402 - re-exported
from harness.config.schema import section  # noqa: E402


def needs(cfg, windows) -> dict[str, list[str]]:
    """Reference scheme -> what is missing for this run: 'reference' (quality) and/or 'capability'."""
    out: dict[str, list[str]] = {}
    if section(cfg, "quality").enabled and cache.reference_missing(cfg, windows):
        out.setdefault(str(cfg.quality.reference), []).append("reference")
    if section(cfg, "capability").enabled and cache.missing_capability(cfg):
        out.setdefault(str(cfg.capability.reference), []).append("capability")
    return out


def run_reference_process(cfg, precision: str, parts: list[str],
                          still_missing: Callable[[], list[str]] | None = None) -> None:
    """Build `parts` of the `precision` reference of this run's model in a child process, on that scheme's own engine,
    under the model's reference lock. `still_missing()` says, once the lock is held, which parts another run has not
    built meanwhile (default: all of `parts`)."""
    from harness.models.identity import model_label, path_name

    lock = cache_dir("locks") / f"reference-{path_name(cfg.model)}-{precision}.lock"
    with exclusive_lock(lock, waiting=f"another run is building the {precision} reference of "
                                      f"{model_label(cfg.model)}; waiting for it"):
        parts = [p for p in (still_missing() if still_missing else parts) if p in parts]
        if not parts:
            return
        base = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        base.precision = {"name": precision}
        base.engine = {**OmegaConf.to_container(cfg.engine), "name": "auto"}  # the scheme's own engine, same knobs
        job = json.dumps({"config": OmegaConf.to_container(base), "parts": parts})
        get(__name__).info(f"building the {precision} reference of {model_label(cfg.model)} once "
                           f"({' and '.join(parts)}; cached)")
        result_r, result_w = os.pipe()
        proc = subprocess.Popen([sys.executable, "-m", "harness.evaluate.reference_process"], stdin=subprocess.PIPE,
                                pass_fds=(result_w,), env={**os.environ, "HARNESS_RESULT_FD": str(result_w)},
                                preexec_fn=die_with_parent_preexec)
        os.close(result_w)
        try:
            proc.communicate(job.encode())
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            with os.fdopen(result_r) as result:
                error = result.read().strip()
        if proc.returncode != 0:
            how = error or (f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}")
            raise ReferenceBuildError(f"the {precision} reference of {model_label(cfg.model)} could not be built: "
                                      f"{how}")


def main() -> int:
    from harness.engines.base import build_engine, resolve_engine
    from harness.core.environment import resolve_device
    from harness.evaluate.capability import score_full
    from harness.evaluate.reference import write_reference
    from harness.evaluate.run_tasks import evaluate_tasks
    from harness.evaluate.windows import corpus_windows
    from harness.core.errors import Unavailable
    from harness.precision.registry import get_scheme, unavailable_reason

    job = json.loads(sys.stdin.read())
    cfg = OmegaConf.create(job["config"])
    out = os.fdopen(int(os.environ["HARNESS_RESULT_FD"]), "w")
    try:
        scheme = get_scheme(cfg.precision.name)
        device = resolve_device(cfg.device)
        if why := unavailable_reason(scheme, device):
            raise Unavailable(why)
        built = build_engine(cfg, scheme, device, resolve_engine(str(cfg.engine.name), scheme))
        try:
            if "reference" in job["parts"]:
                _, preds = evaluate_tasks(cfg, built.engine, built.tokenizer, None, "") if cfg.eval.tasks else ({}, {})
                windows = corpus_windows(built.tokenizer, int(cfg.quality.context), int(cfg.quality.max_tokens))
                write_reference(cfg, built.engine, built.tokenizer, windows, preds)
            if "capability" in job["parts"]:
                for task in cache.missing_capability(cfg):
                    cache.atomic_save(score_full(cfg, built.engine, built.tokenizer, task),
                                      cache.capability_reference_path(cfg, task), as_json=True)
        finally:
            built.engine.close()
    except Exception as exc:  # noqa: BLE001 - the parent gets the reason in one line
        import traceback

        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        out.write(f"{type(exc).__name__}: {first}"[:500])
        out.close()
        return 1
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
