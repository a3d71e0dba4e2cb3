#!/usr/bin/env bash
# Installs, idempotently, the Python packages tests run as real peers: the MCP SDK (`mcp`, the
# MCP servers the plugin tests load), aiosmtpd (the SMTP server the email skill sends to),
# moto's server (the S3-compatible object store the cloud skill is tested against),
# kubernetes-validate (the Kubernetes JSON schemas, bundled: scripts/check-kubernetes.py
# validates deploy/kubernetes offline with them), Schemathesis (scripts/fuzz-api.sh fuzzes the
# edge from its OpenAPI document) and Playwright (the browser tests in tests/browser drive
# Debian's chromium with it, installed by scripts/setup-browser.sh; `playwright install` is
# never run) into a virtual environment under .data/test-python.
# Tests find it through GATHERING_TEST_PYTHON (default: that environment's python).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${GATHERING_TEST_VENV:-.data/test-python}
# Pinned: a test suite should not change because a registry did.
PACKAGES=("mcp==1.30.0" "kubernetes-validate==1.37.0" "aiosmtpd==1.4.6" "moto[server]==5.2.6"
  "schemathesis==4.32.5" "playwright==1.65.3")
STAMP="$VENV/.installed"
WANT="${PACKAGES[*]}"

log() { printf '[setup-test-python] %s\n' "$*" >&2; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  log "installing python3-venv"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends python3-venv >/dev/null
fi

mkdir -p "$(dirname "$VENV")"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
log "installing ${WANT}"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PACKAGES[@]}"
printf '%s' "$WANT" >"$STAMP"
log "ok"
