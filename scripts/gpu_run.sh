#!/usr/bin/env bash
# The GPU machine's call (issue 39): the size x precision table on one GPU in one process, most valuable cells first,
# within a budget that leaves room for a second call in the 15 device-minutes. Run from the repository root with .whl
# carried; `make gpu-command` prints the exact call (with the commit passed in: no .git travels):
#
#   device run, carry [".whl"], timeout_s 480:   HARNESS_COMMIT=<sha> bash scripts/gpu_run.sh
#
# Steps, each timed in the log:
#   1. install the carried wheels (make gpu-wheels) into a target folder; the first failure stops the script (exit 3);
#   2. resume: the archive of an earlier call (RESUME_FROM, default results/gpu/partial/results.tar.gz when present:
#      it travels with the tree) is unpacked into the results folder; its configurations are skipped, its rows kept;
#   3. the smoke test of the CUDA paths the CPU rehearsal cannot run (scripts/gpu/smoke.py, one process, ~15 s);
#   4. the sweep (harness/one_process.py +sweep=$PRESET): one process, the plan printed first (each cell's estimate and
#      which cells it expects to reach), each run capped at RUN_CAP_S (a capped run is a `timeout` row), the loop
#      stopped at the budget (cells not started are listed, not faked); after every run the harness rewrites ONE
#      archive, $OUT/results.tar.gz (both calls' rows, side tables, configs, logs, environment), so what has
#      finished comes back even if the call is cut;
#   5. a summary of every row.
# Files under $OUT: results.tar.gz and gpu_run.log (the limit is 8). Back here (docs/guides/gpu.md):
#   tar xzf results.tar.gz -C results/gpu --strip-components=1 && python -m harness.analysis results/gpu/<csv> --hardware h200
#
# `make gpu-rehearsal` runs this same script on the CPU twice (DEVICE=cpu, small models, the GPU machine's versions).
set -uo pipefail
PY=${PY:-python3}
OUT=${OUT:-results/gpu/out}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-gpu_h200}
BUDGET_S=${BUDGET_S:-400}        # the whole script, wheels and smoke test included
RUN_CAP_S=${RUN_CAP_S:-90}       # one run (load, quantise, prove, speed, load curve)
SITE=${SITE:-/tmp/harness-site}
WORK=${WORK:-/tmp/harness-gpu-run}
WHEELS=${WHEELS:-.whl}           # the carried wheels (the tests point this at an empty folder)
SWEEP_ARGS=${SWEEP_ARGS:-}       # extra overrides, e.g. model=a,b precision=x,y (the rehearsal's small models)
RESUME_FROM=${RESUME_FROM:-results/gpu/partial/results.tar.gz}
COMMIT=${HARNESS_COMMIT:-unknown (pass HARNESS_COMMIT=\$(git rev-parse HEAD) from the checkout: no .git travels)}
T0=$SECONDS
mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/gpu_run.log") 2>&1
step() { echo "[gpu_run] $((SECONDS - T0)) s: $*"; }

step "installing the carried wheels into $SITE"
shopt -s nullglob
wheels=("$WHEELS"/*.whl)
shopt -u nullglob
set -f  # SWEEP_ARGS below holds Hydra lists like [1,8]: no globbing
if ((${#wheels[@]})); then
  rm -rf "$SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}" \
    || { step "FAILED: wheel install (nothing else was run)"; exit 3; }
fi
export PYTHONPATH="$SITE:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
  HARNESS_CACHE="$WORK/cache" MPLCONFIGDIR="$WORK/mpl"
"$PY" -c "import hydra, omegaconf, torchao, bitsandbytes, transformers, harness.run, harness.launch" \
  || { step "FAILED: imports (nothing else was run)"; exit 3; }

if [ "$DEVICE" = cuda ]; then
  GPU=$("$PY" -c "import torch; n = torch.cuda.get_device_name().lower(); print(next((g for g in ('h200', 'h100', 'a100', 'l4', 't4') if g in n), 'gpu'))") \
    || { step "FAILED: no CUDA device"; exit 3; }
else
  GPU=cpu
fi
RESULTS="$WORK/results"
rm -rf "$RESULTS" "$WORK/multirun"
mkdir -p "$RESULTS"
CSV="$RESULTS/$(date -u +%Y-%m-%d)-$GPU.csv"
if [ -n "$RESUME_FROM" ] && [ -f "$RESUME_FROM" ]; then
  tar xzf "$RESUME_FROM" -C "$RESULTS" --strip-components=1 \
    || { step "FAILED: $RESUME_FROM is not a results archive (nothing else was run)"; exit 3; }
  earlier=$(ls "$RESULTS"/*.csv 2>/dev/null | grep -v -e '\.curves\.csv$' -e '\.loadgen\.csv$' | head -1)
  [ -n "$earlier" ] && CSV="$earlier"
  step "resuming from $RESUME_FROM: $(($(wc -l < "$CSV") - 1)) rows of $(basename "$CSV") kept; recorded configurations are skipped"
fi
NOTES="${CSV%.csv}.notes"   # travels in the archive with the CSV (harness/record/files.py bundle_members)
mkdir -p "$NOTES"
for f in "$NOTES"/environment.txt "$NOTES"/smoke.txt; do [ -f "$f" ] && mv "$f" "${f%.txt}-earlier-call.txt"; done
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $COMMIT"
  "$PY" -c "import platform, torch, transformers, torchao, bitsandbytes; print('python:', platform.python_version()); print('torch:', torch.__version__, 'cuda', torch.version.cuda); print('transformers:', transformers.__version__); print('torchao:', torchao.__version__); print('bitsandbytes:', bitsandbytes.__version__)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "budget_s: $BUDGET_S  run_cap_s: $RUN_CAP_S  preset: $PRESET  args: $SWEEP_ARGS  resumed: ${earlier:-no}"
} > "$NOTES/environment.txt" 2>&1
cat "$NOTES/environment.txt"

step "smoke test of the CUDA paths (scripts/gpu/smoke.py, at most 60 s)"
timeout 60 "$PY" scripts/gpu/smoke.py > "$NOTES/smoke.txt" 2>&1
echo "exit code $?" >> "$NOTES/smoke.txt"
cat "$NOTES/smoke.txt"

LEFT=$((BUDGET_S - (SECONDS - T0) - 20))
if [ "$LEFT" -le 0 ]; then
  step "no time left for the sweep (budget $BUDGET_S s spent before it): nothing run"
else
  step "sweep +sweep=$PRESET in one process on $DEVICE, $LEFT s left for it, each run capped at $RUN_CAP_S s"
  # the loop stops itself between runs; the outer timeout (SIGINT, then SIGKILL) only catches a run stuck in C code
  # shellcheck disable=SC2086
  timeout --signal=INT --kill-after=10 "$((LEFT + 15))" "$PY" -m harness.one_process --preset "$PRESET" \
    --last fp16 --budget-s "$LEFT" --run-cap-s "$RUN_CAP_S" "device=$DEVICE" "results.path=$CSV" \
    "results.bundle=$OUT/results.tar.gz" progress=false $SWEEP_ARGS
  rc=$?
  [ $rc = 124 ] && step "sweep stopped by the outer timeout (a run stuck past its cap)"
fi
"$PY" -m harness.record.files "$CSV" >/dev/null 2>&1
"$PY" - "$CSV" "$OUT/results.tar.gz" <<'EOF'
import os
import sys

from harness.record.files import write_bundle
from harness.record.store import read_rows

csv, bundle = sys.argv[1:]
rows = read_rows(csv) if os.path.exists(csv) else []
for r in rows:
    f = lambda k, fmt="{:.1f}": fmt.format(float(r[k])) if r.get(k) not in (None, "") else "-"
    print(f"{r['model']:>20} {r['precision']:>20} {r['status']:>11} run {f('run_s'):>6} s  c=1 {f('decode_tok_s'):>7} "
          f"tok/s  best {f('max_decode_tok_s'):>7} @ {r.get('max_decode_concurrency') or '-':>3}  weights "
          f"{f('cuda_weights_mb', '{:.0f}')} MiB  peak {f('cuda_peak_alloc_mb', '{:.0f}')} MiB  roofline "
          f"{f('roofline_frac', '{:.2f}')}  busy {f('gpu_busy_frac', '{:.2f}')}  J/tok "
          f"{f('energy_j_per_token', '{:.3f}')}  {(r.get('error') or '')[:80]}")
print(f"{len(rows)} rows in {csv}")
if os.path.exists(csv):
    write_bundle(csv, bundle)
EOF
step "done: $OUT/results.tar.gz"
ls -la "$OUT"
