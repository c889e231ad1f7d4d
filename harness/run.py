"""One run, in the current process: resolve -> build the engine (load, apply precision, prove) -> measure ->
evaluate -> quality -> the row's measured columns. Orchestration only: each step lives in its own package.

`measure_in_process` returns the row's measured columns; the runner adds identity columns and appends it to the CSV.
"""
from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

from harness.config.schema import BenchConfig, section
from harness.engines.base import build_engine, resolve_engine
from harness.core.environment import device_facts, resolve_device
from harness.core.errors import ConfigError, Unavailable
from harness.precision.registry import get_scheme, unavailable_reason
from harness.record.schema import Record


def _library_version(library: str) -> str:
    try:
        return f"{library} {importlib.metadata.version(library)}"
    except importlib.metadata.PackageNotFoundError:
        return library


def engine_name(cfg, scheme) -> str:
    """The engine this run uses (`engine=auto`: the scheme's first); an impossible pair raises Unavailable."""
    return resolve_engine(section(cfg, "engine").name, scheme)


def identity(cfg) -> dict:
    from harness.models.identity import model_label

    scheme = get_scheme(cfg.precision.name)
    try:
        engine = engine_name(cfg, scheme)
    except Unavailable:
        engine = str(cfg.engine.name)
    from harness.config_key import checkpoint_fingerprint

    return {"model": model_label(cfg.model), "model_source": str(cfg.model.get("source", "")),
            "checkpoint_fingerprint": checkpoint_fingerprint(cfg.model),
            "weights": section(cfg, "model").weights, "precision": scheme.name,
            "scheme_bits": scheme.bits, "engine": engine, "batch_size": cfg.bench.batch_size,
            "prompt_tokens": cfg.bench.prompt_tokens, "new_tokens": cfg.bench.new_tokens,
            "repeats": cfg.bench.repeats, "concurrency": _levels_label(cfg.bench)}


def evaluates(cfg) -> bool:
    """Accuracy and quality mean nothing on random weights (tiny-random opts in, to test the plumbing)."""
    return section(cfg, "model").evaluate


def placement_columns(placement: dict[str, int]) -> dict:
    """The devices the weights sit on and the bytes on each (`cuda:0=15312.4;cuda:1=15010.2`, MiB)."""
    if not placement:
        return {}
    gpus = sorted(d for d in placement if d.startswith("cuda"))
    return {"weight_devices": ",".join(sorted(placement)), "gpu_count": len(gpus),
            "weights_per_device_mb": ";".join(f"{d}={b / 2**20:.1f}" for d, b in sorted(placement.items()))}


def _levels_label(bench) -> str:
    try:
        return ",".join(str(c) for c in BenchConfig.of(bench).levels)
    except ConfigError:
        return str(bench.get("concurrency"))


def measure_in_process(cfg, predictions_dir: Path | None = None, run_id: str = "") -> dict:
    import torch

    scheme = get_scheme(cfg.precision.name)
    try:
        device = resolve_device(cfg.device)
    except RuntimeError as exc:  # device=cuda without a GPU: nothing to measure here
        raise Unavailable(str(exc)) from exc
    engine_choice = engine_name(cfg, scheme)  # before any load
    reason = unavailable_reason(scheme, device)
    if reason:
        raise Unavailable(reason)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    torch.manual_seed(int(cfg.seed))
    row = Record(device=device, library=_library_version(scheme.library), **device_facts(device))
    from harness.precision.openvino import DATA_AWARE

    if scheme.how == "calibrated" or scheme.name in DATA_AWARE:
        from harness.precision.calibrated import calibration_label, calibration_of

        row["calibration"] = calibration_label(calibration_of(cfg), scheme.name)
    if scheme.how == "shipped":  # the bits the checkpoint declares (Unavailable, with the reason, if none)
        from harness.models.checkpoint import checkpoint
        from harness.precision.calibrated import declared

        row["scheme_bits"] = declared(checkpoint(cfg.model).folder)["bits"]
        row["calibration"] = "as published (not calibrated here)"
    real = evaluates(cfg)
    failed: dict[str, str] = {}
    if real:
        from harness.evaluate.reference_cache import resolve_references

        resolve_references(cfg)
        failed = references_first(cfg, engine_choice)
    if device == "cuda":  # measured (or read from the cache) before the load: its buffers are in no reported peak
        from harness.measure.roofline import bandwidth_gbs

        bandwidth_gbs(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    from harness.measure.memory import current_rss_mb, peak_rss_mb

    row["rss_before_load_mb"] = current_rss_mb()
    built = build_engine(cfg, scheme, device, engine_choice)
    engine, tokenizer, proof = built.engine, built.tokenizer, built.proof
    row["load_peak_rss_mb"] = peak_rss_mb()
    if device == "cuda":  # what the loaded model holds, then peaks from here on are the measurement's own
        from harness.measure.memory import cuda_after_load_mb

        row["cuda_weights_mb"], row["cuda_load_peak_mb"] = cuda_after_load_mb()
    try:
        plan = built.plan
        row.update(model_params=proof.model_params, source_weights=built.source_weights, load_s=built.load_s,
                   convert_s=built.convert_s, architecture=built.architecture or None,
                   compute_dtype=plan.compute_dtype if plan is not None else scheme.compute_dtype(device),
                   load_plan=plan.describe() if plan is not None else None,
                   weight_bytes=proof.weight_bytes, bits_per_weight=proof.bits_per_weight,
                   linear_bits_per_weight=proof.linear_bits_per_weight, quantized_fraction=proof.quantized_fraction,
                   quantized_types=proof.types, **placement_columns(built.placement))
        gpus = sorted(int(d.split(":")[1]) for d in built.placement if d.startswith("cuda:"))
        row.update(_measure(cfg, engine, tokenizer, proof, run_id, gpus))
        row["engine_rss_mb"] = engine.external_rss_mb()
        from harness.measure.memory import cuda_peaks_mb

        alloc, row["cuda_peak_reserved_mb"] = cuda_peaks_mb()
        if alloc is not None:  # the highest of the speed measurement, each curve level and what came after
            row["cuda_peak_alloc_mb"] = max(alloc, row.get("cuda_peak_alloc_mb") or 0.0)
        predictions: dict = {}
        if real and cfg.eval.tasks:
            from harness.evaluate.run_tasks import evaluate_tasks

            t_phase = time.perf_counter()
            columns, predictions = evaluate_tasks(cfg, engine, tokenizer, predictions_dir, run_id)
            row.update(columns, eval_s=time.perf_counter() - t_phase)
        if real and section(cfg, "capability").enabled:
            if "capability" in failed:
                row["capability_status"] = f"failed: {failed['capability']}"
            else:
                from harness.evaluate.capability import capability_columns

                t_phase = time.perf_counter()
                row.update(capability_columns(cfg, engine, tokenizer, predictions_dir, run_id),
                           capability_s=time.perf_counter() - t_phase, capability_status="ok")
        if real and section(cfg, "quality").enabled:
            if "reference" in failed:
                row["quality_status"] = f"failed: {failed['reference']}"
            else:
                from harness.evaluate.quality import quality_columns

                t_phase = time.perf_counter()
                row.update(quality_columns(cfg, engine, tokenizer, predictions),
                           quality_s=time.perf_counter() - t_phase, quality_status="ok")
    finally:
        engine.close()
    row["peak_rss_mb"] = peak_rss_mb()
    if device == "cuda":
        from harness.measure.memory import nvml_used_mb

        row.update(nvml_used_mb(gpus or [0]))
    return row


def references_first(cfg, engine_choice: str) -> dict[str, str]:
    """What this run compares against that is not cached yet (the quality reference, the capability baseline) is
    built before the run's own model loads, in one process per reference scheme (one load of that model), under a
    lock that makes concurrent runs build it once. A run that is itself the reference writes its own outputs as it
    measures them. Returns the parts whose build failed, with the reason: the run goes on without them."""
    from harness.evaluate.reference_cache import missing_capability, reference_missing
    from harness.evaluate.reference_process import ReferenceBuildError, run_reference_process, needs
    from harness.evaluate.capability import is_reference_run
    from harness.core.logs import get

    windows = None
    try:
        if section(cfg, "quality").enabled:
            from harness.evaluate.windows import corpus_windows
            from harness.models.checkpoint import tokenizer_of

            windows = corpus_windows(tokenizer_of(cfg.model), int(cfg.quality.context), int(cfg.quality.max_tokens))
        wanted = needs(cfg, windows)
    except Exception as exc:  # noqa: BLE001 - no reference can be judged: the run's own columns still count
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return {"reference": reason, "capability": reason}
    failed: dict[str, str] = {}
    for precision, parts in wanted.items():
        if precision == cfg.precision.name:
            parts = [p for p in parts if p == "capability" and not is_reference_run(cfg, engine_choice)]
            if not parts:
                continue  # this run is the reference: it writes them itself

        def still_missing(parts=parts) -> list[str]:
            out = ["reference"] if "reference" in parts and reference_missing(cfg, windows) else []
            return out + (["capability"] if "capability" in parts and missing_capability(cfg) else [])

        try:
            run_reference_process(cfg, precision, parts, still_missing)
        except Exception as exc:  # noqa: BLE001 - the row keeps speed and accuracy, its quality says why not
            reason = str(exc) if isinstance(exc, ReferenceBuildError) else \
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            get(__name__).warning(f"{reason}; this run goes on without {' and '.join(parts)}")
            failed.update({p: reason[:400] for p in parts})
    return failed


def _measure(cfg, engine, tokenizer, proof, run_id: str = "", gpus: list[int] | None = None) -> dict:
    """Speed at bench.batch_size (warm-up, timed repeats), the memory roofline, then the load curve over
    bench.concurrency (its batch-1 level is the measurement above when batch_size is 1: same prompt, not rerun)."""
    from harness.measure.load_curve import curve_columns, level, load_curve
    from harness.measure.roofline import roofline_columns
    from harness.measure.speed import bench_prompt, measure_speed

    b = cfg.bench
    t_phase = time.perf_counter()
    prompt = bench_prompt(tokenizer, b.prompt_tokens, b.batch_size, engine.vocab_size)
    from harness.measure.energy import EnergyMeter

    out = measure_speed(engine, prompt, b.new_tokens, b.warmup, b.repeats, energy=EnergyMeter(engine.device, gpus))
    out.update(roofline_columns(engine, proof.weight_bytes, b.prompt_tokens + b.new_tokens // 2, b.batch_size,
                                out["decode_tok_s"]))
    out["kv_bytes_per_token"] = engine.kv_bytes_per_token()
    out["decode_path"] = engine.decode_path or None
    from harness.measure.host_bound import gpu_busy_columns

    out.update(gpu_busy_columns(engine, prompt))
    out["bench_s"] = time.perf_counter() - t_phase
    t_phase = time.perf_counter()
    from harness.measure.memory import cuda_peaks_mb

    bench_peak = cuda_peaks_mb()[0]  # the curve resets the peaks per level: the speed measurement's first
    if int(b.batch_size) == 1:  # every curve starts from the batch-1 measurement just made
        known = {1: level(1, out, out["kv_bytes_per_token"], b.prompt_tokens + b.new_tokens, out["bench_s"],
                          bench_peak)}
        levels, why = load_curve(engine, tokenizer, b, known=known)
    elif BenchConfig.of(b).levels != [int(b.batch_size)]:
        levels, why = load_curve(engine, tokenizer, b)
    else:  # a batch measured above with one prompt copied, and no curve asked for
        levels, why = [], ""
    out.update(curve_columns(levels, why), load_curve=levels, curve_s=time.perf_counter() - t_phase)
    peaks = [p for p in [bench_peak, *(lv.get("cuda_peak_alloc_mb") for lv in levels)] if p is not None]
    if peaks:
        out["cuda_peak_alloc_mb"] = max(peaks)
    if BenchConfig.of(b).loadgen.enabled:
        from harness.measure.loadgen import loadgen_columns
        from harness.profiles.slo import load_slo
        from harness.record import layout

        t_phase = time.perf_counter()
        logs = layout.folder(cfg.results.path, "loadgen")
        logs.mkdir(parents=True, exist_ok=True)
        out.update(loadgen_columns(cfg, engine, tokenizer, [load_slo(n) for n in b.loadgen.profiles], logs,
                                   run_id, speed=out), loadgen_s=time.perf_counter() - t_phase)
    return out
