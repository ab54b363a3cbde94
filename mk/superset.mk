# Apache Superset: its own virtual environment (its sqlglot pin conflicts with SQLMesh)
# and the headless Chromium used by the dashboard screenshot test.
SUPERSET_VENV := .venv-superset
SUPERSET_DIR := semantic/superset
SUPERSET_LOCK := $(SUPERSET_DIR)/requirements.lock
SUPERSET_STAMP := $(SUPERSET_VENV)/.millpond-lock.sha256
SUPERSET_PYTHON_VERSION ?= 3.11

.PHONY: setup-superset
setup-superset: $(UV) ## Superset's own venv (.venv-superset) from requirements.lock (sync only when the lock changed)
	@want="$$(sha256sum $(SUPERSET_LOCK) | cut -d' ' -f1)"; \
	have="$$(cat $(SUPERSET_STAMP) 2>/dev/null || true)"; \
	if [ "$$want" = "$$have" ] && [ -x $(SUPERSET_VENV)/bin/superset ]; then \
	  echo "setup-superset: $(SUPERSET_VENV) is up to date"; \
	else \
	  [ -x $(SUPERSET_VENV)/bin/python ] || $(UV) venv --quiet --python $(SUPERSET_PYTHON_VERSION) $(SUPERSET_VENV); \
	  VIRTUAL_ENV=$(CURDIR)/$(SUPERSET_VENV) $(UV) pip sync --quiet --compile-bytecode --python $(SUPERSET_VENV)/bin/python $(SUPERSET_LOCK); \
	  echo "$$want" > $(SUPERSET_STAMP); \
	  echo "setup-superset: synced $(SUPERSET_VENV) from $(SUPERSET_LOCK)"; \
	fi

.PHONY: superset-lock
superset-lock: $(UV) ## re-resolve semantic/superset/requirements.lock from requirements.in
	$(UV) pip compile --quiet --python-version $(SUPERSET_PYTHON_VERSION) \
	  --python-platform x86_64-unknown-linux-gnu \
	  $(SUPERSET_DIR)/requirements.in -o $(SUPERSET_LOCK)

.PHONY: setup-browser
setup-browser: ## Debian chromium for headless screenshots (never `playwright install`)
	@if [ -x /usr/bin/chromium ]; then \
	  echo "setup-browser: /usr/bin/chromium present"; \
	else \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; \
	fi

.PHONY: test-superset
test-superset: setup-superset setup-browser ## Superset end-to-end test (real server + headless Chromium)
	$(BIN)/pytest -m superset tests/millpond/superset -q
