"""One run, in the current process: load -> apply precision -> prove -> measure -> evaluate -> row.

`execute` returns the row's measured columns; the runner adds identity columns and appends it to the CSV.
"""
from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

from harness.environment import device_facts, resolve_device
from harness.precision.registry import get_scheme, unavailable_reason


class Unavailable(RuntimeError):
    """This scheme cannot run on this device; recorded as status=unavailable with the reason."""


def _library_version(library: str) -> str:
    try:
        return f"{library} {importlib.metadata.version(library)}"
    except importlib.metadata.PackageNotFoundError:
        return library


def identity(cfg) -> dict:
    scheme = get_scheme(cfg.precision.name)
    return {"model": cfg.model.name, "weights": cfg.model.get("weights", "real"), "precision": scheme.name,
            "scheme_bits": scheme.bits, "backend": scheme.backend, "batch_size": cfg.bench.batch_size,
            "prompt_tokens": cfg.bench.prompt_tokens, "new_tokens": cfg.bench.new_tokens,
            "repeats": cfg.bench.repeats}


def execute(cfg, predictions_dir: Path | None = None, run_id: str = "") -> dict:
    import torch

    scheme = get_scheme(cfg.precision.name)
    try:
        device = resolve_device(cfg.device)
    except RuntimeError as exc:  # device=cuda without a GPU: nothing to measure here
        raise Unavailable(str(exc)) from exc
    reason = unavailable_reason(scheme, device)
    if reason:
        raise Unavailable(reason)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    torch.manual_seed(int(cfg.seed))
    row: dict = {"device": device, "library": _library_version(scheme.library), **device_facts(device)}

    if scheme.backend == "llamacpp":
        from harness.engines.llamacpp import prepare

        engine, tokenizer, loaded, proof, load_s = prepare(cfg, scheme)
    else:
        engine, tokenizer, loaded, proof, load_s = _prepare_hf(cfg, scheme, device)
    row.update(model_params=proof.model_params, baseline=loaded.baseline, load_s=load_s,
               weight_bytes=proof.weight_bytes, bits_per_weight=proof.bits_per_weight,
               linear_bits_per_weight=proof.linear_bits_per_weight, quantized_fraction=proof.quantized_fraction,
               quantized_types=proof.types)

    from harness.measure.memory import cuda_peaks_mb, peak_rss_mb
    from harness.measure.speed import bench_prompt, measure_speed

    b = cfg.bench
    t_phase = time.perf_counter()
    prompt = bench_prompt(tokenizer, b.prompt_tokens, b.batch_size, engine.vocab_size)
    row.update(measure_speed(engine, prompt, b.new_tokens, b.warmup, b.repeats, device))

    from harness.measure.roofline import roofline_columns

    row.update(roofline_columns(engine, proof.weight_bytes, b.prompt_tokens + b.new_tokens // 2, b.batch_size,
                                row["decode_tok_s"]))
    row["bench_s"] = time.perf_counter() - t_phase

    # accuracy and quality mean nothing on random weights (tiny-random opts in, to test the plumbing)
    real = bool(cfg.model.get("evaluate", loaded.weights == "real"))
    if real and cfg.eval.tasks:
        t_phase = time.perf_counter()
        columns, predictions = _evaluate(cfg, engine, tokenizer, predictions_dir, run_id)
        row.update(columns, eval_s=time.perf_counter() - t_phase)
    else:
        predictions = {}
    if real and cfg.quality.get("enabled"):
        from harness.evaluate.quality import quality_columns

        t_phase = time.perf_counter()
        row.update(quality_columns(cfg, engine, tokenizer, predictions), quality_s=time.perf_counter() - t_phase)
    row["peak_rss_mb"] = peak_rss_mb()
    row["cuda_peak_alloc_mb"], row["cuda_peak_reserved_mb"] = cuda_peaks_mb()
    if device == "cuda":
        from harness.measure.memory import nvml_used_mb

        row["nvml_used_mb"] = nvml_used_mb()
    if hasattr(engine, "close"):
        engine.close()
    return row


def _prepare_hf(cfg, scheme, device):
    import torch

    from harness.engines.hf import HFEngine
    from harness.models import load_model, warm_imports
    from harness.precision.proof import config_param_count, count_params, linear_inventory, prove

    warm_imports(cfg.model, scheme.requires)
    t0 = time.perf_counter()
    load_kwargs = scheme.load_kwargs() if scheme.load_kwargs else {}
    if load_kwargs and device == "cuda":
        load_kwargs["device_map"] = "cuda"
    loaded = load_model(cfg.model, device=device, load_kwargs=load_kwargs)
    model = loaded.model
    params = config_param_count(model.config) if load_kwargs else count_params(model)
    inventory = linear_inventory(model)
    if not load_kwargs and device != "cpu":
        model = model.to(device)
    if scheme.fits and (why := scheme.fits(model)):
        raise Unavailable(f"{scheme.name}: {why}")
    if scheme.apply:
        model = scheme.apply(model, device)
    model.eval()
    proof = prove(model, scheme, inventory, params)
    load_s = time.perf_counter() - t0
    tok = loaded.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    engine = HFEngine(model, device=device, pad_id=pad)
    torch.manual_seed(int(cfg.seed))
    return engine, tok, loaded, proof, load_s


def eval_batch_size(cfg, engine) -> int | None:
    """`eval.batch_size`, with `auto` resolved: on CPU None, i.e. batches of at most 256 padded new tokens (one MMLU
    question per forward, several short ARC answers: padding a batch to its longest input costs more there than
    batching gains; measured 1.5x faster than 8 on MMLU 5-shot), 16 on CUDA."""
    bs = cfg.eval.get("batch_size", "auto")
    if bs == "auto":
        return None if getattr(engine, "device", "cpu") == "cpu" else 16
    if not isinstance(bs, int) or bs < 1:
        raise ValueError(f"eval.batch_size must be a positive integer or auto, not {bs!r}")
    return bs


def _evaluate(cfg, engine, tokenizer, predictions_dir, run_id) -> tuple[dict, dict]:
    """Every task in eval.tasks: accuracy columns, and per-question predictions saved beside the CSV."""
    from harness.evaluate.accuracy import evaluate_task, save_predictions
    from harness.evaluate.tasks import load_task

    out: dict = {}
    by_task: dict = {}
    for task in cfg.eval.tasks:
        limit = cfg.eval.per_subject if load_task(task).spec.get("group_by") else cfg.eval.get("limit")
        m, preds = evaluate_task(engine, tokenizer, task, cfg.eval.shots, limit, eval_batch_size(cfg, engine),
                                 progress=cfg.get("progress", True), groups=cfg.eval.get("subjects"))
        out.update({f"{task}_acc": m["acc"], f"{task}_acc_norm": m["acc_norm"], f"{task}_stderr": m["stderr"],
                    f"{task}_n": m["n"], f"{task}_shots": m["shots"], f"{task}_subset": m["subset"],
                    f"{task}_chance": m["chance"]})
        if task == "mmlu":
            out["mmlu_ci95"] = 1.96 * m["stderr"]
        if predictions_dir is not None:
            path = predictions_dir / f"{run_id}.{task}.jsonl"
            save_predictions(path, preds)
            out.setdefault("predictions_path", str(path))
        by_task[task] = preds
    return out, by_task
