#!/usr/bin/env bash
# The project-local PostgreSQL cluster, used when DATABASE_URL is unset.
#
#   scripts/pg.sh start    create (first time) and start the cluster under .data/pg
#   scripts/pg.sh stop     stop it
#   scripts/pg.sh status   exit 0 when it is running
#   scripts/pg.sh url      print its DATABASE_URL
#   scripts/pg.sh psql     open psql on it
#
# It listens on 127.0.0.1 only (port GATHERING_PG_PORT, default 54329) with trust
# authentication, so it is for development and tests on one machine, never for production.
# PostgreSQL refuses to run as root: when run as root, the server runs as the `postgres`
# system user that Debian's package creates.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PORT=${GATHERING_PG_PORT:-54329}
URL="postgres://gathering@127.0.0.1:$PORT/gathering"

# Where this checkout's cluster lives: .data/ in the checkout, unless we are root and the
# `postgres` user cannot reach the checkout (a clone under /root or a mktemp directory);
# then under /var/lib/gathering, keyed by the checkout's path so clones do not share one.
locate() {
  BASE=$ROOT/.data
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    BASE=/var/lib/gathering/pg-$(printf %s "$ROOT" | sha256sum | cut -c1-12)
  fi
  DATA=$BASE/pg
  RUN=$BASE/run
  LOGFILE=$BASE/pg.log
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ensure_installed() {
  if [ ! -x "$PG_BIN/postgres" ] || [ ! -f "/usr/share/postgresql/$PG_MAJOR/extension/vector.control" ]; then
    "$ROOT/scripts/setup-os.sh"
  fi
}

init_cluster() {
  mkdir -p "$BASE" "$RUN"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$RUN"
    mkdir -p "$DATA" && chown postgres "$DATA"
    touch "$LOGFILE" && chown postgres "$LOGFILE"
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    as_owner "$PG_BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=reject >/dev/null
    cat > "$DATA/pg_hba.conf" <<HBA
local all all trust
host  all all 127.0.0.1/32 trust
host  all all ::1/128 trust
HBA
    cat >> "$DATA/postgresql.conf" <<CONF
# GatheRing project-local cluster
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN'
max_connections = 500
shared_buffers = 256MB
work_mem = 8MB
max_wal_size = 2GB
log_min_messages = warning
log_min_error_statement = panic
CONF
  fi
}

is_running() {
  as_owner "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
  ensure_installed
  locate
  init_cluster
  if ! is_running; then
    as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 start >/dev/null
  fi
  local psql=(psql -h "$RUN" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'gathering'")" != "1" ]; then
    "${psql[@]}" -c "CREATE ROLE gathering LOGIN SUPERUSER"
  fi
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'gathering'")" != "1" ]; then
    "${psql[@]}" -c "CREATE DATABASE gathering OWNER gathering"
  fi
}

case "${1:-}" in
  start) start; echo "$URL" ;;
  stop) locate; if [ -f "$DATA/PG_VERSION" ] && is_running; then as_owner "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi ;;
  status) locate; [ -f "$DATA/PG_VERSION" ] && is_running ;;
  url) echo "$URL" ;;
  psql) shift; exec psql "$URL" "$@" ;;
  *) echo "usage: $0 start|stop|status|url|psql" >&2; exit 2 ;;
esac
