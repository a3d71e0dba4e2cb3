// Graphile Worker side of scripts/bench-peers.sh: the workloads of Graphile's own perfTest
// (no-op jobs inserted up front, then timed until the queue is empty; latency = add_job →
// task start), printed as `PEER graphile.<measure> <value>` lines the script gathers.
//
//   node graphile.js <mode>      modes: default | batched | latency | child | load
//
// Needs PERF_DATABASE_URL (a fresh database) and `graphile-worker` + `pg` resolvable (the
// script installs them next to this file in a temporary folder).
"use strict";

const { fork } = require("child_process");
const { Pool } = require("pg");
const { run, runMigrations } = require("graphile-worker");

const url = process.env.PERF_DATABASE_URL;
const SINGLE_JOBS = parseInt(process.env.PEER_JOBS_SINGLE || "10000", 10);
const BATCHED_JOBS = parseInt(process.env.PEER_JOBS_BATCHED || "100000", 10);
const LATENCY_SAMPLES = parseInt(process.env.PEER_LATENCY_SAMPLES || "300", 10);
// Graphile's perfTest runs 4 processes of 24 concurrent jobs each (perfTest/run.js).
const PARALLELISM = parseInt(process.env.PEER_GRAPHILE_PARALLELISM || "4", 10);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const { Logger } = require("graphile-worker");
const logger = new Logger(() => () => {});

// The batched configuration of Graphile's perfTest/graphile.config.js.
const batchedPreset = {
  worker: {
    concurrentJobs: 24,
    maxPoolSize: 25,
    localQueue: { size: 500, refetchDelay: { durationMs: 10 } },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  },
};

async function addJobs(pool, identifier, n) {
  for (let from = 1; from <= n; from += 1000) {
    const to = Math.min(n, from + 999);
    await pool.query(
      `select count(*) from graphile_worker.add_jobs(array(
         select json_populate_record(null::graphile_worker.job_spec,
                json_build_object('identifier', $1::text, 'payload', json_build_object('id', i)))
         from generate_series($2::int, $3::int) i))`,
      [identifier, from, to],
    );
  }
}

async function waitEmpty(pool) {
  for (;;) {
    const { rows } = await pool.query(
      "select exists(select 1 from graphile_worker._private_jobs) as any",
    );
    if (!rows[0].any) return;
    await sleep(5);
  }
}

// Transactions committed in the database so far (server statistics, flushed by idle backends
// within a second).
async function commits(pool) {
  await sleep(1200);
  const { rows } = await pool.query(
    `select pg_stat_clear_snapshot()::text, xact_commit::int8::text as n
     from pg_stat_database where datname = current_database()`,
  );
  return Number(rows[0].n);
}

function rate(n, started) {
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  return (n / secs).toFixed(0);
}

// Graphile's default options with 10 concurrent jobs: one job per fetch, one completion per job.
async function defaultMode() {
  const pool = new Pool({ connectionString: url, max: 4 });
  await runMigrations({ connectionString: url, logger });
  await addJobs(pool, "noop", SINGLE_JOBS);
  const before = await commits(pool);
  const started = process.hrtime.bigint();
  const runner = await run({
    connectionString: url,
    concurrency: 10,
    maxPoolSize: 11,
    noHandleSignals: true,
    logger,
    taskList: { noop: async () => {} },
  });
  await waitEmpty(pool);
  console.log(`PEER graphile.default ${rate(SINGLE_JOBS, started)}`);
  await runner.stop();
  const perJob = ((await commits(pool)) - before) / SINGLE_JOBS;
  console.log(`PEER graphile.default_commits ${perJob.toFixed(3)}`);
  await pool.end();
}

// perfTest/run.js: PARALLELISM processes with the batched preset, timed from a common start.
async function batchedMode() {
  const pool = new Pool({ connectionString: url, max: 4 });
  await runMigrations({ connectionString: url, logger });
  await addJobs(pool, "noop", BATCHED_JOBS);
  const before = await commits(pool);
  const children = [];
  for (let i = 0; i < PARALLELISM; i++) {
    const c = fork(__filename, ["child"], { stdio: "inherit" });
    children.push(c);
    await new Promise((r) => c.once("message", r)); // loaded and connected
  }
  const started = process.hrtime.bigint();
  children.forEach((c) => c.send("go"));
  await waitEmpty(pool);
  console.log(`PEER graphile.batched ${rate(BATCHED_JOBS, started)}`);
  children.forEach((c) => c.send("stop"));
  await Promise.all(children.map((c) => new Promise((r) => c.once("exit", r))));
  const perJob = ((await commits(pool)) - before) / BATCHED_JOBS;
  console.log(`PEER graphile.batched_commits ${perJob.toFixed(3)}`);
  await pool.end();
}

async function childMode() {
  const pool = new Pool({ connectionString: url, max: 1 });
  await pool.query("select 1");
  await pool.end();
  process.send("ready");
  await new Promise((r) => process.once("message", r));
  const runner = await run({
    connectionString: url,
    noHandleSignals: true,
    logger,
    preset: batchedPreset,
    taskList: { noop: async () => {} },
  });
  await new Promise((r) => process.once("message", r));
  await runner.stop();
  process.exit(0);
}

// Another queue's load for the latency test: 100 jobs every 10 ms (~10k jobs/s), run by a
// batched worker in this process.
async function loadMode() {
  const pool = new Pool({ connectionString: url, max: 2 });
  const runner = await run({
    connectionString: url,
    noHandleSignals: true,
    logger,
    preset: batchedPreset,
    taskList: { load: async () => {} },
  });
  let stop = false;
  process.on("message", () => (stop = true));
  process.send("ready");
  while (!stop) {
    await addJobs(pool, "load", 100);
    await sleep(10);
  }
  await runner.stop();
  await pool.end();
  process.exit(0);
}

// perfTest/latencyTest.js: concurrency 1, add_job → task start, one at a time (10 ms apart).
async function latency(pool, label) {
  const sent = new Map();
  const seen = [];
  const waiting = new Map();
  const runner = await run({
    connectionString: url,
    concurrency: 1,
    noHandleSignals: true,
    logger,
    taskList: {
      latency: async ({ id }) => {
        const now = process.hrtime.bigint();
        if (id >= 0) seen.push(Number(now - sent.get(id)) / 1e6);
        const w = waiting.get(id);
        if (w) w();
      },
    },
  });
  // Warm-up, like latencyTest.js.
  for (let i = 1; i <= 20; i++) {
    const done = new Promise((r) => waiting.set(-i, r));
    await pool.query("select graphile_worker.add_job('latency', json_build_object('id', $1::int))", [-i]);
    await done;
  }
  await sleep(300);
  const client = await pool.connect();
  for (let id = 0; id < LATENCY_SAMPLES; id++) {
    const done = new Promise((r) => waiting.set(id, r));
    sent.set(id, process.hrtime.bigint());
    await client.query(
      "select graphile_worker.add_job('latency', json_build_object('id', $1::int))",
      [id],
    );
    await done;
    await sleep(10);
  }
  client.release();
  await runner.stop();
  seen.sort((a, b) => a - b);
  const at = (p) => seen[Math.round((seen.length - 1) * p)];
  console.log(`PEER graphile.${label}_p50 ${at(0.5).toFixed(2)}`);
  console.log(`PEER graphile.${label}_p99 ${at(0.99).toFixed(2)}`);
}

async function latencyMode() {
  const pool = new Pool({ connectionString: url, max: 4 });
  await runMigrations({ connectionString: url, logger });
  await latency(pool, "lat_idle");
  const load = fork(__filename, ["load"], { stdio: "inherit" });
  await new Promise((r) => load.once("message", r));
  await sleep(500);
  await latency(pool, "lat_load");
  load.send("stop");
  await new Promise((r) => load.once("exit", r));
  await pool.end();
}

const modes = {
  default: defaultMode,
  batched: batchedMode,
  child: childMode,
  load: loadMode,
  latency: latencyMode,
};
const mode = modes[process.argv[2]];
if (!mode) {
  console.error(`usage: node graphile.js ${Object.keys(modes).join("|")}`);
  process.exit(2);
}
mode().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
