//! Scheduler benchmark: how late runs fire, and how fast a burst of due schedules is
//! dispatched, with 1 and 3 instances (in-process, each with its own pool and listeners)
//! against the local PostgreSQL.
//!
//! `cargo bench -p gathering-scheduler --bench scheduler` prints a table:
//! - lateness = `triggered_at − scheduled_for` of every run (`triggered_at` is the start of
//!   the claim transaction that recorded the run and enqueued its job), for every-second cron
//!   schedules over 10 s;
//! - burst = 10,000 schedules due in the same second: time from that second until the last
//!   run is committed (seen by a poller), and the database's own `max(triggered_at) − due`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use gathering_core::Shutdown;
use gathering_testkit::TestDb;

struct Instance {
    shutdown: Shutdown,
    started: gathering_scheduler::Started,
}

async fn start_instances(db: &TestDb, n: usize) -> Vec<Instance> {
    let mut out = Vec::new();
    for _ in 0..n {
        let vars: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), db.url.clone()),
            ("GATHERING_ENV".into(), "development".into()),
            ("SCHEDULER_ADMIN_ADDR".into(), "127.0.0.1:0".into()),
            ("SCHEDULER_DB_POOL_SIZE".into(), "4".into()),
        ]);
        let config = gathering_scheduler::Config::from_vars(&vars).expect("config");
        let shutdown = Shutdown::new();
        let started = gathering_scheduler::start(config, shutdown.clone())
            .await
            .expect("scheduler");
        out.push(Instance { shutdown, started });
    }
    out
}

async fn stop(instances: Vec<Instance>) {
    for i in instances {
        i.shutdown.trigger();
        let _ = i.started.wait().await;
    }
}

async fn db_now(pool: &gathering_db::Pool) -> DateTime<Utc> {
    pool.get()
        .await
        .expect("client")
        .query_one("SELECT now()", &[])
        .await
        .expect("now")
        .get(0)
}

async fn sleep_until(t: DateTime<Utc>) {
    if let Ok(d) = (t - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

/// Inserts `n` schedules of `cron` with first due time `first` (and end date `end`).
async fn schedules(
    pool: &gathering_db::Pool,
    n: i64,
    cron: &str,
    first: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
) {
    let client = pool.get().await.expect("client");
    client
        .execute(
            "INSERT INTO circle.scheduled_actions (agent_id, name, goal, schedule_type, cron_expression, \
             action_type, action_config, allow_concurrent, start_date, end_date, next_run_at) \
             SELECT (SELECT min(id) FROM agent.agents), 'bench ' || g, 'g', 'cron', $2, 'send_notification', \
             '{\"url\": \"http://127.0.0.1:9/\", \"payload\": {}}', true, $3, $4, $3 \
             FROM generate_series(1, $1::int8) g",
            &[&n, &cron, &first, &end],
        )
        .await
        .expect("insert schedules");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Lateness {
    runs: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    duplicates: i64,
    /// When executors are told (the commit's `NOTIFY queue_scheduled`), after the due second.
    visible_p50_ms: f64,
    visible_p99_ms: f64,
}

/// `count` every-second schedules for `seconds` seconds with `instances` schedulers.
async fn lateness(instances: usize, count: i64, seconds: i64) -> Lateness {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    pool.get()
        .await
        .expect("client")
        .execute("INSERT INTO agent.agents (name) VALUES ('bench')", &[])
        .await
        .expect("agent");
    let running = start_instances(&db, instances).await;
    // Executors wake on this notification, sent when a claim commits: the moment a run is
    // really fired.
    let stop_listening = Shutdown::new();
    let mut listener =
        gathering_db::Listener::start(&db.url, &["queue_scheduled"], stop_listening.clone())
            .await
            .expect("listen");
    let notified = tokio::spawn(async move {
        let mut at: Vec<DateTime<Utc>> = Vec::new();
        while let Some(e) = listener.recv().await {
            if matches!(e, gathering_db::listen::ListenerEvent::Notification(_)) {
                at.push(Utc::now());
            }
        }
        at
    });
    let now = db_now(&pool).await;
    let first = now
        .checked_add_signed(TimeDelta::milliseconds(1500))
        .and_then(|t| t.with_nanosecond(0))
        .expect("time");
    let end = first + TimeDelta::seconds(seconds - 1);
    schedules(&pool, count, "* * * * * *", first, Some(end)).await;
    sleep_until(end + TimeDelta::milliseconds(1500)).await;
    stop(running).await;
    stop_listening.trigger();
    let mut visible: Vec<f64> = notified
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|t| *t >= first && *t < end + TimeDelta::seconds(1))
        .map(|t| f64::from(t.nanosecond() % 1_000_000_000) / 1e6)
        .collect();
    visible.sort_by(|a, b| a.total_cmp(b));
    let client = pool.get().await.expect("client");
    let rows = client
        .query(
            "SELECT extract(epoch FROM triggered_at - scheduled_for)::float8 * 1000 \
             FROM circle.scheduled_action_runs",
            &[],
        )
        .await
        .expect("runs");
    let mut late: Vec<f64> = rows.iter().map(|r| r.get(0)).collect();
    late.sort_by(|a, b| a.total_cmp(b));
    let duplicates: i64 = client
        .query_one(
            "SELECT count(*) - count(DISTINCT (scheduled_action_id, scheduled_for)) FROM circle.scheduled_action_runs",
            &[],
        )
        .await
        .expect("dups")
        .get(0);
    Lateness {
        runs: late.len(),
        p50_ms: percentile(&late, 0.5),
        p99_ms: percentile(&late, 0.99),
        max_ms: late.last().copied().unwrap_or(f64::NAN),
        duplicates,
        visible_p50_ms: percentile(&visible, 0.5),
        visible_p99_ms: percentile(&visible, 0.99),
    }
}

struct Burst {
    wall_ms: f64,
    db_ms: f64,
    runs: i64,
}

/// `count` schedules all due in the same second, `instances` schedulers.
async fn burst(instances: usize, count: i64) -> Burst {
    let db = TestDb::new().await;
    let pool = db.pool(4);
    pool.get()
        .await
        .expect("client")
        .execute("INSERT INTO agent.agents (name) VALUES ('bench')", &[])
        .await
        .expect("agent");
    let now = db_now(&pool).await;
    let due = (now + TimeDelta::seconds(4))
        .with_nanosecond(0)
        .expect("time");
    // Daily schedules: each fires once at `due` in this window.
    schedules(&pool, count, "0 0 0 * * *", due, None).await;
    pool.get()
        .await
        .expect("client")
        .execute(
            "UPDATE circle.scheduled_actions SET next_run_at = $1",
            &[&due],
        )
        .await
        .expect("align");
    pool.get()
        .await
        .expect("client")
        .batch_execute("VACUUM ANALYZE circle.scheduled_actions")
        .await
        .expect("analyze");
    let running = start_instances(&db, instances).await;
    sleep_until(due).await;
    let started = Instant::now();
    let client = pool.get().await.expect("client");
    let mut runs: i64 = 0;
    while runs < count && started.elapsed() < Duration::from_secs(120) {
        runs = client
            .query_one("SELECT count(*) FROM circle.scheduled_action_runs", &[])
            .await
            .expect("count")
            .get(0);
        if runs < count {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let db_ms: f64 = client
        .query_one(
            "SELECT extract(epoch FROM max(triggered_at) - $1)::float8 * 1000 FROM circle.scheduled_action_runs",
            &[&due],
        )
        .await
        .expect("max")
        .get(0);
    stop(running).await;
    Burst {
        wall_ms,
        db_ms,
        runs,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let seconds = 10;
    println!("Scheduler benchmark (in-process instances, local PostgreSQL)\n");
    println!(
        "| scenario | instances | runs | lateness p50 | p99 | max | committed (jobs visible) p50 | p99 | duplicate due times |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // BENCH_ONLY=burst or BENCH_ONLY=lateness runs one part.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let lateness_cases: &[(i64, &str)] = if only == "burst" {
        &[]
    } else {
        &[
            (1, "1 every-second cron, 10 s"),
            (200, "200 every-second crons, 10 s"),
        ]
    };
    for &(count, label) in lateness_cases {
        for instances in [1, 3] {
            let l = lateness(instances, count, seconds).await;
            println!(
                "| {label} | {instances} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
                l.runs,
                l.p50_ms,
                l.p99_ms,
                l.max_ms,
                l.visible_p50_ms,
                l.visible_p99_ms,
                l.duplicates
            );
        }
    }
    if only == "lateness" {
        return;
    }
    println!();
    println!(
        "| burst | instances | runs | last run committed after the due second (wall) | last claim started (db) |"
    );
    println!("|---|---|---|---|---|");
    for instances in [1, 3] {
        let b = burst(instances, 10_000).await;
        println!(
            "| 10,000 schedules due in the same second | {instances} | {} | {:.0} ms | {:.0} ms |",
            b.runs, b.wall_ms, b.db_ms
        );
    }
}
