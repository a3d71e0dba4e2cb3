//! Multi-instance soak: 3 edges, 4 executors and 2 schedulers as real `gathering` processes on
//! one PostgreSQL. Pipeline runs are posted through the edges (two HTTP nodes each, to a local
//! receiver) and every-second schedules call the receiver, first calmly, then while a chaos
//! loop SIGKILLs a random executor, scheduler or edge in turn and starts a new one (node `b`
//! takes 300 ms, so killed executors hold runs in flight). Then:
//! nothing lost (every run accepted by an edge, and every run in the database, completed),
//! nothing done twice (each node's effect arrives under one idempotency key), each schedule
//! fired exactly once per due time with no gap, and a table of throughput, latencies, schedule
//! lag and restart times, calm vs chaos.
//!
//! Short by default (CI, about a minute and a half); longer runs for docs/benchmarks.md:
//!   SOAK_CALM_SECONDS=60 SOAK_CHAOS_SECONDS=240 \
//!     cargo nextest run -p gathering --test e2e soak --no-capture

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use gathering_testkit::{GatheringProcess, TestDb, free_port, http};
use serde_json::{Value, json};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_gathering"))
}

fn seconds(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// (path, idempotency key) of every request the receiver got.
type Calls = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Node `b` takes 300 ms: executors hold jobs most of the time, so kills catch nodes in flight.
async fn receive(State(calls): State<Calls>, uri: Uri, headers: HeaderMap) -> &'static str {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    calls.lock().unwrap().push((uri.path().to_owned(), key));
    if uri.path() == "/b" {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    "{\"ok\": true}"
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Kind {
    Edge,
    Executor,
    Scheduler,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Edge => "edge",
            Kind::Executor => "executor",
            Kind::Scheduler => "scheduler",
        }
    }
}

/// The fleet: each instance's process and current port (a restarted instance gets a new port,
/// so no restart waits for the old socket).
struct Fleet {
    db_url: String,
    instances: Vec<(Kind, GatheringProcess, u16)>,
}

impl Fleet {
    fn spawn(&self, kind: Kind) -> (GatheringProcess, u16) {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut env: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), self.db_url.clone()),
            ("GATHERING_ENV".into(), "development".into()),
            ("RUST_LOG".into(), "error".into()),
            ("LLM_GATEWAY_URL".into(), "http://127.0.0.1:9".into()),
        ]);
        let extra: &[(&str, &str)] = match kind {
            Kind::Edge => &[
                ("DISABLE_AUTH", "true"),
                ("AUTH_URL", "http://127.0.0.1:9"),
                ("RATE_LIMIT_ENABLED", "false"),
                ("EDGE_DB_POOL_SIZE", "4"),
            ],
            Kind::Executor => &[
                ("EXECUTOR_QUEUES", "pipelines:8,scheduled:8"),
                ("EXECUTOR_LEASE_SECONDS", "2"),
                ("EXECUTOR_DB_POOL_SIZE", "6"),
                ("GATHERING_HTTP_ALLOWLIST", "127.0.0.1"),
                ("AGENT_EMBEDDING_MODEL", "none"),
            ],
            Kind::Scheduler => &[("SCHEDULER_DB_POOL_SIZE", "3")],
        };
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        let var = match kind {
            Kind::Edge => "EDGE_ADDR",
            Kind::Executor => "EXECUTOR_ADMIN_ADDR",
            Kind::Scheduler => "SCHEDULER_ADMIN_ADDR",
        };
        env.insert(var.into(), addr);
        (GatheringProcess::spawn(exe(), &[kind.name()], &env), port)
    }

    fn edge_ports(&self) -> Vec<u16> {
        self.instances
            .iter()
            .filter(|(k, _, _)| *k == Kind::Edge)
            .map(|(_, _, p)| *p)
            .collect()
    }
}

async fn ready(port: u16) {
    http::wait_ok(
        &format!("http://127.0.0.1:{port}/health/ready"),
        Duration::from_secs(90),
    )
    .await;
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test]
async fn heavy_soak_under_chaos_loses_nothing_and_does_nothing_twice() {
    let calm = Duration::from_secs(seconds("SOAK_CALM_SECONDS", 15));
    let chaos = Duration::from_secs(seconds("SOAK_CHAOS_SECONDS", 40));
    let kill_every = Duration::from_secs(seconds("SOAK_KILL_EVERY_SECONDS", 3));
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let calls: Calls = Arc::default();
    let app = Router::new().fallback(receive).with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut fleet = Fleet {
        db_url: db.url.clone(),
        instances: Vec::new(),
    };
    for (kind, n) in [(Kind::Edge, 3), (Kind::Executor, 4), (Kind::Scheduler, 2)] {
        for _ in 0..n {
            let (process, port) = fleet.spawn(kind);
            fleet.instances.push((kind, process, port));
        }
    }
    for (_, _, port) in &fleet.instances {
        ready(*port).await;
    }
    let client = http::client();
    let edge0 = format!("http://127.0.0.1:{}", fleet.edge_ports()[0]);
    let node = |id: &str| {
        json!({"id": id, "type": "action", "name": id,
               "config": {"action": "call_api", "tool_name": "http_post",
                          "url": format!("{hook}/{id}"), "json": {"node": id}}})
    };
    let created: Value = client
        .post(format!("{edge0}/pipelines"))
        .json(&json!({
            "name": "soak", "status": "active",
            "nodes": [{"id": "t", "type": "trigger", "name": "Start"}, node("a"), node("b")],
            "edges": [{"id": "e1", "from": "t", "to": "a"}, {"id": "e2", "from": "a", "to": "b"}],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pipeline = created["id"].as_i64().expect("pipeline created");

    // Every-second schedules over both phases, calling the receiver (`/s<id>`).
    let conn = pool.get().await.unwrap();
    let agent: i64 = conn
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('soak') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let start = epoch_now().floor() + 2.0;
    let chaos_at = start + calm.as_secs_f64();
    let end = chaos_at + chaos.as_secs_f64();
    let mut schedules = Vec::new();
    for i in 0..3 {
        let config = json!({"tool_name": "http_post",
                            "tool_input": {"url": format!("{hook}/s{i}"), "json": {"i": i}}});
        let id: i64 = conn
            .query_one(
                "INSERT INTO circle.scheduled_actions (agent_id, name, goal, schedule_type, cron_expression, \
                 action_type, action_config, start_date, end_date, allow_concurrent, missed_run_policy, next_run_at) \
                 VALUES ($1, 'tick', 'g', 'cron', '* * * * * *', 'call_api', $2, to_timestamp($3), \
                 to_timestamp($4), true, 'catch_up', to_timestamp($3)) RETURNING id",
                &[&agent, &config, &start, &(end - 1.0)],
            )
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        schedules.push((id, format!("/s{i}")));
    }
    drop(conn);

    // The load: a run every 100 ms through the edges in turn; a refused or failed request is
    // tried on the next edge (an accepted run is one an edge answered 2xx for).
    let edges = Arc::new(Mutex::new(fleet.edge_ports()));
    let accepted: Arc<Mutex<Vec<i64>>> = Arc::default();
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let load = {
        let (edges, accepted, refused) = (edges.clone(), accepted.clone(), refused.clone());
        let client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64((start - epoch_now()).max(0.0))).await;
            let mut turn = 0usize;
            while epoch_now() < end {
                let ports = edges.lock().unwrap().clone();
                for attempt in 0..ports.len() {
                    let port = ports[(turn + attempt) % ports.len()];
                    let sent = client
                        .post(format!("http://127.0.0.1:{port}/pipelines/{pipeline}/run"))
                        .json(&json!({"trigger_data": {}}))
                        .timeout(Duration::from_secs(3))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => {
                            let body: Value = r.json().await.unwrap_or_default();
                            if let Some(id) = body["id"].as_i64() {
                                accepted.lock().unwrap().push(id);
                            }
                            break;
                        }
                        _ => {
                            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
                turn += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Chaos: SIGKILL an executor, a scheduler, an edge in turn (a random one of its kind), and
    // start a new instance of that kind at once; its restart time is until it is ready.
    tokio::time::sleep(Duration::from_secs_f64((chaos_at - epoch_now()).max(0.0))).await;
    let mut restarts: BTreeMap<Kind, Vec<f64>> = BTreeMap::new();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    let order = [Kind::Executor, Kind::Scheduler, Kind::Edge];
    let mut round = 0;
    while epoch_now() + kill_every.as_secs_f64() < end {
        let kind = order[round % order.len()];
        round += 1;
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let candidates: Vec<usize> = (0..fleet.instances.len())
            .filter(|i| fleet.instances[*i].0 == kind)
            .collect();
        let victim = candidates[(seed >> 8) % candidates.len()];
        fleet.instances[victim].1.kill9();
        let _ = fleet.instances[victim].1.child_mut().wait().await;
        let restarted = Instant::now();
        let (process, port) = fleet.spawn(kind);
        fleet.instances[victim] = (kind, process, port);
        if kind == Kind::Edge {
            *edges.lock().unwrap() = fleet.edge_ports();
        }
        ready(port).await;
        restarts
            .entry(kind)
            .or_default()
            .push(restarted.elapsed().as_secs_f64());
        tokio::time::sleep(kill_every.saturating_sub(restarted.elapsed())).await;
    }
    load.await.unwrap();

    // Drain: every run and every due time settles (runs caught by a killed executor wait for
    // its lease, 2 s).
    let conn = pool.get().await.unwrap();
    let expected_dues = (end - start) as i64;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let open: i64 = conn
            .query_one(
                "SELECT (SELECT count(*) FROM circle.pipeline_runs WHERE status IN ('pending', 'running')) \
                 + (SELECT count(*) FROM circle.scheduled_action_runs WHERE status IN ('pending', 'running'))",
                &[],
            )
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        let fired: i64 = conn
            .query_one("SELECT count(*) FROM circle.scheduled_action_runs", &[])
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        if open == 0 && fired >= expected_dues * schedules.len() as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {open} open, {fired} of {} dues fired",
            expected_dues * schedules.len() as i64
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Nothing lost: every accepted run completed, and so did every run in the database.
    let rows = conn
        .query(
            "SELECT id, status, extract(epoch FROM created_at)::float8, \
             extract(epoch FROM completed_at - created_at)::float8 FROM circle.pipeline_runs ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let mut runs: HashMap<i64, (String, f64, Option<f64>)> = HashMap::new();
    for r in &rows {
        runs.insert(
            r.try_get(0).unwrap(),
            (
                r.try_get(1).unwrap(),
                r.try_get(2).unwrap(),
                r.try_get(3).unwrap(),
            ),
        );
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() > 20, "too little load: {}", accepted.len());
    for id in &accepted {
        let run = runs
            .get(id)
            .unwrap_or_else(|| panic!("accepted run {id} lost"));
        assert_eq!(run.0, "completed", "run {id}");
    }
    for (id, run) in &runs {
        assert_eq!(run.0, "completed", "run {id} (accepted or not)");
    }

    // Nothing done twice: each node of each run reached the receiver under exactly one key.
    let calls = calls.lock().unwrap().clone();
    let mut keys: HashMap<(i64, &str), Vec<String>> = HashMap::new();
    for (path, key) in &calls {
        for node in ["a", "b"] {
            if path == &format!("/{node}") {
                let key = key
                    .clone()
                    .expect("pipeline calls carry an idempotency key");
                let run: i64 = key
                    .strip_prefix("pipeline-run-")
                    .and_then(|k| k.split('-').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("key {key}"));
                keys.entry((run, node)).or_default().push(key);
            }
        }
    }
    let mut redelivered = 0;
    for id in runs.keys() {
        for node in ["a", "b"] {
            let got = keys
                .get(&(*id, node))
                .unwrap_or_else(|| panic!("run {id} node {node} never called"));
            let mut distinct = got.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(distinct.len(), 1, "run {id} node {node}: {got:?}");
            redelivered += got.len() - 1;
        }
    }

    // Schedules: exactly one run per due second, none missing, each completed.
    let mut lags: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut schedule_deliveries = 0;
    let mut schedule_runs = 0;
    for (id, path) in &schedules {
        let rows = conn
            .query(
                "SELECT extract(epoch FROM scheduled_for)::float8, \
                 extract(epoch FROM triggered_at - scheduled_for)::float8, status::text \
                 FROM circle.scheduled_action_runs WHERE scheduled_action_id = $1 ORDER BY scheduled_for",
                &[id],
            )
            .await
            .unwrap();
        let dues: Vec<f64> = rows.iter().map(|r| r.try_get(0).unwrap()).collect();
        let want: Vec<f64> = (0..expected_dues).map(|i| start + i as f64).collect();
        assert_eq!(dues, want, "schedule {id}: one run per due second");
        for r in &rows {
            let status: String = r.try_get(2).unwrap();
            assert_eq!(status, "completed", "schedule {id}");
            let due: f64 = r.try_get(0).unwrap();
            lags[usize::from(due >= chaos_at)].push(r.try_get::<_, f64>(1).unwrap());
        }
        schedule_runs += rows.len();
        let delivered = calls.iter().filter(|(p, _)| p == path).count();
        assert!(
            delivered >= rows.len(),
            "schedule {id}: a run without its call"
        );
        schedule_deliveries += delivered;
    }

    // The table.
    let mut latency: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (_, created, took) in runs.values() {
        latency[usize::from(*created >= chaos_at)].push(took.unwrap_or(f64::NAN));
    }
    println!();
    println!(
        "Soak: 3 edges, 4 executors, 2 schedulers on one PostgreSQL; {} s calm, {} s chaos (a kill every {} s)",
        calm.as_secs(),
        chaos.as_secs(),
        kill_every.as_secs()
    );
    println!(
        "| phase | runs | runs/s | run latency p50 | p99 | max | schedule lag p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, (phase, secs)) in [("calm", calm), ("chaos", chaos)].iter().enumerate() {
        latency[i].sort_by(f64::total_cmp);
        lags[i].sort_by(f64::total_cmp);
        let l = &latency[i];
        let g = &lags[i];
        println!(
            "| {phase} | {} | {:.1} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            l.len(),
            l.len() as f64 / secs.as_secs_f64(),
            percentile(l, 0.5) * 1e3,
            percentile(l, 0.99) * 1e3,
            l.last().copied().unwrap_or(f64::NAN) * 1e3,
            percentile(g, 0.5) * 1e3,
            percentile(g, 0.99) * 1e3,
            g.last().copied().unwrap_or(f64::NAN) * 1e3,
        );
    }
    println!();
    println!("| killed (SIGKILL) | kills | new instance ready: mean | max |");
    println!("|---|---|---|---|");
    for (kind, times) in &restarts {
        println!(
            "| {} | {} | {:.2} s | {:.2} s |",
            kind.name(),
            times.len(),
            times.iter().sum::<f64>() / times.len() as f64,
            times.iter().copied().fold(0.0, f64::max)
        );
    }
    // Runs caught in flight by a killed executor wait for its lease (2 s) to expire.
    let taken_over: Vec<f64> = latency[1].iter().copied().filter(|l| *l >= 2.0).collect();
    println!();
    println!(
        "runs: {} accepted, {} in the database, all completed; requests refused by a dying edge \
         (retried on another): {}; runs taken over from a killed executor: {} (completed {:.1} s \
         after creation at most); node calls redelivered under the same key: {redelivered}; \
         schedule dues: {schedule_runs} fired of {} expected, calls delivered {schedule_deliveries}",
        accepted.len(),
        runs.len(),
        refused.load(std::sync::atomic::Ordering::Relaxed),
        taken_over.len(),
        taken_over.iter().copied().fold(0.0, f64::max),
        expected_dues * schedules.len() as i64,
    );
    assert!(restarts.values().map(Vec::len).sum::<usize>() >= 3);
}
