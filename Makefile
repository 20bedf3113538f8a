# kaic — `make help` lists the targets. `make ci` runs lint, typecheck and the tests; .ci/run also builds and starts the
# dev cluster and runs the e2e tier against it, beside the other tiers (README, Develop).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
KAIC := $(VENV)/bin/kaic
PYTEST_ARGS ?=
.DEFAULT_GOAL := help

.PHONY: help install run test test-unit lint typecheck golden check-golden chart-workflows check-chart ci lock clean \
	cluster cluster-down cluster-status cluster-build e2e

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# torch first, pinned: PyPI's torch==2.13.0 is the CUDA build (about 2.7 GB to download); it runs on the CPU
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(VENV)/.installed ## create .venv (if missing) and install kaic with pinned dependencies

run: install ## run the conformance workflow on this machine (no cluster) and print where the report is
	$(KAIC) run --profile local --suite quick

test: install ## run the test suite (unit, integration, faults; e2e against the dev cluster or skipped; gpu skipped without CUDA)
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test-unit: install ## run only the fast unit tier
	$(VENV)/bin/pytest -q -m unit $(PYTEST_ARGS)

lint: install ## ruff, hadolint, the generated-files checks and the offline deployment checks
	$(VENV)/bin/ruff check .
	$(VENV)/bin/hadolint images/*.Dockerfile && echo "hadolint: images/*.Dockerfile clean"
	$(MAKE) --no-print-directory check-golden
	$(MAKE) --no-print-directory check-chart
	$(PY) scripts/verify_deploy.py

typecheck: install ## mypy --strict on kaic, steps and pipelines
	$(VENV)/bin/mypy

golden: install ## regenerate the compiled-workflow golden files on purpose
	$(KAIC) compile --out tests/golden

check-golden: install ## fail when `kaic compile` output differs from tests/golden
	@tmp=$$(mktemp -d) && $(KAIC) compile --out $$tmp >/dev/null && diff -ru tests/golden $$tmp && rm -rf $$tmp \
	  && echo "golden files are current"

chart-workflows: install ## regenerate the chart's copy of the compiled workflows (charts/kaic/files/workflows)
	$(KAIC) compile --out charts/kaic/files/workflows

check-chart: install ## fail when `kaic compile` output differs from the chart's copy
	@tmp=$$(mktemp -d) && $(KAIC) compile --out $$tmp >/dev/null && diff -ru charts/kaic/files/workflows $$tmp \
	  && rm -rf $$tmp && echo "chart workflows are current" \
	  || { rm -rf $$tmp; echo "charts/kaic/files/workflows is stale: run make chart-workflows"; exit 1; }

ci: lint typecheck test ## what CI runs

# The dev cluster (docs/dev-cluster.md): a real Kubernetes control plane built from Go modules, kwok nodes,
# Kueue. These install only where no .venv is installed: a checkout sharing one never reinstalls into it.
VENV_READY = test -f $(VENV)/.installed || $(MAKE) --no-print-directory install

cluster: ## build what is missing, start the local Kubernetes dev cluster, print its kubeconfig path
	@$(VENV_READY)
	$(PY) -m kaic.devcluster up

cluster-down: ## stop every process the dev cluster started (recorded PIDs) and check no port is left open
	$(PY) -m kaic.devcluster down

cluster-status: ## the dev cluster's processes and their ports
	$(PY) -m kaic.devcluster status

cluster-build: ## build the dev cluster's pinned Go binaries that are missing from the cache
	@$(VENV_READY)
	$(PY) -m kaic.devcluster build

e2e: ## the e2e tier against the running dev cluster (or KAIC_E2E_KUBECONFIG)
	@$(VENV_READY)
	KAIC_E2E=$${KAIC_E2E:-required} $(VENV)/bin/pytest -q -m e2e tests/e2e $(PYTEST_ARGS)

lock: install ## regenerate requirements.lock (the versions the images install) from the dev environment
	@{ echo "# Constraints: every package version kaic was tested with (pip freeze of the dev environment, Python 3.11)."; \
	   echo "# The images install kaic with \`pip install -c requirements.lock .\`; torch is installed first, on its own."; \
	   $(PY) -m pip freeze --exclude-editable 2>/dev/null | grep -v -e '^torch==' -e '^-e ' -e ' @ ' | sort -f; } > requirements.lock
	@echo "requirements.lock: $$(grep -vc '^#' requirements.lock) pins"

clean: ## remove the virtual environment and local state
	rm -rf $(VENV) .kaic .pytest_cache .mypy_cache .ruff_cache
