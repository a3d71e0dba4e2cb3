#!/usr/bin/env bash
# Installs what GatheRing needs from the OS on a Debian machine, idempotently:
# PostgreSQL 15 server binaries and pgvector (built from Debian's source package,
# since bookworm ships no pgvector binary for PostgreSQL 15), and Dovecot's IMAP server (the
# email skill's tests start their own unprivileged instance on a free port; the package's own
# service is not needed).
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { printf '[setup-os] %s\n' "$*" >&2; }

apt_install() {
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    $SUDO apt-get update -q >/dev/null
    apt_updated=1
  fi
}

if [ ! -x "$PG_BIN/postgres" ] || [ ! -x "$PG_BIN/initdb" ]; then
  log "installing postgresql-$PG_MAJOR"
  apt_update
  apt_install "postgresql-$PG_MAJOR" postgresql-contrib
fi

sharedir=$("$PG_BIN/pg_config" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$PG_MAJOR")
if [ ! -f "$sharedir/extension/vector.control" ]; then
  log "building pgvector from Debian's source package"
  if ! grep -rqs 'trixie' /etc/apt/sources.list.d/gathering-deb-src.sources; then
    $SUDO tee /etc/apt/sources.list.d/gathering-deb-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt_updated=0
  fi
  apt_update
  apt_install "postgresql-server-dev-$PG_MAJOR" build-essential dpkg-dev
  work=$(mktemp -d)
  (
    cd "$work"
    apt-get source -q --download-only pgvector >/dev/null 2>&1 || apt-get source -q pgvector >/dev/null
    dpkg-source -x --no-check ./pgvector_*.dsc src >/dev/null 2>&1 || true
    dir=$(find . -maxdepth 1 -type d -name 'src' -o -maxdepth 1 -type d -name 'pgvector-*' | head -n 1)
    cd "$dir"
    make -s PG_CONFIG="$PG_BIN/pg_config" OPTFLAGS="" >/dev/null
    $SUDO make -s install PG_CONFIG="$PG_BIN/pg_config" >/dev/null
  )
  rm -rf "$work"
  log "pgvector installed into $sharedir/extension"
fi

if [ ! -x /usr/sbin/dovecot ] || [ ! -e /usr/lib/dovecot/imap ]; then
  log "installing dovecot-imapd"
  apt_update
  # No service start in containers without an init (policy-rc.d may be absent: || true).
  apt_install dovecot-imapd || { [ -x /usr/sbin/dovecot ] && [ -e /usr/lib/dovecot/imap ]; }
fi

log "ok"
