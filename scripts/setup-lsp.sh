#!/usr/bin/env bash
# Installs the language servers the workspace's code intelligence (/lsp) uses, idempotently,
# into a project-local virtual environment (nothing system-wide):
#
#   .data/lsp/venv/bin/pylsp    python-lsp-server (jedi for completion, hover, definition;
#                               pyflakes and pycodestyle for diagnostics), from PyPI
#
# Prints the path of pylsp on success. TypeScript (typescript-language-server) and Rust
# (rust-analyzer) are used when present on PATH and are not installed here: a language whose
# server is absent answers a clear error, and the tests only need Python.
#
# Variables: GATHERING_LSP_DIR (default .data/lsp), PYTHON (default python3),
# PYLSP_VERSION (default 1.13.1, a release that supports Python 3.9+).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${GATHERING_LSP_DIR:-$ROOT/.data/lsp}
PYTHON=${PYTHON:-python3}
PYLSP_VERSION=${PYLSP_VERSION:-1.13.1}
VENV=$DIR/venv

log() { printf '[setup-lsp] %s\n' "$*" >&2; }

SPEC="python-lsp-server[pyflakes,pycodestyle]==$PYLSP_VERSION"
if [ -x "$VENV/bin/pylsp" ] && [ "$(cat "$DIR/installed" 2>/dev/null)" = "$SPEC" ]; then
  echo "$VENV/bin/pylsp"
  exit 0
fi

mkdir -p "$DIR"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 without ensurepip: install the venv module first.
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing python3-venv"
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends python3-venv >/dev/null
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
  fi
fi
log "installing $SPEC"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$SPEC" >&2
"$VENV/bin/pylsp" --version >&2
echo "$SPEC" >"$DIR/installed"
echo "$VENV/bin/pylsp"
