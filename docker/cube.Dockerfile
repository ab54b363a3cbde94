# syntax=docker/dockerfile:1.7
# Cube (the official image, pinned) with Millpond's semantic model baked in, as the Superset image
# bakes its dashboards: the image that was scanned is the model that runs, and the Kubernetes base
# needs nothing outside its kustomization tree.
#
# Build from the repository root:
#   docker build -f docker/cube.Dockerfile -t millpond-cube:"$(git rev-parse HEAD)" .
#
# The official image works in /cube/conf; CUBEJS_SCHEMA_PATH=model (set by compose and the
# millpond-cube ConfigMap) makes Cube load /cube/conf/model/cubes/*.yml.

FROM cubejs/cube:v1.3.0

ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="millpond-cube" \
      org.opencontainers.image.description="Cube v1.3.0 with Millpond's semantic model" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${GIT_COMMIT}"

# Root-owned, so the runtime user reads the model and never changes it.
COPY semantic/cube/model/cubes/ /cube/conf/model/cubes/

ENV HOME=/tmp \
    CUBEJS_SCHEMA_PATH=model \
    CUBEJS_DEV_MODE=false \
    CUBEJS_TELEMETRY=false

# The same unprivileged uid as the other Millpond workloads; Cube writes only under /tmp.
USER 10001:10001
EXPOSE 4000

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=12 \
    CMD ["node", "-e", "require('http').get('http://127.0.0.1:4000/readyz', r => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]
