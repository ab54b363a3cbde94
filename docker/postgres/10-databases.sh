#!/usr/bin/env bash
# Runs once, on an empty data directory (postgres image /docker-entrypoint-initdb.d hook).
# One cluster, three databases owned by the compose user:
#   sqlmesh_state  SQLMesh state (snapshots, intervals, environments)
#   superset       Superset metadata (users, charts, dashboards)
#   serving        published gold tables that Cube queries (`millpond publish` swaps them in)
# and cube_reader, a login that may only connect to `serving` and read what publish grants it.
set -euo pipefail
: "${MILLPOND_CUBE_DB_PASSWORD:?MILLPOND_CUBE_DB_PASSWORD (the password of cube_reader) is required}"
for db in sqlmesh_state superset serving; do
  psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname postgres <<SQL
SELECT 'CREATE DATABASE ${db} OWNER "${POSTGRES_USER}"'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${db}')\gexec
SQL
done
# The password travels as a psql variable (:'pw' quotes it), never inside the SQL text.
psql -v ON_ERROR_STOP=1 -v pw="${MILLPOND_CUBE_DB_PASSWORD}" --username "${POSTGRES_USER}" --dbname serving <<'SQL'
SELECT format('CREATE ROLE cube_reader LOGIN PASSWORD %L', :'pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cube_reader')\gexec
REVOKE ALL ON DATABASE sqlmesh_state, superset FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE serving TO cube_reader;
SQL
