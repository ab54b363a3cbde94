#!/usr/bin/env bash
# One-shot, idempotent Superset initialisation (docker compose `superset-init`, k8s initContainer).
# Same steps as the local bootstrap (millpond/superset/bootstrap.py), in one Superset process:
# migrate + roles, create or reset the admin, import the dashboard bundle with the assets importer
# (overwrites charts, datasets and the database connection, so the repository stays the truth).
# The password is read from the environment by millpond_admin.py, never passed on a command line.
set -euo pipefail

: "${MILLPOND_SUPERSET_ADMIN_USER:=admin}"
: "${MILLPOND_SUPERSET_ADMIN_PASSWORD:?MILLPOND_SUPERSET_ADMIN_PASSWORD is required}"
: "${MILLPOND_SUPERSET_SECRET_KEY:?MILLPOND_SUPERSET_SECRET_KEY is required}"
: "${MILLPOND_SERVING_PATH:?MILLPOND_SERVING_PATH (the serving database the dashboards read) is required}"
BUNDLE_DIR="${MILLPOND_SUPERSET_BUNDLE_DIR:-/app/millpond/bundle}"
ADMIN_SCRIPT="${MILLPOND_SUPERSET_ADMIN_SCRIPT:-/app/millpond/millpond_admin.py}"

log() { printf '{"event":"%s","component":"superset-init"}\n' "$1"; }

workdir="$(mktemp -d)"
trap 'rm -rf "${workdir}"' EXIT
# The committed bundle names the serving database as ${MILLPOND_SERVING_PATH}: fill it in.
cp -r "${BUNDLE_DIR}" "${workdir}/bundle"
find "${workdir}/bundle" -path '*/databases/*.yaml' -exec \
  sed -i "s|\${MILLPOND_SERVING_PATH}|${MILLPOND_SERVING_PATH}|g" {} +
(cd "${workdir}" && python -m zipfile -c bundle.zip bundle)

log "bootstrap"
python "${ADMIN_SCRIPT}" schema -- admin "${MILLPOND_SUPERSET_ADMIN_USER}" \
  -- import "${workdir}/bundle.zip" "${MILLPOND_SUPERSET_ADMIN_USER}"
log "done"
