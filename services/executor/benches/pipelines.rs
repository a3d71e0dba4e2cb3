//! Pipeline execution throughput and per-node overhead, on real executors (in-process, the same
//! `start` as the binary) against the local PostgreSQL.
//!
//! `cargo bench -p gathering-executor --bench pipelines` (needs `DATABASE_URL`, like the
//! tests; `BENCH_ONLY=tool2` runs one row). Two 10-node shapes: `inline` (a trigger and 9 `parallel` passthrough nodes in a
//! chain: decided without tasks) and `tool` (a trigger and 9 `tool` nodes calling `build_url`,
//! which does no I/O: every node is a task with its own writes, circuit check and events).
//! Runs are inserted with their jobs in one transaction, then timed until all are completed.
//! Per-node overhead: for each chained node, its completion minus its predecessor's (all the
//! engine does to run one no-op node: state writes, events, circuit check, task, result).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gathering_core::Shutdown;
use gathering_db::Pool;
use gathering_pipeline::store::{self, NewPipeline, SettingsPatch};
use gathering_pipeline::{Settings, parse_definition};
use gathering_queue::enqueue_many_in;
use gathering_testkit::TestDb;
use serde_json::{Value, json};

const NODES: usize = 10;

/// A trigger and `nodes - 1` chained nodes of `kind`.
fn shape_of(kind: &str, nodes_total: usize) -> (Value, Value) {
    let mut nodes = vec![json!({"id": "n0", "type": "trigger", "name": "start"})];
    let mut edges = Vec::new();
    for i in 1..nodes_total {
        let node = match kind {
            "inline" => json!({"id": format!("n{i}"), "type": "parallel", "name": "pass"}),
            _ => json!({"id": format!("n{i}"), "type": "tool", "name": "noop",
                        "config": {"tool": "build_url", "input": {"base": "https://example.com", "path": "/x"}}}),
        };
        nodes.push(node);
        edges.push(json!({"from": format!("n{}", i - 1), "to": format!("n{i}")}));
    }
    (Value::Array(nodes), Value::Array(edges))
}

async fn pipeline(pool: &Pool, kind: &str) -> (i64, Value) {
    pipeline_of(pool, kind, NODES).await
}

async fn pipeline_of(pool: &Pool, kind: &str, nodes_total: usize) -> (i64, Value) {
    let (nodes, edges) = shape_of(kind, nodes_total);
    let def = parse_definition(&nodes, &edges).unwrap();
    let client = pool.get().await.unwrap();
    let row = store::create_pipeline(
        &client,
        &NewPipeline {
            name: kind,
            description: None,
            status: "active",
            definition: &def,
            settings: SettingsPatch::default(),
        },
    )
    .await
    .unwrap();
    (row.id, def.snapshot(&Settings::default()))
}

/// Inserts `n` runs with their jobs in one transaction; returns their ids.
async fn enqueue(pool: &Pool, pipeline_id: i64, snapshot: &Value, n: usize) -> Vec<i64> {
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let ids: Vec<i64> = tx
        .query(
            "INSERT INTO circle.pipeline_runs (pipeline_id, definition, timeout_seconds) \
             SELECT $1, $2, 3600 FROM generate_series(1, $3::int) RETURNING id",
            &[&pipeline_id, snapshot, &(n as i32)],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let jobs: Vec<_> = ids.iter().map(|id| store::run_job(*id)).collect();
    enqueue_many_in(&tx, &jobs).await.unwrap();
    tx.commit().await.unwrap();
    ids
}

async fn wait_all(pool: &Pool, ids: &[i64]) {
    let client = pool.get().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done: i64 = client
            .query_one(
                "SELECT count(*) FROM circle.pipeline_runs WHERE id = ANY($1) AND status NOT IN ('pending', 'running')",
                &[&ids],
            )
            .await
            .unwrap()
            .get(0);
        if done as usize == ids.len() {
            let failed: i64 = client
                .query_one(
                    "SELECT count(*) FROM circle.pipeline_runs WHERE id = ANY($1) AND status <> 'completed'",
                    &[&ids],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(failed, 0, "every run completes");
            return;
        }
        assert!(Instant::now() < deadline, "runs did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Completion-to-completion gaps of chained nodes, in microseconds.
async fn gaps(pool: &Pool, ids: &[i64]) -> Vec<f64> {
    let client = pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT run_id, node_id, completed_at FROM circle.pipeline_node_runs WHERE run_id = ANY($1)",
            &[&ids],
        )
        .await
        .unwrap();
    let mut by_run: HashMap<i64, Vec<(usize, chrono::DateTime<chrono::Utc>)>> = HashMap::new();
    for r in rows {
        let node: String = r.get(1);
        let i: usize = node[1..].parse().unwrap();
        by_run.entry(r.get(0)).or_default().push((i, r.get(2)));
    }
    let mut out = Vec::new();
    for nodes in by_run.values_mut() {
        nodes.sort();
        for w in nodes.windows(2) {
            out.push((w[1].1 - w[0].1).num_microseconds().unwrap_or(0) as f64);
        }
    }
    out.sort_by(|a, b| a.total_cmp(b));
    out
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Executors(Vec<(Shutdown, gathering_executor::Started)>);

impl Executors {
    async fn start(db: &TestDb, n: usize) -> Executors {
        Self::start_with(db, n, "2").await
    }

    /// `notify_window_ms`: `EVENTS_NOTIFY_WINDOW_MS` (0 = NOTIFY inside each transaction).
    async fn start_with(db: &TestDb, n: usize, notify_window_ms: &str) -> Executors {
        let mut v = Vec::new();
        for _ in 0..n {
            let vars: HashMap<String, String> = [
                ("EVENTS_NOTIFY_WINDOW_MS", notify_window_ms),
                ("DATABASE_URL", db.url.as_str()),
                ("GATHERING_ENV", "development"),
                ("EXECUTOR_ADMIN_ADDR", "127.0.0.1:0"),
                ("EXECUTOR_QUEUES", "pipelines:16"),
                ("EXECUTOR_DB_POOL_SIZE", "24"),
                ("LLM_GATEWAY_URL", "http://127.0.0.1:9"),
                ("AGENT_EMBEDDING_MODEL", "none"),
                ("RUST_LOG", "error"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            let config = gathering_executor::Config::from_vars(&vars).unwrap();
            let stop = Shutdown::new();
            let started = gathering_executor::start(config, stop.clone())
                .await
                .unwrap();
            v.push((stop, started));
        }
        Executors(v)
    }

    async fn stop(self) {
        for (stop, started) in self.0 {
            stop.trigger();
            let _ = started.wait().await;
        }
    }
}

/// `BENCH_NOTIFY=1`: run-progress notifications inside each transaction (as before the
/// announcer) against coalesced after commit, on 1-node and 10-node pipelines, one executor,
/// back to back in one sitting. Per-node overhead: (time per 10-node run − time per 1-node
/// run) / 9, at saturation.
async fn notify_comparison() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    println!(
        "| shape | notify | runs | runs/s 1-node | runs/s 10-node | per-node overhead | notifications/run (10-node) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for kind in ["inline", "tool"] {
        for (label, window) in [
            ("in each transaction (before)", "0"),
            ("coalesced after commit, 2 ms (after)", "2"),
        ] {
            let mut best = (0.0f64, 0.0f64, 0.0f64);
            let n = if kind == "inline" { 2000 } else { 600 };
            for _ in 0..rounds {
                let mut rates = Vec::new();
                let mut notes = 0.0;
                for nodes in [1, NODES] {
                    let db = TestDb::new().await;
                    let pool = db.pool(4);
                    let (pid, snapshot) = pipeline_of(&pool, kind, nodes).await;
                    let exec = Executors::start_with(&db, 1, window).await;
                    let warm = enqueue(&pool, pid, &snapshot, 20).await;
                    wait_all(&pool, &warm).await;
                    let listen_stop = Shutdown::new();
                    let mut listener = gathering_db::Listener::start(
                        &db.url,
                        &[gathering_events::CHANNEL],
                        listen_stop.clone(),
                    )
                    .await
                    .unwrap();
                    // Counted as they come (the listener's buffer is bounded).
                    let counter = tokio::spawn(async move {
                        let mut count = 0usize;
                        while let Some(e) = listener.recv().await {
                            if matches!(e, gathering_db::listen::ListenerEvent::Notification(_)) {
                                count += 1;
                            }
                        }
                        count
                    });
                    let started = Instant::now();
                    let ids = enqueue(&pool, pid, &snapshot, n).await;
                    wait_all(&pool, &ids).await;
                    rates.push(n as f64 / started.elapsed().as_secs_f64());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    listen_stop.trigger();
                    let count = counter.await.unwrap_or(0);
                    notes = count as f64 / n as f64;
                    exec.stop().await;
                }
                // Best of the rounds: other engineers' builds share the machine.
                if rates[1] > best.1 {
                    best = (rates[0], rates[1], notes);
                }
            }
            let per_node_ms = (1.0 / best.1 - 1.0 / best.0) / (NODES - 1) as f64 * 1000.0;
            println!(
                "| {kind} | {label} | {n} | {:.0} | {:.0} | {:.3} ms | {:.2} |",
                best.0, best.1, per_node_ms, best.2
            );
        }
    }
}

async fn bench() {
    gathering_core::tls::install_crypto_provider();
    if std::env::var("BENCH_NOTIFY").is_ok_and(|v| v == "1") {
        notify_comparison().await;
        return;
    }
    println!("| shape | executors | runs | runs/s | node gap p50 | node gap p99 |");
    println!("|---|---|---|---|---|---|");
    let only = std::env::var("BENCH_ONLY").ok();
    for kind in ["inline", "tool"] {
        for executors in [1, 2] {
            if only
                .as_deref()
                .is_some_and(|o| o != format!("{kind}{executors}"))
            {
                continue;
            }
            let db = TestDb::new().await;
            let pool = db.pool(4);
            let (pid, snapshot) = pipeline(&pool, kind).await;
            let exec = Executors::start(&db, executors).await;
            // Warm-up: connections, prepared statements.
            let warm = enqueue(&pool, pid, &snapshot, 20).await;
            wait_all(&pool, &warm).await;
            let n = if kind == "inline" { 2000 } else { 600 };
            let started = Instant::now();
            let ids = enqueue(&pool, pid, &snapshot, n).await;
            wait_all(&pool, &ids).await;
            let secs = started.elapsed().as_secs_f64();
            let g = gaps(&pool, &ids).await;
            println!(
                "| {kind} | {executors} | {n} | {:.0} | {:.2} ms | {:.2} ms |",
                n as f64 / secs,
                pct(&g, 0.5) / 1000.0,
                pct(&g, 0.99) / 1000.0
            );
            exec.stop().await;
        }
    }
    // Unloaded latency: one run at a time.
    let db = TestDb::new().await;
    let pool = db.pool(4);
    let (pid, snapshot) = pipeline(&pool, "tool").await;
    let exec = Executors::start(&db, 1).await;
    let mut all = Vec::new();
    let mut durations = Vec::new();
    for _ in 0..60 {
        let t = Instant::now();
        let ids = enqueue(&pool, pid, &snapshot, 1).await;
        wait_all(&pool, &ids).await;
        durations.push(t.elapsed().as_secs_f64() * 1000.0);
        all.extend(ids);
    }
    let g = gaps(&pool, &all[10..]).await;
    let mut durations = durations.split_off(10);
    durations.sort_by(|a, b| a.total_cmp(b));
    println!(
        "\nOne run at a time (tool shape, 50 runs after 10 warm-up): node gap p50 {:.2} ms, p99 {:.2} ms; enqueue-to-completed p50 {:.1} ms",
        pct(&g, 0.5) / 1000.0,
        pct(&g, 0.99) / 1000.0,
        pct(&durations, 0.5)
    );
    exec.stop().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench());
}
