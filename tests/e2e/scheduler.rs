//! The scheduler as real processes: several `gathering scheduler` instances firing exactly
//! once, one of them killed with SIGKILL, all of them down for a while (missed-run policies),
//! and pause through a real edge. Every action kind through a real executor: `scheduler_actions`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use gathering_testkit::{GatheringProcess, TestDb, free_port, http};
use serde_json::{Value, json};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_gathering"))
}

fn env(db: &TestDb, extra: &[(&str, String)]) -> HashMap<String, String> {
    let mut v = HashMap::from([
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("GATHERING_ENV".to_string(), "development".to_string()),
        ("RUST_LOG".to_string(), "warn".to_string()),
    ]);
    for (k, val) in extra {
        v.insert((*k).to_string(), val.clone());
    }
    v
}

/// A running `gathering <service>` and its HTTP port (admin port, or the edge's).
pub(crate) struct Service {
    process: GatheringProcess,
    port: u16,
}

impl Service {
    pub(crate) async fn start(
        db: &TestDb,
        service: &str,
        addr_var: &str,
        extra: &[(&str, String)],
    ) -> Service {
        let port = free_port();
        let mut vars = extra.to_vec();
        vars.push((addr_var, format!("127.0.0.1:{port}")));
        let process = GatheringProcess::spawn(exe(), &[service], &env(db, &vars));
        http::wait_ok(
            &format!("http://127.0.0.1:{port}/health/ready"),
            Duration::from_secs(60),
        )
        .await;
        Service { process, port }
    }

    pub(crate) async fn scheduler(db: &TestDb) -> Service {
        Service::start(db, "scheduler", "SCHEDULER_ADMIN_ADDR", &[]).await
    }

    /// Runs fired by this instance so far (its admin details).
    async fn fired(&self) -> u64 {
        let body: Value = http::client()
            .get(format!("http://127.0.0.1:{}/health", self.port))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["runs_fired"].as_u64().unwrap_or(0)
    }
}

pub(crate) async fn agent(pool: &gathering_db::Pool) -> i64 {
    pool.get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO agent.agents (name) VALUES ('scheduled') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Epoch seconds of the next whole second at least `lead_ms` from now (database clock).
async fn whole_second_after(pool: &gathering_db::Pool, lead_ms: i64) -> f64 {
    pool.get()
        .await
        .unwrap()
        .query_one(
            "SELECT extract(epoch FROM date_trunc('second', now() + $1::int8 * interval '1 millisecond') + interval '1 second')::float8",
            &[&lead_ms],
        )
        .await
        .unwrap()
        .get(0)
}

async fn sleep_until(epoch: f64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    if epoch > now {
        tokio::time::sleep(Duration::from_secs_f64(epoch - now)).await;
    }
}

/// An every-second cron schedule from `start` to `end` (epoch seconds, inclusive), made in the
/// table as the edge makes it (first due time = `start`).
async fn every_second(
    pool: &gathering_db::Pool,
    agent: i64,
    start: f64,
    end: f64,
    policy: &str,
) -> i64 {
    pool.get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO circle.scheduled_actions (agent_id, name, goal, schedule_type, cron_expression, \
             action_type, action_config, start_date, end_date, allow_concurrent, missed_run_policy, next_run_at) \
             VALUES ($1, 'tick', 'g', 'cron', '* * * * * *', 'send_notification', \
             '{\"url\": \"http://127.0.0.1:9/\", \"payload\": {}}', to_timestamp($2), to_timestamp($3), true, $4, \
             to_timestamp($2)) RETURNING id",
            &[&agent, &start, &end, &policy],
        )
        .await
        .unwrap()
        .get(0)
}

/// `(scheduled_for, triggered_at, triggered_by)` in epoch seconds, by due time.
async fn runs(pool: &gathering_db::Pool, action: i64) -> Vec<(f64, f64, String)> {
    pool.get()
        .await
        .unwrap()
        .query(
            "SELECT extract(epoch FROM scheduled_for)::float8, extract(epoch FROM triggered_at)::float8, triggered_by \
             FROM circle.scheduled_action_runs WHERE scheduled_action_id = $1 ORDER BY scheduled_for",
            &[&action],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn heavy_three_schedulers_fire_an_every_second_cron_exactly_ten_times() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let agent = agent(&pool).await;
    let instances = [
        Service::scheduler(&db).await,
        Service::scheduler(&db).await,
        Service::scheduler(&db).await,
    ];
    let t0 = whole_second_after(&pool, 1000).await;
    let id = every_second(&pool, agent, t0, t0 + 9.0, "run_once").await;
    sleep_until(t0 + 10.5).await;

    let r = runs(&pool, id).await;
    let dues: Vec<f64> = r.iter().map(|r| r.0).collect();
    let expected: Vec<f64> = (0..10).map(|i| t0 + f64::from(i)).collect();
    assert_eq!(dues, expected, "exactly the 10 due times, each once");
    for (due, fired, by) in &r {
        assert_eq!(by, "scheduler");
        assert!(fired - due < 1.0, "fired {:.3} s late", fired - due);
    }
    let jobs: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT count(DISTINCT unique_key) FROM queue.jobs WHERE kind = 'scheduled_action.dispatch'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(jobs, 10);
    let mut total = 0;
    for i in &instances {
        total += i.fired().await;
    }
    assert_eq!(total, 10, "the instances fired 10 runs between them");
}

#[tokio::test]
async fn heavy_a_scheduler_killed_mid_way_leaves_no_gap() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let agent = agent(&pool).await;
    let mut instances = [
        Service::scheduler(&db).await,
        Service::scheduler(&db).await,
        Service::scheduler(&db).await,
    ];
    let t0 = whole_second_after(&pool, 1000).await;
    let id = every_second(&pool, agent, t0, t0 + 9.0, "run_once").await;
    sleep_until(t0 + 4.5).await;
    // Kill the busiest instance, the likeliest to be firing.
    let mut busiest = 0;
    let mut most = 0;
    for (i, s) in instances.iter().enumerate() {
        let n = s.fired().await;
        if n >= most {
            most = n;
            busiest = i;
        }
    }
    instances[busiest].process.kill9();
    sleep_until(t0 + 10.5).await;

    let r = runs(&pool, id).await;
    let dues: Vec<f64> = r.iter().map(|r| r.0).collect();
    let expected: Vec<f64> = (0..10).map(|i| t0 + f64::from(i)).collect();
    assert_eq!(dues, expected, "every due time fired once despite the kill");
    for w in r.windows(2) {
        let gap = w[1].1 - w[0].1;
        assert!(gap <= 2.0, "{gap:.3} s between two runs");
    }
    for (due, fired, _) in &r {
        assert!(fired - due <= 2.0, "fired {:.3} s late", fired - due);
    }
}

#[tokio::test]
async fn heavy_five_seconds_without_any_scheduler_then_each_missed_run_policy() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let agent = agent(&pool).await;
    // No scheduler runs while the five due times t0 … t0+4 s pass.
    let t0 = whole_second_after(&pool, 300).await;
    let skip = every_second(&pool, agent, t0, t0 + 4.0, "skip").await;
    let once = every_second(&pool, agent, t0, t0 + 4.0, "run_once").await;
    let all = every_second(&pool, agent, t0, t0 + 4.0, "catch_up").await;
    sleep_until(t0 + 5.0).await;
    let _scheduler = Service::scheduler(&db).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    assert_eq!(
        runs(&pool, skip).await.len(),
        0,
        "skip: none of the missed runs"
    );
    let r = runs(&pool, once).await;
    assert_eq!(r.len(), 1, "run_once: one run");
    assert_eq!(
        (r[0].0, r[0].2.as_str()),
        (t0 + 4.0, "recovery"),
        "for the latest due time"
    );
    let r = runs(&pool, all).await;
    let dues: Vec<f64> = r.iter().map(|r| r.0).collect();
    assert_eq!(
        dues,
        (0..5).map(|i| t0 + f64::from(i)).collect::<Vec<_>>(),
        "catch_up: all five"
    );
    assert!(r.iter().all(|r| r.2 == "recovery"));
}

#[tokio::test]
async fn heavy_pause_through_the_api_stops_firing_within_a_second() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let agent = agent(&pool).await;
    let edge = Service::start(
        &db,
        "edge",
        "EDGE_ADDR",
        &[
            ("DISABLE_AUTH", "true".into()),
            ("EDGE_WORKERS", "1".into()),
        ],
    )
    .await;
    let _schedulers = [Service::scheduler(&db).await, Service::scheduler(&db).await];
    let api = format!("http://127.0.0.1:{}/api/scheduled-actions", edge.port);
    let client = http::client();
    let created: Value = client
        .post(&api)
        .json(&json!({"agent_id": agent, "name": "tick", "goal": "g", "cron_expression": "* * * * * *",
                      "allow_concurrent": true, "action_type": "send_notification",
                      "action_config": {"url": "http://127.0.0.1:9/", "payload": {}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().expect("created");
    let count = || async { runs(&pool, id).await.len() };
    let mut waited = 0;
    while count().await < 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
        assert!(waited < 100, "the schedule fires");
    }

    let r = client
        .post(format!("{api}/{id}/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let paused_at: f64 = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
        .await
        .unwrap()
        .get(0);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = runs(&pool, id).await;
    let last = r.iter().map(|r| r.1).fold(0.0, f64::max);
    assert!(
        last <= paused_at + 1.0,
        "a run {:.3} s after the pause",
        last - paused_at
    );
    let before_resume = r.len();

    let r = client
        .post(format!("{api}/{id}/resume"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(count().await >= before_resume + 2, "resumed at once");

    let r = client.delete(format!("{api}/{id}")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        count().await,
        0,
        "deleted with its runs, and nothing fires any more"
    );
}
