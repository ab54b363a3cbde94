# syntax=docker/dockerfile:1.7
# Apache Superset with Millpond's configuration and dashboards baked in.
#
# Build from the repository root:
#   docker build -f docker/superset.Dockerfile -t millpond-superset:"$(git rev-parse HEAD)" .
#
# The official image ships Superset in /app/.venv (managed by uv) and runs as `superset`.
# We add the pinned drivers (the same DuckDB minor as the pipeline, so serving files are readable;
# psycopg2 for the PostgreSQL metadata database), the repository's superset_config.py, a thin
# container overlay for it, and the dashboard bundle that `superset-init` imports.

FROM apache/superset:6.1.0

ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="millpond-superset" \
      org.opencontainers.image.description="Apache Superset 6.1.0 with Millpond's config and dashboards" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${GIT_COMMIT}"

# Root only for the driver install and file layout; the image's `superset` user is uid 1000.
USER 0:0

# Versions match semantic/superset/requirements.lock (duckdb, duckdb-engine).
RUN uv pip install --no-cache --python /app/.venv/bin/python \
        duckdb==1.5.6 \
        duckdb-engine==0.17.0 \
        psycopg2-binary==2.9.10

COPY semantic/superset/superset_config.py /app/pythonpath/millpond_superset_base.py
COPY docker/superset/superset_config.py /app/pythonpath/superset_config.py
COPY semantic/superset/bundle/ /app/millpond/bundle/
COPY semantic/superset/millpond_admin.py /app/millpond/millpond_admin.py
COPY --chmod=0755 docker/superset/init.sh /app/millpond/init.sh

ENV SUPERSET_CONFIG_PATH=/app/pythonpath/superset_config.py \
    MILLPOND_DATA_DIR=/var/lib/superset \
    SUPERSET_PORT=8088

RUN mkdir -p /var/lib/superset \
    && chown 1000:1000 /var/lib/superset

USER 1000:1000
EXPOSE 8088

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=5 \
    CMD ["/app/.venv/bin/python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8088/health', timeout=5).status == 200 else 1)"]

CMD ["/app/docker/entrypoints/run-server.sh"]
