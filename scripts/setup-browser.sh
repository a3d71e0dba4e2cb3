#!/usr/bin/env bash
# Installs, idempotently, the browser of the browser tests (tests/browser): Debian's `chromium`
# package. Playwright (scripts/setup-test-python.sh) drives this system browser through
# `executable_path`; `playwright install` (which downloads its own browsers) is never used.
# Tests find it through GATHERING_CHROMIUM (default /usr/bin/chromium).
set -euo pipefail

CHROMIUM=${GATHERING_CHROMIUM:-/usr/bin/chromium}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { printf '[setup-browser] %s\n' "$*" >&2; }

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

log "installing chromium"
$SUDO apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null
log "ok: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
