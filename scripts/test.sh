#!/usr/bin/env bash
# Runs every check and every test, as CI does:
#   formatting, clippy (warnings are errors), the SQL-text check, and all tests (cargo nextest)
#   against a real PostgreSQL with pgvector, then the API fuzz run (scripts/fuzz-api.sh:
#   Schemathesis against the edge's OpenAPI document on a live stack; GATHERING_SKIP_FUZZ=1
#   skips it).
# With DATABASE_URL unset it uses the project-local cluster (scripts/pg.sh), installing what it
# needs first; with DATABASE_URL set, tests create their throwaway databases on that server.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL=$(./scripts/pg.sh start)
  export DATABASE_URL
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "== installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# Language servers the /lsp tests talk to (project-local, idempotent).
echo "== language servers"
./scripts/setup-lsp.sh >/dev/null

# Throwaway databases of interrupted earlier runs (and templates of older migrations).
admin_url="${DATABASE_URL%/*}/postgres"
for db in $(psql "$admin_url" -qAt -c "SELECT datname FROM pg_database WHERE datname LIKE 'gt\_%'"); do
  psql "$admin_url" -q -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
done

# OS packages (idempotent; quick when present): with DATABASE_URL given, pg.sh did not run
# it, and the email tests need Dovecot.
./scripts/setup-os.sh

# Python peers of the tests (the MCP SDK for plugin servers, aiosmtpd and moto for the email
# and cloud skills, Playwright for the browser tests), in .data/test-python; and the browser
# the browser tests drive (Debian's chromium).
./scripts/setup-test-python.sh
./scripts/setup-browser.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== SQL-text and table-ownership checks"
python3 scripts/check-sql.py
python3 scripts/check-owners.py
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"
# After the tests (it reuses their build) and only when they passed (set -e). Skipped when
# nextest was given a filter: a partial run is not a full check.
if [ "$#" -eq 0 ] && [ "${GATHERING_SKIP_FUZZ:-}" != "1" ]; then
  echo "== API fuzz run"
  ./scripts/fuzz-api.sh
fi
