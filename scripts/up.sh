#!/usr/bin/env bash
# Builds GatheRing and starts the whole stack (`gathering up`) in the foreground; Ctrl-C stops it.
# With DATABASE_URL unset it runs on the project-local PostgreSQL cluster (scripts/pg.sh),
# installing PostgreSQL and pgvector first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL=$(./scripts/pg.sh start)
  export DATABASE_URL
fi
export GATHERING_ENV=${GATHERING_ENV:-development}
cargo build --release --locked -p gathering
exec ./target/release/gathering up
