# Cube 0.33.65 from npm (tools/cube) for the semantic-model tests against PostgreSQL.
# Current Cube needs native binaries downloaded from GitHub at install time, which this
# machine cannot reach; compose and Kubernetes run the official image with the model baked in
# (docker/cube.Dockerfile, docs/semantic-layer.md).
CUBE_TOOLS := tools/cube

.PHONY: setup-cube
setup-cube: ## Cube 0.33.65 for the model tests (npm ci --ignore-scripts in tools/cube, only when the lock changed)
	$(call npm_ci,$(CUBE_TOOLS),setup-cube)
