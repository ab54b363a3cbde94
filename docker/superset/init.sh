#!/usr/bin/env bash
# One-shot, idempotent Superset initialisation (docker compose `superset-init`, k8s initContainer):
# migrate the metadata database, create roles/permissions, create the admin user if missing and
# import Millpond's dashboard bundle (overwriting the previous version of the same UUIDs).
set -euo pipefail

: "${MILLPOND_SUPERSET_ADMIN_USER:=admin}"
: "${MILLPOND_SUPERSET_ADMIN_PASSWORD:?MILLPOND_SUPERSET_ADMIN_PASSWORD is required}"
: "${MILLPOND_SUPERSET_SECRET_KEY:?MILLPOND_SUPERSET_SECRET_KEY is required}"
BUNDLE_DIR="${MILLPOND_SUPERSET_BUNDLE_DIR:-/app/millpond/bundle}"

log() { printf '{"event":"%s","component":"superset-init"}\n' "$1"; }

log "db_upgrade"
superset db upgrade

log "init_roles"
superset init

if superset fab list-users 2>/dev/null | grep -Eq "username: ?${MILLPOND_SUPERSET_ADMIN_USER}( |\\|)"; then
  log "admin_exists"
else
  log "create_admin"
  superset fab create-admin \
    --username "${MILLPOND_SUPERSET_ADMIN_USER}" \
    --firstname Millpond --lastname Admin \
    --email "${MILLPOND_SUPERSET_ADMIN_USER}@millpond.invalid" \
    --password "${MILLPOND_SUPERSET_ADMIN_PASSWORD}"
fi

if [ -n "$(ls -A "${BUNDLE_DIR}" 2>/dev/null)" ]; then
  log "import_dashboards"
  workdir="$(mktemp -d)"
  trap 'rm -rf "${workdir}"' EXIT
  (cd "${BUNDLE_DIR}/.." && python -m zipfile -c "${workdir}/bundle.zip" "$(basename "${BUNDLE_DIR}")")
  superset import-dashboards -p "${workdir}/bundle.zip" -u "${MILLPOND_SUPERSET_ADMIN_USER}"
else
  log "no_bundle"
fi
log "done"
