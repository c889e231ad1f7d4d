"""The few aligned lines a run ends with: speed, latency, memory, accuracy with its interval, quality vs baseline."""
from __future__ import annotations

from harness.record.schema import NAMES

TASKS = tuple(n.removesuffix("_acc") for n in NAMES if n.endswith("_acc"))


def _num(row: dict, key: str) -> float | None:
    value = row.get(key)
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def summary_lines(label: str, row: dict) -> list[str]:
    status = row.get("status", "?")
    lines = [f"[harness] {label}: {status}"]
    if status != "ok":
        lines.append(f"  error     {row.get('error') or ''}")
        if row.get("log_path"):
            lines.append(f"  log       {row['log_path']}")
        return lines
    g = lambda k: _num(row, k)  # noqa: E731
    if g("decode_tok_s") is not None:
        lines.append(f"  speed     decode {g('decode_tok_s'):.1f} tok/s, prefill {g('prefill_tok_s'):.0f} tok/s "
                     f"(batch {row.get('batch_size')}, {row.get('prompt_tokens')}-token prompt, "
                     f"{row.get('new_tokens')} new tokens)")
        n = lambda k: f", n={g(k):.0f}" if g(k) is not None else ""  # noqa: E731
        lines.append(f"  latency   TTFT p50 {g('ttft_ms_p50'):.1f} ms{n('ttft_n')}; per token p50 "
                     f"{g('tpot_ms_p50'):.1f} / p90 {g('tpot_ms_p90'):.1f} / p99 {g('tpot_ms_p99'):.1f} ms{n('tpot_n')}")
    if g("max_decode_tok_s") is not None and "," in str(row.get("concurrency_levels") or ""):
        lines.append(f"  load      max decode {g('max_decode_tok_s'):.1f} tok/s at concurrency "
                     f"{g('max_decode_concurrency'):.0f} (levels {row.get('concurrency_levels')}; "
                     f"{row.get('curve_stop')})")
    if row.get("loadgen_note"):
        qps = [f"{p['profile']} {_num(p, 'qps'):g} q/s ({_num(p, 'tok_s'):.0f} tok/s, n={_num(p, 'n'):.0f})"
               if _num(p, "qps") is not None else f"{p['profile']} none VALID"
               for p in row.get("loadgen_profiles") or []]
        offline = f"Offline {g('loadgen_offline_tok_s'):.0f} tok/s; " if g("loadgen_offline_tok_s") is not None else ""
        lines.append(f"  loadgen   {offline}highest VALID Server QPS: {'; '.join(qps) or '-'} "
                     f"({row['loadgen_note']})")
    if g("weight_bytes") is not None:
        lines.append(f"  memory    weights {g('weight_bytes') / 1e6:.1f} MB ({g('bits_per_weight'):.2f} bits/weight), "
                     f"peak RSS {g('peak_rss_mb'):.0f} MiB")
    for task in TASKS:
        acc, se, n = g(f"{task}_acc"), g(f"{task}_stderr"), g(f"{task}_n")
        if acc is not None:
            chance = g(f"{task}_chance")
            lines.append(f"  {task:<9} {acc:.3f} +- {1.96 * (se or 0):.3f} (95%, n={n:.0f}"
                         + (f", chance {chance:.3f})" if chance is not None else ")"))
    if g("capability") is not None:
        lines.append(f"  capability {g('capability'):.3f} +- {g('capability_ci95'):.3f} (95%, estimate of "
                     f"{row.get('capability_tasks')} on {g('capability_full_n'):.0f} questions from "
                     f"{g('capability_n'):.0f} scored)")
    if g("kld_mean") is not None:
        delta, dse = g("ppl_delta"), g("ppl_delta_stderr")
        lines.append(f"  quality   vs {row.get('quality_ref') or 'baseline'}: KLD {g('kld_mean'):.4f} nats, "
                     f"top-1 agree {g('top1_agree'):.3f}, ppl {g('ppl'):.2f}"
                     + (f" ({delta:+.2f} +- {1.96 * (dse or 0):.2f})" if delta is not None else ""))
    return lines
