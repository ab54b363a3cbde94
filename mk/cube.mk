# Cube 0.33.65 from npm (tools/cube) for the semantic-model tests against PostgreSQL.
# Current Cube needs native binaries downloaded from GitHub at install time, which this
# machine cannot reach; compose and Kubernetes run the official image instead (docs/semantic-layer.md).
CUBE_TOOLS := tools/cube

.PHONY: setup-cube
setup-cube: ## Cube 0.33.65 for the model tests (npm ci --ignore-scripts in tools/cube, only when the lock changed)
	@if [ -f $(CUBE_TOOLS)/node_modules/.package-lock.json ] && \
	   cmp -s $(CUBE_TOOLS)/package-lock.json $(CUBE_TOOLS)/node_modules/.millpond-lock.json; then \
	  echo "setup-cube: $(CUBE_TOOLS)/node_modules is up to date"; \
	else \
	  npm ci --prefix $(CUBE_TOOLS) --ignore-scripts --no-audit --no-fund --loglevel=error; \
	  cp $(CUBE_TOOLS)/package-lock.json $(CUBE_TOOLS)/node_modules/.millpond-lock.json; \
	  echo "setup-cube: installed $(CUBE_TOOLS)/node_modules from package-lock.json"; \
	fi
