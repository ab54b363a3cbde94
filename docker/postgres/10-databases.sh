#!/usr/bin/env bash
# Runs once, on an empty data directory (postgres image /docker-entrypoint-initdb.d hook).
# One cluster, three databases owned by the compose user:
#   sqlmesh_state  SQLMesh state (snapshots, intervals, environments)
#   superset       Superset metadata (users, charts, dashboards)
#   serving        published gold tables that Cube queries
set -euo pipefail
for db in sqlmesh_state superset serving; do
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres <<SQL
SELECT 'CREATE DATABASE ${db} OWNER "${POSTGRES_USER}"'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${db}')\gexec
SQL
done
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname serving \
  -c 'CREATE SCHEMA IF NOT EXISTS gold AUTHORIZATION CURRENT_USER;'
