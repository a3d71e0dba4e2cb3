//! Every scheduled action kind (`run_task`, `execute_pipeline`, `send_notification`,
//! `call_api`, with retries and failures) fired by a real scheduler and dispatched by a real
//! executor, against a local HTTP receiver that fails on demand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::routing::any;
use gathering_testkit::TestDb;
use serde_json::{Value, json};

use crate::scheduler::{Service, agent};

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
