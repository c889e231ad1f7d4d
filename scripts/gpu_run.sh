#!/usr/bin/env bash
# The GPU machine's one call (issue 24): the size x precision table on one GPU, in at most ~7 minutes of command time
# so that a second call still fits in the 15 device-minutes. Run from the repository root with .whl carried:
#
#   device run, carry [".whl"], timeout_s 480:   bash scripts/gpu_run.sh
#
# Steps, each timed in the log:
#   1. install the carried wheels (make gpu-wheels) into a target folder; the first failure stops the script (exit 3);
#   2. the CUDA tests (tests/gpu), at most 60 s;
#   3. the sweep preset (conf/sweep/gpu_h200.yaml): smallest model first, each run capped at RUN_CAP_S (a capped run
#      is a `timeout` row), the sweep stopped at BUDGET_S (runs not started are listed, not faked); after every run
#      the harness rewrites ONE archive, $OUT/results.tar.gz (CSV, side table, configs, logs, environment), so what
#      has finished comes back even if the call is cut;
#   4. a summary of every row.
# Files under $OUT: results.tar.gz and gpu_run.log (the limit is 8). Analysis runs afterwards where the files land:
#   tar xzf results.tar.gz -C results/gpu --strip-components=1 && python -m harness.analysis results/gpu/<date>-h200.csv --hardware h200
#
# `make gpu-rehearsal` runs this same script on the CPU (DEVICE=cpu, small models, the GPU machine's package versions).
set -uo pipefail
PY=${PY:-python3}
OUT=${OUT:-results/gpu/out}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-gpu_h200}
BUDGET_S=${BUDGET_S:-400}        # the whole script, wheels and tests included
RUN_CAP_S=${RUN_CAP_S:-90}       # one run (load, quantise, prove, speed, load curve)
SITE=${SITE:-/tmp/harness-site}
WORK=${WORK:-/tmp/harness-gpu-run}
WHEELS=${WHEELS:-.whl}           # the carried wheels (the tests point this at an empty folder)
SWEEP_ARGS=${SWEEP_ARGS:-}       # extra overrides, e.g. model=a,b precision=x,y (the rehearsal's small models)
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
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  "$PY" -c "import platform, torch, transformers, torchao, bitsandbytes; print('python:', platform.python_version()); print('torch:', torch.__version__, 'cuda', torch.version.cuda); print('transformers:', transformers.__version__); print('torchao:', torchao.__version__); print('bitsandbytes:', bitsandbytes.__version__)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "budget_s: $BUDGET_S  run_cap_s: $RUN_CAP_S  preset: $PRESET  args: $SWEEP_ARGS"
} > "$RESULTS/environment.txt" 2>&1
cat "$RESULTS/environment.txt"

if [ "$DEVICE" = cuda ]; then
  step "CUDA tests (tests/gpu, at most 60 s)"
  timeout 60 "$PY" -m pytest -q -p no:cacheprovider tests/gpu > "$RESULTS/cuda_tests.txt" 2>&1
  echo "exit code $?" >> "$RESULTS/cuda_tests.txt"
  tail -5 "$RESULTS/cuda_tests.txt"
fi

LEFT=$((BUDGET_S - (SECONDS - T0) - 15))
step "sweep +sweep=$PRESET on $DEVICE, $LEFT s left for it, each run capped at $RUN_CAP_S s"
# SIGINT at the budget: the harness kills the run in flight and stops; every finished run is already archived
# shellcheck disable=SC2086
timeout --signal=INT --kill-after=10 "$LEFT" "$PY" -m harness -m "+sweep=$PRESET" "device=$DEVICE" \
  "results.path=$CSV" "results.bundle=$OUT/results.tar.gz" "runner.timeout_s=$RUN_CAP_S" \
  "hydra.sweep.dir=$WORK/multirun" progress=false $SWEEP_ARGS
rc=$?
[ $rc = 124 ] && step "sweep stopped at the time budget (runs not started are listed below)"
"$PY" -m harness.record.files "$CSV" >/dev/null 2>&1
"$PY" - "$CSV" "$OUT/results.tar.gz" "$PRESET" "$SWEEP_ARGS" <<'EOF'
import sys
from harness.record.files import write_bundle
from harness.record.store import read_rows

csv, bundle, preset, args = sys.argv[1:]
rows = read_rows(csv) if __import__("os").path.exists(csv) else []
for r in rows:
    f = lambda k, fmt="{:.1f}": fmt.format(float(r[k])) if r.get(k) not in (None, "") else "-"
    print(f"{r['model']:>20} {r['precision']:>20} {r['status']:>11} run {f('run_s'):>6} s  c=1 {f('decode_tok_s'):>7} "
          f"tok/s  best {f('max_decode_tok_s'):>7} @ {r.get('max_decode_concurrency') or '-':>3}  weights "
          f"{f('cuda_weights_mb', '{:.0f}')} MiB  peak {f('cuda_peak_alloc_mb', '{:.0f}')} MiB  roofline "
          f"{f('roofline_frac', '{:.2f}')}  {(r.get('error') or '')[:80]}")
import itertools
import yaml

params = {k: str(v).split(",") for k, v in yaml.safe_load(open(f"conf/sweep/{preset}.yaml"))["hydra"]["sweeper"]["params"].items()}
params.update({k: v.split(",") for k, v in (a.split("=", 1) for a in args.split() if "=" in a) if k in params})
done = {(r["model"], r["precision"]) for r in rows}
missing = [c for c in itertools.product(params["model"], params["precision"]) if c not in done]
print(f"{len(rows)} rows in {csv}; not run (time budget): {', '.join('/'.join(c) for c in missing) or 'none'}")
write_bundle(csv, bundle)
EOF
step "done: $OUT/results.tar.gz"
ls -la "$OUT"
