//! Queue and event-log benchmark: prints a table.
//!
//!     cargo bench -p gathering-queue --bench queue
//!
//! Uses a fresh database on `DATABASE_URL` (default: the project-local cluster). Jobs are
//! no-ops: what is measured is the queue itself (enqueue, claim, lease, complete).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gathering_core::Shutdown;
use gathering_db::listen::ListenerEvent;
use gathering_events::{NewEvent, publish_in};
use gathering_queue::{NewJob, Outcome, Queue, QueueConfig, Registry, Worker, WorkerConfig};
use gathering_testkit::TestDb;
use serde_json::json;

fn row(name: &str, value: String) {
    println!("| {name:<58} | {value:>22} |");
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (at(0.50), at(0.95), at(0.99))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn worker_config(
    queue: &str,
    concurrency: usize,
    batch: usize,
    completion_batch: usize,
) -> WorkerConfig {
    WorkerConfig {
        queues: vec![QueueConfig {
            name: queue.into(),
            concurrency,
            batch,
        }],
        poll_interval: Duration::from_secs(1),
        completion_batch,
        ..WorkerConfig::default()
    }
}

/// Enqueues `n` no-op jobs in batches of 1000, then runs a worker until all completed.
async fn throughput(db: &TestDb, queue: &Queue, name: &str, n: usize, cfg: WorkerConfig) -> f64 {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let jobs: Vec<NewJob> = chunk
            .iter()
            .map(|_| NewJob::new("noop", json!({})).queue(name))
            .collect();
        queue.enqueue_many(&jobs).await.unwrap();
    }
    let mut registry = Registry::new();
    registry.register("noop", |_| async { Ok(Outcome::Completed) });
    let shutdown = Shutdown::new();
    let started = Instant::now();
    let handle = Worker::start(queue.clone(), &db.url, registry, cfg, shutdown.clone())
        .await
        .unwrap();
    while handle.stats.completed.load(Ordering::Relaxed) < n as u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    shutdown.trigger();
    handle.wait().await;
    rate
}

/// Pickup latency: enqueue → handler start, one job at a time.
async fn pickup(
    db: &TestDb,
    queue: &Queue,
    name: &str,
    samples: usize,
    gap: Duration,
) -> Vec<Duration> {
    let sent: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let seen: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut registry = Registry::new();
    let (s, r) = (sent.clone(), seen.clone());
    registry.register("ping", move |ctx| {
        let now = Instant::now();
        let (s, r) = (s.clone(), r.clone());
        async move {
            // The enqueue call may still be returning: wait for its timestamp.
            loop {
                if let Some(t) = s.lock().unwrap().get(&ctx.job.id) {
                    r.lock().unwrap().push(now.duration_since(*t));
                    break;
                }
                tokio::task::yield_now().await;
            }
            Ok(Outcome::Completed)
        }
    });
    let shutdown = Shutdown::new();
    let handle = Worker::start(
        queue.clone(),
        &db.url,
        registry,
        worker_config(name, 4, 4, 1000),
        shutdown.clone(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..samples {
        let t = Instant::now();
        // The id is known only after the insert; record the time taken before it.
        let id = queue
            .enqueue(NewJob::new("ping", json!({})).queue(name))
            .await
            .unwrap()
            .id;
        sent.lock().unwrap().insert(id, t);
        tokio::time::sleep(gap).await;
    }
    while seen.lock().unwrap().len() < samples {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shutdown.trigger();
    handle.wait().await;
    seen.lock().unwrap().clone()
}

/// Another queue under load: 100 jobs every 10 ms (~10k jobs/s), run by a batched worker.
async fn start_load(db: &TestDb, queue: &Queue) -> Shutdown {
    let load_stop = Shutdown::new();
    let mut registry = Registry::new();
    registry.register("noop", |_| async { Ok(Outcome::Completed) });
    let handle = Worker::start(
        queue.clone(),
        &db.url,
        registry,
        worker_config("load", 16, 100, 1000),
        load_stop.clone(),
    )
    .await
    .unwrap();
    let (q, stop) = (queue.clone(), load_stop.clone());
    tokio::spawn(async move {
        while !stop.is_triggered() {
            let jobs: Vec<NewJob> = (0..100)
                .map(|_| NewJob::new("noop", json!({})).queue("load"))
                .collect();
            let _ = q.enqueue_many(&jobs).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.wait().await;
    });
    // Let the load reach its pace.
    tokio::time::sleep(Duration::from_millis(500)).await;
    load_stop
}

/// Transactions committed in the bench database so far (server statistics, flushed by idle
/// backends within a second).
async fn commits(db: &TestDb) -> i64 {
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let client = db.pool(1).get().await.unwrap();
    client
        .query_one(
            "SELECT pg_stat_clear_snapshot()::text, xact_commit FROM pg_stat_database \
             WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .try_get(1)
        .unwrap()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `QUEUE_BENCH_PEERS=1` (scripts/bench-peers.sh): only the modes compared with Graphile
/// Worker, as `PEER ours.<measure> <value>` lines, with the job counts the script passes.
async fn peers(db: &TestDb, queue: &Queue) {
    let single = env_usize("PEER_JOBS_SINGLE", 10_000);
    let batched = env_usize("PEER_JOBS_BATCHED", 100_000);
    let samples = env_usize("PEER_LATENCY_SAMPLES", 300);
    for (key, n, cfg) in [
        ("single", single, worker_config("p_single", 16, 1, 1)),
        ("batch1", single, worker_config("p_batch1", 16, 1, 1000)),
        (
            "batched",
            batched,
            worker_config("p_batched", 64, 500, 1000),
        ),
    ] {
        let name = cfg.queues[0].name.clone();
        let before = commits(db).await;
        // A pool of its own, closed after the run: exiting backends flush their statistics
        // (idle ones only every 10 s), so the commit count below is complete.
        let own = Queue::new(db.pool(32));
        let rate = throughput(db, &own, &name, n, cfg).await;
        drop(own);
        println!("PEER ours.{key} {rate:.0}");
        // Includes the enqueue statements (batches of 1000: 0.001 per job).
        let per_job = (commits(db).await - before) as f64 / n as f64;
        println!("PEER ours.{key}_commits {per_job:.3}");
    }
    let (p50, _, p99) =
        percentiles(pickup(db, queue, "p_lat_idle", samples, Duration::from_millis(10)).await);
    println!("PEER ours.lat_idle_p50 {:.2}", p50.as_secs_f64() * 1000.0);
    println!("PEER ours.lat_idle_p99 {:.2}", p99.as_secs_f64() * 1000.0);
    let load = start_load(db, queue).await;
    let (p50, _, p99) =
        percentiles(pickup(db, queue, "p_lat_load", samples, Duration::from_millis(10)).await);
    load.trigger();
    println!("PEER ours.lat_load_p50 {:.2}", p50.as_secs_f64() * 1000.0);
    println!("PEER ours.lat_load_p99 {:.2}", p99.as_secs_f64() * 1000.0);
}

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let pool = db.pool(32);
    let queue = Queue::new(pool.clone());
    if std::env::var("QUEUE_BENCH_PEERS").is_ok_and(|v| v == "1") {
        peers(&db, &queue).await;
        return;
    }
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    println!(
        "queue benchmark — {} cores ({machine}), PostgreSQL on the same machine\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("| {:<58} | {:>22} |", "measure", "result");
    println!("|{}|{}|", "-".repeat(60), "-".repeat(24));

    // Enqueue, one job per statement, 16 concurrent callers; count the NOTIFYs they cause.
    let mut listener = gathering_db::Listener::start(&db.url, &["queue_enq"], Shutdown::new())
        .await
        .unwrap();
    let n = 8000;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let q = queue.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..n / 16 {
                q.enqueue(NewJob::new("noop", json!({})).queue("enq"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut notifies = 0;
    while let Some(ListenerEvent::Notification(_)) = listener.try_recv() {
        notifies += 1;
    }
    row(
        "enqueue, single job per statement (16 callers)",
        format!("{:.0} jobs/s", n as f64 / secs),
    );
    row(
        "  NOTIFYs sent during it (per-queue 5 ms window)",
        format!("{:.0}/s ({notifies} for {n} jobs)", notifies as f64 / secs),
    );

    let started = Instant::now();
    for _ in 0..100 {
        let jobs: Vec<NewJob> = (0..500)
            .map(|_| NewJob::new("noop", json!({})).queue("enqb"))
            .collect();
        queue.enqueue_many(&jobs).await.unwrap();
    }
    row(
        "enqueue, batches of 500 (one statement each)",
        format!("{:.0} jobs/s", 50_000.0 / started.elapsed().as_secs_f64()),
    );

    // Claim + complete, no-op handlers.
    for (workers, batch) in [
        (1, 1),
        (1, 10),
        (1, 100),
        (4, 1),
        (4, 10),
        (4, 100),
        (16, 1),
        (16, 10),
        (16, 100),
    ] {
        let name = format!("tp_{workers}_{batch}");
        let n = if batch == 1 { 10_000 } else { 40_000 };
        let rate = throughput(
            &db,
            &queue,
            &name,
            n,
            worker_config(&name, workers, batch, 1000),
        )
        .await;
        row(
            &format!(
                "claim+complete: {workers:>2} workers, claim batch {batch:>3}, batched completion"
            ),
            format!("{rate:.0} jobs/s"),
        );
    }
    let rate = throughput(
        &db,
        &queue,
        "tp_single",
        10_000,
        worker_config("tp_single", 16, 1, 1),
    )
    .await;
    row(
        "claim+complete: 16 workers, single-row claim and completion",
        format!("{rate:.0} jobs/s"),
    );
    let rate = throughput(
        &db,
        &queue,
        "tp_best",
        100_000,
        worker_config("tp_best", 64, 500, 1000),
    )
    .await;
    row(
        "claim+complete: 64 workers, claim batch 500, batched completion",
        format!("{rate:.0} jobs/s"),
    );

    // Pickup latency at idle, then with another queue under load.
    let (p50, p95, p99) =
        percentiles(pickup(&db, &queue, "lat_idle", 300, Duration::from_millis(10)).await);
    row(
        "pickup latency at idle (enqueue → handler) p50/p95/p99",
        format!("{} / {} / {}", ms(p50), ms(p95), ms(p99)),
    );
    let load_stop = start_load(&db, &queue).await;
    let (p50, p95, p99) =
        percentiles(pickup(&db, &queue, "lat_load", 300, Duration::from_millis(10)).await);
    load_stop.trigger();
    row(
        "pickup latency, ~10k jobs/s on another queue, p50/p95/p99",
        format!("{} / {} / {}", ms(p50), ms(p95), ms(p99)),
    );

    // Event log.
    let client = pool.get().await.unwrap();
    let started = Instant::now();
    for i in 0..2000 {
        publish_in(&client, &[NewEvent::new("bench.single", json!({"i": i}))])
            .await
            .unwrap();
    }
    row(
        "event publish, one per statement",
        format!("{:.0} events/s", 2000.0 / started.elapsed().as_secs_f64()),
    );
    let started = Instant::now();
    for b in 0..200 {
        let events: Vec<NewEvent> = (0..500)
            .map(|i| NewEvent::new("bench.batch", json!({"b": b, "i": i})).topic("bench"))
            .collect();
        publish_in(&client, &events).await.unwrap();
    }
    row(
        "event publish, batches of 500",
        format!(
            "{:.0} events/s",
            100_000.0 / started.elapsed().as_secs_f64()
        ),
    );
}
