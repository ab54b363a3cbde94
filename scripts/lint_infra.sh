#!/usr/bin/env bash
# Validate every delivery artifact with the genuine offline tools (installed by `make setup-infra`):
#   docker-compose config, hadolint, kubectl kustomize | kubernetes-validate --strict,
#   terraform fmt/validate/test, checkov, trivy config, npm-groovy-lint.
# Exits non-zero on the first failing validator; prints one timing line per step.
#
# Environment: INFRA_VENV (.venv-infra), K8S_VERSION (1.30.0), TF_PLUGIN_DIR (/opt/tf-plugins),
# TERRAFORM (terraform on PATH), KUBECTL (kubectl on PATH, else the one in INFRA_VENV).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"

INFRA_VENV="${INFRA_VENV:-${ROOT}/.venv-infra}"
VBIN="${INFRA_VENV}/bin"
K8S_VERSION="${K8S_VERSION:-1.30.0}"
TF_PLUGIN_DIR="${TF_PLUGIN_DIR:-/opt/tf-plugins}"
TERRAFORM="${TERRAFORM:-$(command -v terraform || true)}"
KUBECTL="${KUBECTL:-$(command -v kubectl || echo "${VBIN}/kubectl")}"
GROOVY_LINT="${ROOT}/tools/node/node_modules/.bin/npm-groovy-lint"
OVERLAYS=(dev staging prod)

# A missing CLI config file named by the environment only produces warnings; silence them.
if [[ -n "${TF_CLI_CONFIG_FILE:-}" && ! -f "${TF_CLI_CONFIG_FILE}" ]]; then unset TF_CLI_CONFIG_FILE; fi
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false BC_SKIP_MAPPING=TRUE

WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT

fail() { echo "lint-infra: $*" >&2; exit 1; }
step() {
  local name="$1"; shift
  local start=$SECONDS
  echo "==> ${name}"
  "$@" || fail "${name} failed"
  echo "    ${name}: ok ($((SECONDS - start)) s)"
}

for tool in docker-compose hadolint kubernetes-validate checkov trivy; do
  [[ -x "${VBIN}/${tool}" ]] || fail "${VBIN}/${tool} missing: run 'make setup-infra'"
done
[[ -x "${KUBECTL}" ]] || fail "kubectl missing: run 'make setup-infra'"
[[ -x "${GROOVY_LINT}" ]] || fail "npm-groovy-lint missing: run 'make setup-infra'"
[[ -n "${TERRAFORM}" ]] || fail "terraform (>= 1.9) not found on PATH; see docs/deployment.md"

compose_config() {
  # Required secrets are `${VAR:?}`; validate with throw-away values, never real ones.
  cat > "${WORK}/compose.env" <<'ENV'
MILLPOND_POSTGRES_PASSWORD=validation-only
MILLPOND_SUPERSET_SECRET_KEY=validation-only-secret-key
MILLPOND_SUPERSET_ADMIN_PASSWORD=validation-only
MILLPOND_CUBE_API_SECRET=validation-only
MILLPOND_CUBE_DB_PASSWORD=validation-only
MILLPOND_PII_SALT=validation-only
ENV
  "${VBIN}/docker-compose" -f docker-compose.yml --env-file "${WORK}/compose.env" config --quiet
}

hadolint_all() {
  local f
  for f in docker/*.Dockerfile; do
    "${VBIN}/hadolint" --failure-threshold info "${f}"
  done
}

render_overlays() {
  mkdir -p "${WORK}/k8s"
  local env
  for env in "${OVERLAYS[@]}"; do
    # Default load restrictor, as Argo CD and Flux build: an overlay may read only its own tree.
    "${KUBECTL}" kustomize "k8s/overlays/${env}" > "${WORK}/k8s/${env}.yaml"
  done
}

kubernetes_validate() {
  local env out
  for env in "${OVERLAYS[@]}"; do
    out="$("${VBIN}/kubernetes-validate" --strict -k "${K8S_VERSION}" --quiet - < "${WORK}/k8s/${env}.yaml")" || {
      echo "${out}"; return 1; }
    # Unknown kinds are only warned about: treat that as a failure, every object must be checked.
    if grep -q "^WARN" <<< "${out}"; then echo "${out}"; return 1; fi
    echo "    ${env}: $(grep -c '^kind:' "${WORK}/k8s/${env}.yaml") objects valid against Kubernetes ${K8S_VERSION} (strict)"
  done
}

terraform_fmt() { "${TERRAFORM}" fmt -check -recursive -diff infra; }

terraform_init() {
  local args=(init -backend=false -input=false -no-color)
  if [[ -d "${TF_PLUGIN_DIR}" ]]; then args+=("-plugin-dir=${TF_PLUGIN_DIR}"); fi
  "${TERRAFORM}" -chdir="$1" "${args[@]}" > "${WORK}/tf-init.log" 2>&1 || { cat "${WORK}/tf-init.log"; return 1; }
}

terraform_validate() {
  # Every module is reached from a root (envs/* -> platform -> all modules; bootstrap ->
  # state_backend); modules with tests are validated again by `terraform test`.
  local dir
  for dir in infra/bootstrap infra/envs/*; do
    terraform_init "${dir}"
    "${TERRAFORM}" -chdir="${dir}" validate -no-color > /dev/null
    echo "    ${dir}: valid"
  done
}

terraform_test() {
  local dir
  for dir in infra/modules/*; do
    [[ -d "${dir}/tests" ]] || continue
    terraform_init "${dir}"
    "${TERRAFORM}" -chdir="${dir}" test -no-color
  done
}

checkov_all() {
  # Suppressions carry their reason inline: `#checkov:skip=ID:reason` in Terraform,
  # `checkov.io/skipN: ID=reason` annotations in the Kubernetes base.
  "${VBIN}/checkov" --quiet --compact --skip-download \
    --framework terraform kubernetes dockerfile \
    -d infra -d "${WORK}/k8s" -d docker
}

trivy_all() {
  local target
  for target in infra docker "${WORK}/k8s"; do
    "${VBIN}/trivy" config --quiet --cache-dir "${ROOT}/.cache/trivy" --skip-check-update \
      --severity HIGH,CRITICAL --exit-code 1 "${target}"
  done
}

groovy_lint() { "${GROOVY_LINT}" --noserver --failon error --output txt Jenkinsfile; }

total=$SECONDS
step "docker-compose config" compose_config
step "hadolint" hadolint_all
step "kubectl kustomize" render_overlays
step "kubernetes-validate" kubernetes_validate
step "terraform fmt" terraform_fmt
step "terraform validate" terraform_validate
step "terraform test" terraform_test
step "checkov" checkov_all
step "trivy config" trivy_all
step "npm-groovy-lint" groovy_lint
echo "lint-infra: all validators passed in $((SECONDS - total)) s"
