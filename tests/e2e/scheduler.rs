//! The scheduler as real processes: several `gathering scheduler` instances firing exactly
//! once, one of them killed with SIGKILL, all of them down for a while (missed-run policies),
//! pause through a real edge, and every action kind dispatched by a real executor.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::routing::any;
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
struct Service {
    process: GatheringProcess,
    port: u16,
}

impl Service {
    async fn start(
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

    async fn scheduler(db: &TestDb) -> Service {
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

async fn agent(pool: &gathering_db::Pool) -> i64 {
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

// -------------------------------------------------------------------------------------------
// Every action kind through a real executor
// -------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Hits {
    /// (path, body) of every request.
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    /// Requests answered so far, per path.
    counts: Arc<Mutex<HashMap<String, u32>>>,
}

/// `/flaky…` fails its first two requests, `/fail…` every request; anything else answers 200.
async fn receive(State(hits): State<Hits>, uri: Uri, body: String) -> (StatusCode, String) {
    let path = uri.path().to_string();
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    hits.seen.lock().unwrap().push((path.clone(), body));
    let n = {
        let mut c = hits.counts.lock().unwrap();
        let n = c.entry(path.clone()).or_default();
        *n += 1;
        *n
    };
    if path.starts_with("/fail") || (path.starts_with("/flaky") && n <= 2) {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "{\"error\": \"down\"}".into(),
        )
    } else {
        (StatusCode::OK, "{\"ok\": true}".into())
    }
}

async fn receiver() -> (Hits, String) {
    let hits = Hits::default();
    let app = Router::new()
        .fallback(any(receive))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (hits, base)
}

/// A `once` schedule due right away.
async fn once(
    pool: &gathering_db::Pool,
    agent: i64,
    action: &str,
    config: Value,
    retries: i32,
) -> i64 {
    pool.get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO circle.scheduled_actions (agent_id, name, goal, schedule_type, action_type, action_config, \
             retry_on_failure, max_retries, retry_delay_seconds, next_run_at) \
             VALUES ($1, $2, 'Write the weekly digest', 'once', $2, $3, $4 > 0, $4, 1, now()) RETURNING id",
            &[&agent, &action, &config, &retries],
        )
        .await
        .unwrap()
        .get(0)
}

/// The only run of a schedule once it is in `states`: `(status, retry_count, summary, error,
/// background_task_id, pipeline_run_id, result)`.
#[allow(clippy::type_complexity)]
async fn settled(
    pool: &gathering_db::Pool,
    action: i64,
    states: &[&str],
) -> (
    String,
    i32,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<Value>,
) {
    for _ in 0..300 {
        let row = pool
            .get()
            .await
            .unwrap()
            .query_opt(
                "SELECT status::text, retry_count, result_summary, error_message, background_task_id, \
                 pipeline_run_id, result FROM circle.scheduled_action_runs WHERE scheduled_action_id = $1",
                &[&action],
            )
            .await
            .unwrap();
        if let Some(r) = row {
            let status: String = r.get(0);
            if states.contains(&status.as_str()) {
                return (
                    status,
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the run of schedule {action} did not reach {states:?}");
}

#[tokio::test]
async fn heavy_each_action_kind_is_dispatched_end_to_end_by_a_real_executor() {
    let db = TestDb::new().await;
    let pool = db.pool(2);
    let agent = agent(&pool).await;
    let (hits, base) = receiver().await;
    let _scheduler = Service::scheduler(&db).await;
    // Only the scheduled queue: the task and pipeline jobs it creates stay for inspection.
    let _executor = Service::start(
        &db,
        "executor",
        "EXECUTOR_ADMIN_ADDR",
        &[
            ("EXECUTOR_QUEUES", "scheduled:4".into()),
            ("GATHERING_HTTP_ALLOWLIST", "127.0.0.1".into()),
        ],
    )
    .await;

    // send_notification: a webhook with the configured payload.
    let notify = once(
        &pool,
        agent,
        "send_notification",
        json!({"tool_name": "notify_webhook", "tool_input": {"url": format!("{base}/hook"), "payload": {"text": "digest ready"}}}),
        0,
    )
    .await;
    // call_api: an HTTP POST with a JSON body.
    let api = once(
        &pool,
        agent,
        "call_api",
        json!({"tool_name": "http_post", "tool_input": {"url": format!("{base}/api"), "json": {"n": 1}}}),
        0,
    )
    .await;
    // call_api against an endpoint failing twice: retried (max_retries 3, 1 s apart).
    let flaky = once(
        &pool,
        agent,
        "call_api",
        json!({"tool_input": {"url": format!("{base}/flaky")}}),
        3,
    )
    .await;
    // Always failing, one retry: failed after two attempts.
    let failing = once(
        &pool,
        agent,
        "call_api",
        json!({"tool_input": {"url": format!("{base}/fail")}}),
        1,
    )
    .await;
    // A metadata address: refused by the SSRF guard, never sent.
    let blocked = once(
        &pool,
        agent,
        "call_api",
        json!({"tool_input": {"url": "http://169.254.169.254/latest/meta-data/"}}),
        0,
    )
    .await;
    // run_task and execute_pipeline: a pending task / pipeline run and their jobs.
    let task = once(&pool, agent, "run_task", json!({"max_steps": 7}), 0).await;
    let pipeline_id: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO circle.pipelines (name, status, nodes) VALUES ('digest', 'active', $1) RETURNING id",
            &[&json!([{"id": "wait", "type": "delay", "name": "wait", "config": {"delay_seconds": 1}}])],
        )
        .await
        .unwrap()
        .get(0);
    let pipeline = once(
        &pool,
        agent,
        "execute_pipeline",
        json!({"pipeline_id": pipeline_id, "source": "weekly"}),
        0,
    )
    .await;
    // A pipeline whose definition does not validate: the schedule's run fails with the reason,
    // as a run started through the API would.
    let broken_id: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one(
            "INSERT INTO circle.pipelines (name, status) VALUES ('broken', 'active') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let broken = once(
        &pool,
        agent,
        "execute_pipeline",
        json!({"pipeline_id": broken_id}),
        0,
    )
    .await;

    let (status, _, summary, ..) = settled(&pool, notify, &["completed", "failed"]).await;
    assert_eq!(status, "completed", "{summary:?}");
    assert!(summary.unwrap().contains("notification sent (200)"));
    let (status, _, _, _, _, _, result) = settled(&pool, api, &["completed", "failed"]).await;
    assert_eq!(status, "completed");
    assert_eq!(result.unwrap()["data"]["status"], 200);
    let (status, retries, ..) = settled(&pool, flaky, &["completed", "failed"]).await;
    assert_eq!(
        (status.as_str(), retries),
        ("completed", 2),
        "succeeded on the third call"
    );
    let (status, retries, _, error, ..) = settled(&pool, failing, &["completed", "failed"]).await;
    assert_eq!((status.as_str(), retries), ("failed", 1));
    assert!(error.unwrap().contains("500"));
    let (status, retries, _, error, ..) = settled(&pool, blocked, &["completed", "failed"]).await;
    assert_eq!((status.as_str(), retries), ("failed", 0));
    assert!(error.unwrap().contains("refused"), "SSRF guard");

    let seen = hits.seen.lock().unwrap().clone();
    let per_path = |p: &str| seen.iter().filter(|(path, _)| path == p).count();
    assert_eq!(per_path("/hook"), 1, "one webhook");
    assert_eq!(
        seen.iter().find(|(p, _)| p == "/hook").unwrap().1,
        json!({"text": "digest ready"})
    );
    assert_eq!(per_path("/api"), 1);
    assert_eq!(
        seen.iter().find(|(p, _)| p == "/api").unwrap().1,
        json!({"n": 1})
    );
    assert_eq!(per_path("/flaky"), 3);
    assert_eq!(per_path("/fail"), 2);

    let (status, _, _, _, task_id, ..) = settled(&pool, task, &["running"]).await;
    assert_eq!(status, "running");
    let task_id = task_id.expect("linked to its background task");
    let client = pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT t.status::text, t.goal, t.max_steps, t.agent_id, j.queue, j.kind, j.payload, t.job_id = j.id \
             FROM circle.background_tasks t JOIN queue.jobs j ON j.kind = 'background_task.run' WHERE t.id = $1",
            &[&task_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "pending");
    assert_eq!(row.get::<_, String>(1), "Write the weekly digest");
    assert_eq!((row.get::<_, i32>(2), row.get::<_, i64>(3)), (7, agent));
    assert_eq!(
        (row.get::<_, String>(4), row.get::<_, String>(5)),
        ("agents".into(), "background_task.run".into())
    );
    assert_eq!(row.get::<_, Value>(6), json!({"task_id": task_id}));
    assert!(row.get::<_, bool>(7));
    // When the agents runtime finishes the task, the run finishes with it.
    client
        .execute(
            "UPDATE circle.background_tasks SET status = 'completed', final_result = 'digest written', \
             completed_at = now() WHERE id = $1",
            &[&task_id],
        )
        .await
        .unwrap();
    let (status, _, summary, ..) = settled(&pool, task, &["completed"]).await;
    assert_eq!(
        (status.as_str(), summary.as_deref()),
        ("completed", Some("digest written"))
    );

    let (status, retries, _, error, ..) = settled(&pool, broken, &["completed", "failed"]).await;
    assert_eq!((status.as_str(), retries), ("failed", 0));
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("Pipeline must have at least one node")),
        "{error:?}"
    );

    let (_, _, _, _, _, run_id, _) = settled(&pool, pipeline, &["running"]).await;
    let run_id = run_id.expect("linked to its pipeline run");
    // Started like an API run: a definition snapshot and its node rows.
    let nodes: i64 = client
        .query_one(
            "SELECT count(*) FROM circle.pipeline_node_runs WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nodes, 1);
    let row = client
        .query_one(
            "SELECT r.status, r.pipeline_id, r.trigger_data, j.queue, j.payload \
             FROM circle.pipeline_runs r JOIN queue.jobs j ON j.kind = 'pipeline_run.execute' WHERE r.id = $1",
            &[&run_id],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i64>(1)),
        ("pending".into(), pipeline_id)
    );
    assert_eq!(
        row.get::<_, Value>(2),
        json!({"pipeline_id": pipeline_id, "source": "weekly"})
    );
    assert_eq!(row.get::<_, String>(3), "pipelines");
    assert_eq!(row.get::<_, Value>(4), json!({"run_id": run_id}));

    // An event schedule, end to end: event → scheduler → executor → webhook.
    let on_event: i64 = client
        .query_one(
            "INSERT INTO circle.scheduled_actions (agent_id, name, goal, schedule_type, event_trigger, action_type, \
             action_config, retry_on_failure) VALUES ($1, 'on deploy', 'g', 'event', 'pipeline_run.completed', \
             'send_notification', $2, false) RETURNING id",
            &[&agent, &json!({"url": format!("{base}/deployed"), "payload": {"event": "deployed"},
                               "event_filter": {"pipeline_id": pipeline_id}})],
        )
        .await
        .unwrap()
        .get(0);
    gathering_events::publish_in(
        &client,
        &[
            gathering_events::NewEvent::new(
                "pipeline_run.completed",
                json!({"pipeline_id": pipeline_id, "run_id": run_id}),
            ),
            gathering_events::NewEvent::new(
                "pipeline_run.completed",
                json!({"pipeline_id": pipeline_id + 1}),
            ),
        ],
    )
    .await
    .unwrap();
    let (status, ..) = settled(&pool, on_event, &["completed", "failed"]).await;
    assert_eq!(status, "completed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = hits.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|(p, _)| p == "/deployed").count(),
        1,
        "only the matching event"
    );
}
