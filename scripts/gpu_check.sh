#!/usr/bin/env bash
# GPU check (issue: GPU path, checked on a real GPU). Runs on a bare GPU machine with its own PyTorch and no network,
# from the repository root, in under 8 minutes:
#   1. installs the project's missing pure-Python dependencies from wheels carried in .whl/ (see below);
#   2. runs the CUDA tests (tests/gpu) and a small sweep on CUDA: an architecture-only 0.5B and 8B model x
#      fp16, bf16, bnb-int8, bnb-nf4, torchao int8 weight-only, torchao fp8 (where the GPU supports it), with CUDA-event
#      timing, max_memory_allocated/reserved and NVML memory, device name, driver and CUDA version in each row;
#   3. writes the CSV, the analysis report for the GPU's price profile and a log under $OUT (default: results/gpu).
# Prepare the wheels on a machine with PyPI (x86-64, CPython 3.12 on the GPU machine):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl \
#     hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 transformers==5.24.0 tokenizers==0.23.3 \
#     huggingface-hub==2.4.0 accelerate==1.15.0 torchao==0.18.0 bitsandbytes==0.50.2 safetensors psutil \
#     pandas matplotlib nvidia-ml-py
set -uo pipefail
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
GPU=$(python3 -c "import torch; n=torch.cuda.get_device_name().lower(); print('h200' if 'h200' in n else 'h100' if 'h100' in n else 'a100' if 'a100' in n else 'l4' if 'l4' in n else 't4')")
STAMP=$(date +%Y-%m-%d)
CSV="$OUT/${STAMP}-${GPU}.csv"
timeout 120 python3 -m pytest -q tests/gpu -p no:cacheprovider || echo "gpu tests failed"
timeout 400 python3 -m harness -m +sweep=gpu device=cuda results.path="$CSV" hydra.sweep.dir="$OUT/multirun" \
  runner.timeout_s=150 bench.repeats=5 progress=false
python3 -m harness.analysis "$CSV" --hardware "$GPU" --quality mmlu_acc --out "$OUT" || echo "report failed"
echo "rows: $CSV"
