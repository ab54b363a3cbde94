# Millpond — one entry point for set-up, demo, tests and linting.
# Every target is idempotent; see README.md and docs/configuration.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

UV_VERSION ?= 0.13.9
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv lives in a project-local tools venv, so its path never depends on where an
# installer puts scripts (pyenv shims, ~/.local/bin, /usr/local/bin) or on PATH.
TOOLS_VENV := .venv-tools
UV := $(TOOLS_VENV)/bin/uv
export RUNTIME__DLTHUB_TELEMETRY := false
export SODA_CORE_TELEMETRY_ENABLED := false
export SQLMESH__DISABLE_ANONYMIZED_ANALYTICS := true

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv --clear $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	@$(UV) --version

# $(call npm_ci,DIR,TARGET): install DIR/node_modules exactly from DIR/package-lock.json, no
# install scripts; skipped while the installed tree was made from the same lock file.
define npm_ci
	@if [ -f $(1)/node_modules/.package-lock.json ] && \
	   cmp -s $(1)/package-lock.json $(1)/node_modules/.millpond-lock.json; then \
	  echo "$(2): $(1)/node_modules is up to date"; \
	else \
	  npm ci --prefix $(1) --ignore-scripts --no-audit --no-fund --loglevel=error; \
	  cp $(1)/package-lock.json $(1)/node_modules/.millpond-lock.json; \
	  echo "$(2): installed $(1)/node_modules from package-lock.json"; \
	fi
endef

DATA_DIR ?= $(CURDIR)/.local
DEMO_ENV := $(DATA_DIR)/demo.env
PYTEST_ARGS ?= -m "not bench_harness" --durations=20
# pytest-xdist workers; tests sharing a fixture stay on one worker (tests/support/scheduling.py). 0: no xdist.
PYTEST_WORKERS ?= 2

.PHONY: setup
setup: setup-python setup-postgres setup-superset setup-browser setup-infra setup-cube ## everything, pinned (idempotent)

.PHONY: tools
tools: $(UV) ## the bootstrap tools venv (.venv-tools: uv), whatever PATH and HOME hold

UV_SYNC_FLAGS ?=
.PHONY: setup-python
# --compile-bytecode: every process (each stage, each test subprocess) imports from .pyc, also where
# PYTHONDONTWRITEBYTECODE keeps Python from writing its own cache.
setup-python: $(UV) ## the pipeline's virtual environment from uv.lock (groups dev + services)
	$(UV) sync --frozen --quiet --compile-bytecode $(UV_SYNC_FLAGS)

.PHONY: setup-postgres
setup-postgres: ## PostgreSQL 15 server binaries (Debian) for the tests' private clusters
	@if [ -x /usr/lib/postgresql/15/bin/initdb ]; then \
	  echo "setup-postgres: PostgreSQL 15 present"; \
	else \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15; \
	fi

$(DEMO_ENV):
	@mkdir -p $(DATA_DIR)
	@umask 077 && $(PYTHON) -c 'import secrets; \
	print("MILLPOND_SUPERSET_ADMIN_PASSWORD=" + secrets.token_urlsafe(18)); \
	print("MILLPOND_SUPERSET_SECRET_KEY=" + secrets.token_urlsafe(42))' > $@
	@echo "demo: generated Superset admin password and secret key in $@ (mode 600, git-ignored)"

.PHONY: demo
demo: setup $(DEMO_ENV) ## services → generate → run → Superset on 127.0.0.1 (the main job, end to end)
	set -a; . $(DEMO_ENV); set +a; \
	$(BIN)/millpond services up && \
	$(BIN)/millpond mongo setup && \
	$(BIN)/millpond generate && \
	$(BIN)/millpond run && \
	$(BIN)/millpond serve && \
	echo "Log in as admin with the password in $(DEMO_ENV). Stop everything with: make stop"

.PHONY: test
test: setup lint lint-infra test-sqlmesh test-python ## every check CI runs

# `sqlmesh test` and `sqlmesh lint` load the project without Settings: a fixed, non-secret salt for
# the PII macros (macros/pii.py), for these targets only (the demo and the pipeline generate or take
# a real one). A real MILLPOND_PII_SALT in the environment wins.
lint test-sqlmesh: export MILLPOND_PII_SALT ?= unit-test-salt

.PHONY: test-sqlmesh
test-sqlmesh: ## SQLMesh unit tests (in-memory DuckDB)
	$(BIN)/sqlmesh test

.PHONY: test-python
test-python: ## pytest with real services on PYTEST_WORKERS xdist workers; fails under 80% line coverage
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --cov --cov-report=term --cov-report=xml:artifacts/coverage.xml $(PYTEST_ARGS)

.PHONY: lint
lint: ## ruff, mypy, sqlfluff, yamllint, shellcheck
	$(BIN)/ruff check millpond ingest tests macros linter bench
	$(BIN)/ruff format --check millpond ingest tests macros linter bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/sqlfluff lint models audits
	$(BIN)/sqlmesh lint
	$(BIN)/millpond catalog --check
	$(BIN)/millpond lineage --check
	$(BIN)/yamllint -c .yamllint.yml .
	$(BIN)/shellcheck .ci/run scripts/*.sh docker/*/*.sh

.PHONY: bench
bench: setup-python ## benchmarks (ratios against a baseline measured in the same run) → docs/benchmarks.md
	$(BIN)/pytest -q -m bench_harness tests/bench -p no:cacheprovider
	$(BIN)/python -m bench.run $(if $(BENCH_SIZES),--sizes $(BENCH_SIZES))
	$(BIN)/python -m bench.transform_cost

.PHONY: stop
stop: ## stop Superset and the local services
	-$(BIN)/millpond serve --stop
	-$(BIN)/millpond services down

.PHONY: clean
clean: stop ## stop everything and delete local data (.local, artifacts)
	rm -rf $(DATA_DIR) artifacts .cache logs

include mk/*.mk
