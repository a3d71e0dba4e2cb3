#!/usr/bin/env bash
# Side-by-side benchmark of the job queue against Graphile Worker 0.17, on the same PostgreSQL
# (DATABASE_URL), same job counts, in one run; prints one table with ratios. Not part of CI.
#
#   scripts/bench-peers.sh
#
# Graphile Worker is installed with npm into a temporary folder (removed at exit); Node.js and
# npm come from Debian when missing. Each side gets a fresh database (created and dropped here
# for Graphile; the queue bench creates its own). Environment (defaults in brackets):
#   DATABASE_URL          [postgres://gathering@127.0.0.1:54329/gathering]
#   PEER_JOBS_SINGLE      jobs in the single-row and batch-1 modes [10000]
#   PEER_JOBS_BATCHED     jobs in the batched mode [100000]
#   PEER_LATENCY_SAMPLES  pickup samples, idle and under load [300]
#   GRAPHILE_VERSION      [0.17]
#   PEER_ROUNDS           rounds, each side back to back, best of them reported [3]
# On a shared machine one long write transaction anywhere in the cluster holds back the
# cleanup horizon of every database; both queues' claims then walk dead index entries and
# drop an order of magnitude for its duration, hence several rounds and the best of each.
set -euo pipefail

cd "$(dirname "$0")/.."
export DATABASE_URL=${DATABASE_URL:-postgres://gathering@127.0.0.1:54329/gathering}
export PEER_JOBS_SINGLE=${PEER_JOBS_SINGLE:-10000}
export PEER_JOBS_BATCHED=${PEER_JOBS_BATCHED:-100000}
export PEER_LATENCY_SAMPLES=${PEER_LATENCY_SAMPLES:-300}
GRAPHILE_VERSION=${GRAPHILE_VERSION:-0.17}
PEER_ROUNDS=${PEER_ROUNDS:-3}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { printf '[bench-peers] %s\n' "$*" >&2; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing Debian's nodejs and npm"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm >/dev/null
fi

work=$(mktemp -d)
gwdb="bench_peers_graphile_$$"
base_url=${DATABASE_URL%/*}
cleanup() {
  (cd "$work" 2>/dev/null && node -e '
    const { Client } = require("pg");
    const c = new Client({ connectionString: process.argv[1] });
    c.connect().then(() => c.query(`drop database if exists ${process.argv[2]} with (force)`))
      .finally(() => c.end());' "$DATABASE_URL" "$gwdb" 2>/dev/null) || true
  rm -rf "$work"
}
trap cleanup EXIT

log "installing graphile-worker@$GRAPHILE_VERSION into $work"
cp scripts/bench-peers/graphile.js "$work/"
(cd "$work" && npm init -y >/dev/null && npm install -q --no-audit --no-fund \
  "graphile-worker@$GRAPHILE_VERSION" pg >/dev/null)
gw_installed=$(cd "$work" && node -p 'require("graphile-worker/package.json").version')

log "building the queue bench"
cargo bench -p gathering-queue --bench queue --no-run -q 2>/dev/null ||
  cargo bench -p gathering-queue --bench queue --no-run

results="$work/results"
: >"$results"

create_gwdb() {
  (cd "$work" && node -e '
    const { Client } = require("pg");
    const c = new Client({ connectionString: process.argv[1] });
    c.connect().then(() => c.query(`drop database if exists ${process.argv[2]} with (force)`))
      .then(() => c.query(`create database ${process.argv[2]}`)).finally(() => c.end());' \
    "$DATABASE_URL" "$gwdb")
}
export PERF_DATABASE_URL="$base_url/$gwdb"
loads="$work/loads"
: >"$loads"
for round in $(seq 1 "$PEER_ROUNDS"); do
  # Other processes on the machine skew both sides: the load average goes with the figures.
  echo "$round $(cut -d' ' -f1-3 /proc/loadavg)" >>"$loads"
  log "round $round/$PEER_ROUNDS: GatheRing queue (fresh database)"
  QUEUE_BENCH_PEERS=1 cargo bench -q -p gathering-queue --bench queue 2>/dev/null |
    grep '^PEER ' >>"$results"
  log "round $round/$PEER_ROUNDS: Graphile Worker $gw_installed (fresh database $gwdb)"
  create_gwdb
  for mode in default batched latency; do
    (cd "$work" && node graphile.js "$mode") | grep '^PEER ' >>"$results"
  done
done

python3 - "$results" "$gw_installed" "$loads" <<'PY'
import sys
import statistics
runs = {}
for line in open(sys.argv[1]):
    _, key, value = line.split()
    runs.setdefault(key, []).append(float(value))
# Best of the rounds: highest throughput, lowest latency; commits per job: median.
vals = {}
for key, v in runs.items():
    if "_commits" in key:
        vals[key] = statistics.median(v)
    elif "_p50" in key or "_p99" in key:
        vals[key] = min(v)
    else:
        vals[key] = max(v)
rounds = max(len(v) for v in runs.values())
g = lambda k: vals.get("graphile." + k)
o = lambda k: vals.get("ours." + k)
print(f"\nGraphile Worker {sys.argv[2]} vs GatheRing queue, same PostgreSQL, one run, "
      f"best of {rounds} rounds\n")
print("| mode | Graphile Worker | GatheRing | ratio | target |")
print("|---|---|---|---|---|")
def tp(label, gk, ok, target):
    gv, ov = g(gk), o(ok)
    ratio = f"{ov / gv:.2f}×" if gv and ov else "n/a"
    print(f"| {label} | {gv:,.0f} jobs/s | {ov:,.0f} jobs/s | {ratio} | ≥ {target}× |")
tp("Graphile default (10 concurrent) vs our single-row claim and completion, 16 workers",
   "default", "single", "1.0")
tp("same Graphile run vs our claim batch 1 with batched completion, 16 workers",
   "default", "batch1", "1.2")
tp("batched: Graphile 4 × 24 concurrent, local queue 500, batched completion vs our 64 workers, claim batch 500",
   "batched", "batched", "1.3")
def commits(label, gk, ok):
    gv, ov = g(gk + "_commits"), o(ok + "_commits")
    if gv is not None and ov is not None:
        print(f"| {label}: commits per job | {gv:.2f} | {ov:.2f} | | |")
def lat(label, k, target):
    print(f"| pickup latency {label} p50 / p99 | {g(k + '_p50'):.2f} / {g(k + '_p99'):.2f} ms "
          f"| {o(k + '_p50'):.2f} / {o(k + '_p99'):.2f} ms | | p99 ≤ {target} ms |")
lat("at idle", "lat_idle", 5)
lat("while another queue runs ~10k jobs/s", "lat_load", 10)
commits("single-row (Graphile: default)", "default", "single")
commits("batch 1, batched completion (Graphile: default)", "default", "batch1")
commits("batched", "batched", "batched")
print("\nEvery round (throughput in jobs/s, latency in ms):\n")
for line in open(sys.argv[3]):
    r, l1, l5, l15 = line.split()
    print(f"- load average before round {r}: {l1}, {l5}, {l15}")
for key in sorted(runs):
    print(f"- {key}: {', '.join(f'{v:g}' for v in runs[key])}")
PY
