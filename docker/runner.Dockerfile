# syntax=docker/dockerfile:1.7
# Millpond pipeline runner: `millpond run`, `millpond ingest --follow`, `millpond transform`, ...
#
# Build from the repository root (the .dockerignore is an allow-list):
#   docker build -f docker/runner.Dockerfile -t millpond-runner:"$(git rev-parse HEAD)" .
#
# Stage 1 resolves nothing: it installs exactly what uv.lock pins for the project's own
# dependencies into /app/.venv. `--no-default-groups` leaves out every dependency group: `dev`
# (linters, test tools) and `services` (mongod and the Kafka-protocol broker that `make demo` and
# the tests start); the runner talks to real MongoDB and Kafka (tests/infra/test_runner_image.py).
# Stage 2 copies that virtual environment and the project files onto a clean slim base and runs as
# an unprivileged user with a read-only root filesystem. It writes only to /data (warehouse volume:
# landed data, SQLMesh state and cache, dlt pipelines, locks, heartbeats), /serving (serving volume:
# the DuckDB file Superset reads) and /tmp (TMPDIR, HOME).

FROM python:3.11.14-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app

# Dependencies first (cached layer while only the source changes).
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-default-groups --no-install-project

# Then the project itself: the package, the SQLMesh project and the data contracts.
COPY . .
RUN uv sync --frozen --no-default-groups \
    && /app/.venv/bin/millpond --help > /dev/null


FROM python:3.11.14-slim-bookworm AS runtime

ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="millpond-runner" \
      org.opencontainers.image.description="Millpond ELT pipeline runner (dlt, SQLMesh, Soda)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${GIT_COMMIT}"

ENV PATH=/app/.venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    MILLPOND_PROJECT_DIR=/app \
    MILLPOND_DATA_DIR=/data \
    MILLPOND_SERVING_PATH=/serving/serving.duckdb \
    MILLPOND_LOG_FORMAT=json \
    RUNTIME__DLTHUB_TELEMETRY=false \
    SODA_CORE_TELEMETRY_ENABLED=false \
    SQLMESH__DISABLE_ANONYMIZED_ANALYTICS=true

RUN groupadd --system --gid 10001 millpond \
    && useradd --system --uid 10001 --gid millpond --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin millpond \
    && mkdir -p /data /serving \
    && chown millpond:millpond /data /serving

# Code and virtual environment stay root-owned: the runtime user can read, never modify them.
COPY --from=builder /app /app

WORKDIR /app
USER 10001:10001
VOLUME ["/data", "/serving"]

# Settings load and the data dir is writable; the Kafka follower's service adds its heartbeat
# (`--heartbeat ingest-follow --max-age 300`, see docker-compose.yml and k8s/base/ingest-follow.yaml).
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
    CMD ["millpond", "health"]

ENTRYPOINT ["millpond"]
CMD ["run"]
