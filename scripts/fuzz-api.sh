#!/usr/bin/env bash
# Fuzzes the edge's REST API from its own OpenAPI document with Schemathesis, on a live stack
# (`gathering up` on a throwaway database), twice: in development mode (DISABLE_AUTH=true) and
# with authentication (a registered user's bearer token). Checks: no 5xx answer
# (not_a_server_error) and every answer matches its documented schema
# (response_schema_conformance). Prints a summary (operations, examples, failures) and exits
# non-zero on any failure.
#
# Environment: DATABASE_URL (else the project-local cluster, scripts/pg.sh), FUZZ_MAX_EXAMPLES
# (examples per operation in the fuzzing phase, default 10), FUZZ_SEED (default 17: the same
# run every time), FUZZ_WORKERS (default 1: Python 3.11 crashes in the coverage phase with more threads), FUZZ_REPORT_DIR (default target/fuzz-api).
# Extra arguments are passed to `schemathesis run` (e.g. --include-tag goals).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL=$(./scripts/pg.sh start)
  export DATABASE_URL
fi
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-10}
SEED=${FUZZ_SEED:-17}
WORKERS=${FUZZ_WORKERS:-1}
TARGET=${CARGO_TARGET_DIR:-target}
REPORTS=${FUZZ_REPORT_DIR:-$TARGET/fuzz-api}

log() { printf '[fuzz-api] %s\n' "$*" >&2; }

./scripts/setup-test-python.sh
# The /lsp routes start pylsp; without it they answer 503, which the fuzz run counts as a
# server error.
PYLSP=$(./scripts/setup-lsp.sh)
VENV=${GATHERING_TEST_VENV:-.data/test-python}
ST="$VENV/bin/schemathesis"
PY="$VENV/bin/python"

log "building gathering and the fake LLM provider"
cargo build --locked -q -p gathering -p gathering-testkit --bin gathering --bin fake-llm
EXE="$TARGET/debug/gathering"

# A throwaway database ("gt_" names are dropped by scripts/test.sh if a run is interrupted).
ADMIN_URL="${DATABASE_URL%/*}/postgres"
DB="gt_fuzz_$$"
DB_URL="${DATABASE_URL%/*}/$DB"
WORK=$(mktemp -d)
STACK_PID=""
stop_stack() {
  if [ -n "$STACK_PID" ] && kill -0 "$STACK_PID" 2>/dev/null; then
    kill -INT "$STACK_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$STACK_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$STACK_PID" 2>/dev/null || true
    wait "$STACK_PID" 2>/dev/null || true
  fi
  STACK_PID=""
}
FAKE_PID=""
cleanup() {
  stop_stack
  [ -z "$FAKE_PID" ] || kill "$FAKE_PID" 2>/dev/null || true
  psql "$ADMIN_URL" -q -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql "$ADMIN_URL" -q -c "CREATE DATABASE \"$DB\"" >/dev/null

# Agents chat with "openai" answered by a fake OpenAI-wire server (a real HTTP peer): without a
# provider that answers, chat can only say 502 (the provider is unreachable).
"$TARGET/debug/fake-llm" openai >"$WORK/fake-url" 2>"$WORK/fake.log" &
FAKE_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/fake-url" ] && break; sleep 0.1; done
FAKE_URL=$(head -n1 "$WORK/fake-url")
[ -n "$FAKE_URL" ] || { log "the fake LLM provider did not start"; exit 1; }

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts `gathering up` with $1 = DISABLE_AUTH value; sets EDGE.
start_stack() {
  local edge_port auth_port gateway_port
  edge_port=$(free_port)
  auth_port=$(free_port)
  gateway_port=$(free_port)
  EDGE="http://127.0.0.1:$edge_port"
  mkdir -p "$WORK/projects"
  env DATABASE_URL="$DB_URL" GATHERING_ENV=development DISABLE_AUTH="$1" RUST_LOG=warn \
    EDGE_ADDR="127.0.0.1:$edge_port" AUTH_ADDR="127.0.0.1:$auth_port" \
    AUTH_URL="http://127.0.0.1:$auth_port" LLM_GATEWAY_URL="http://127.0.0.1:$gateway_port" \
    LLM_GATEWAY_ADDR="127.0.0.1:$gateway_port" LLM_GATEWAY_HTTP_ADDR="127.0.0.1:$(free_port)" \
    EXECUTOR_ADMIN_ADDR="127.0.0.1:$(free_port)" SCHEDULER_ADMIN_ADDR="127.0.0.1:$(free_port)" \
    GATHERING_PROJECT_ROOTS="$WORK/projects" RATE_LIMIT_ENABLED=false LSP_PYTHON_COMMAND="$PYLSP" \
    OPENAI_BASE_URL="$FAKE_URL" OPENAI_API_KEY=fuzz-key \
    "$EXE" up >"$WORK/stack-$1.log" 2>&1 &
  STACK_PID=$!
  for _ in $(seq 1 600); do
    if curl -fsS "$EDGE/health/ready" >/dev/null 2>&1; then return 0; fi
    kill -0 "$STACK_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "the stack did not become ready; its log:"
  tail -50 "$WORK/stack-$1.log" >&2
  return 1
}

mkdir -p "$REPORTS"
FAILED=0
# Runs Schemathesis against the live edge; $1 = run name, the rest = extra options.
fuzz() {
  local name=$1
  shift
  log "run '$name' against $EDGE/openapi.json"
  local rc=0
  "$ST" run "$EDGE/openapi.json" --url "$EDGE" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers "$WORKERS" \
    --phases examples,coverage,fuzzing --generation-database none \
    --request-timeout 20 --no-color --output-truncate true \
    --report ndjson --report-ndjson-path "$REPORTS/$name.ndjson" \
    "$@" >"$REPORTS/$name.log" 2>&1 || rc=$?
  tail -40 "$REPORTS/$name.log"
  "$PY" scripts/fuzz-summary.py "$name" "$REPORTS/$name.ndjson" "$WORK/totals" || rc=1
  [ "$rc" -eq 0 ] || FAILED=1
}

# A few rows, so that small ids and list answers reach real data rather than only 404s and
# empty lists (best effort: a refused seed only makes the run shallower).
seed() {
  local body path
  while IFS='|' read -r path body; do
    [ -n "$path" ] || continue
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
      "$@" -d "$body" "$EDGE$path" || true)
    log "seed POST $path -> $code"
  done <<'SEED'
/providers|{"name":"fuzzprovider","api_base_url":null,"is_local":true}
/models|{"provider_id":1,"model_name":"fuzz-model","context_window":8192}
/personas|{"display_name":"Fuzz","role":"tester","traits":["careful"],"specializations":[],"languages":["en"]}
/agents|{"persona":{"name":"Fuzz Agent","role":"tester"},"config":{"provider":"openai","model":"gpt-4o-mini"}}
/circles|{"name":"fuzz","require_review":false,"auto_route":true}
/goals|{"agent_id":1,"title":"Fuzz goal","description":"seeded for the fuzz run","tags":["fuzz"]}
/goals|{"agent_id":1,"title":"Fuzz subgoal","description":"seeded","parent_id":1}
/memories/knowledge|{"title":"Fuzz entry","content":"seeded knowledge","category":"docs","tags":["fuzz"]}
/memories/agents/1/remember|{"content":"seeded memory"}
SEED
}

EXTRA=("$@")

start_stack true
seed
fuzz development "${EXTRA[@]}"
stop_stack

start_stack false
EMAIL="fuzz-$$@example.com"
PASSWORD="Fuzz-$(date +%s)-Passw0rd!"
curl -fsS -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"name\":\"Fuzz User\"}" \
  "$EDGE/auth/register" >/dev/null
TOKEN=$(curl -fsS -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" "$EDGE/auth/login/json" |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# Routes that end the session would make the rest of the run unauthenticated.
fuzz authenticated -H "Authorization: Bearer $TOKEN" \
  --exclude-operation-id post_auth_logout --exclude-operation-id post_auth_logout_all \
  --exclude-operation-id post_auth_change_password "${EXTRA[@]}"
stop_stack

# One closing line over both runs: examples that passed every check, and failures (a failed
# check or an operation Schemathesis could not test).
awk '{p += $1; f += $2} END {printf "fuzz: %d passed, %d failed\n", p, f}' "$WORK/totals"
if [ "$FAILED" -ne 0 ]; then
  log "FAILED (reports in $REPORTS)"
  exit 1
fi
log "ok (reports in $REPORTS)"
