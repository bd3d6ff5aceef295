# Lumi developer commands. `make` (or `make help`) lists them.
# Everything runs through .venv/bin/... explicitly: no virtualenv activation needed.

.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
PY := $(VENV)/bin/python
T ?=
PYTEST_ARGS ?=
ARGS ?=

.PHONY: help bootstrap dev lumi test fuzz faults lint typecheck fmt bench worker clean

##@ General

help: ## Show this help
	@awk 'BEGIN { FS = ":.*## " } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5); next } \
		/^[a-zA-Z0-9_-]+:.*## / { printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo

##@ Set-up

bootstrap: ## Install or refresh .venv, redis-server and Meilisearch (idempotent, quick when up to date)
	@bash scripts/bootstrap.sh

clean: ## Remove .venv, .tools, node_modules and caches (keeps .env, the dev data in .dev/ and the per-user download cache ~/.cache/lumi)
	rm -rf $(VENV) .tools node_modules .pytest_cache .ruff_cache .mypy_cache
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +

##@ Run

dev: bootstrap ## Run the whole stack locally (Redis, Meilisearch, devshop, web, worker) on PORT (default 8000)
	$(PY) -m devtools.dev

lumi: ## Operator command against the running `make dev` (its .dev/env): make lumi ARGS="inventory lumi-demo.myshopify.com"
	@$(PY) -m devtools.lumi $(ARGS)

worker: bootstrap ## Run one RQ worker (needs REDIS_URL, MEILI_URL, ... in the environment)
	$(PY) -m jobs.worker

##@ Check

test: bootstrap ## Run the tests; narrow with T=tests/x.py, add options with PYTEST_ARGS="-x -k name"
	$(PY) -m pytest $(T) $(PYTEST_ARGS)

fuzz: bootstrap ## Fuzz every documented route at depth (schemathesis against docs/openapi.json; LUMI_FUZZ_EXAMPLES per operation, default 300)
	LUMI_FUZZ_EXAMPLES=$${LUMI_FUZZ_EXAMPLES:-300} $(PY) -m pytest tests/fuzz -n 0 $(PYTEST_ARGS)

faults: bootstrap ## Faults injected under traffic at 10x scale (LUMI_FAULTS_SCALE): tests/faults, then bench.faults' table
	LUMI_FAULTS_SCALE=$${LUMI_FAULTS_SCALE:-10} $(PY) -m pytest tests/faults $(PYTEST_ARGS)
	LUMI_FAULTS_SCALE=$${LUMI_FAULTS_SCALE:-10} $(PY) -m bench.faults

lint: bootstrap ## ruff check (the gate CI-style checks use)
	$(PY) -m ruff check .

typecheck: bootstrap ## mypy on the packages (advisory for now: not part of lint or CI)
	$(PY) -m mypy --ignore-missing-imports core web feeds chat shopify jobs devshop devtools

fmt: bootstrap ## Format the code and apply ruff's safe fixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: bootstrap ## Run the benchmarks (python -m bench, or every bench/*.py)
	@if [ -f bench/__main__.py ]; then \
		$(PY) -m bench; \
	else \
		shopt -s nullglob; files=(bench/*.py); \
		if [ $${#files[@]} -eq 0 ]; then echo "no benchmarks yet (add bench/*.py)"; fi; \
		for f in "$${files[@]}"; do echo "== $$f"; PYTHONPATH=. $(PY) "$$f" || exit $$?; done; \
	fi
