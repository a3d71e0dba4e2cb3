//! Monitoring through real services: `/health/checks` green with everything up and red for the
//! part that stops (executor, scheduler, gateway, auth), `/health/system` figures, the
//! `/dashboard/*` read model, and `/ws/dashboard` with `/ws/stats` counting it.

use std::collections::HashMap;
use std::time::Duration;

use gathering_core::Shutdown;
use gathering_testkit::ws::{self, Next};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::agents_runtime::{Stack, stack};
use crate::support::{start_auth, start_edge};

const T: Duration = Duration::from_secs(10);

async fn checks(s: &Stack) -> Value {
    let r = s.api(0).get("/health/checks", Some(&s.token)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

fn check<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {body}"))
}

/// Polls `/health/checks` until check `name` has `status`.
async fn wait_check(s: &Stack, name: &str, status: &str) -> Value {
    for _ in 0..250 {
        let body = checks(s).await;
        if check(&body, name)["status"] == status {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!("{name} never became {status}: {}", checks(s).await);
}

async fn scheduler(s: &Stack) -> (Shutdown, gathering_scheduler::Started) {
    let vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), s.db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
        ("SCHEDULER_ADMIN_ADDR".into(), "127.0.0.1:0".into()),
    ]);
    let config = gathering_scheduler::Config::from_vars(&vars).unwrap();
    let stop = Shutdown::new();
    let started = gathering_scheduler::start(config, stop.clone())
        .await
        .unwrap();
    (stop, started)
}

#[tokio::test]
async fn health_checks_turn_red_when_a_service_stops() {
    let s = stack(1).await;
    let (executor_stop, executor) = s.executor().await;
    let (scheduler_stop, scheduler) = scheduler(&s).await;
    let body = checks(&s).await;
    for c in body["checks"].as_array().unwrap() {
        for field in [
            "name",
            "status",
            "message",
            "value",
            "latency_ms",
            "last_check",
        ] {
            assert!(c.get(field).is_some(), "{field} missing in {c}");
        }
    }
    for (name, status) in [
        ("API Server", "healthy"),
        ("Database", "healthy"),
        ("Auth Service", "healthy"),
        ("LLM Gateway", "healthy"),
        ("Executors", "healthy"),
        ("Schedulers", "healthy"),
        ("Job Queue", "healthy"),
        ("LLM Providers", "healthy"),
        ("Agents", "healthy"),
        ("Circles", "healthy"),
    ] {
        assert_eq!(check(&body, name)["status"], status, "{name}: {body}");
    }
    assert!(check(&body, "Disk Space").get("status").is_some());
    assert_eq!(check(&body, "Executors")["value"], 1);
    assert_eq!(check(&body, "Schedulers")["value"], 1);
    assert!(
        check(&body, "LLM Providers")["value"]
            .as_array()
            .unwrap()
            .contains(&json!("openai"))
    );
    assert_eq!(check(&body, "Circles")["value"], "0/0");

    // A job waiting ten minutes in a queue nobody serves turns the queue red.
    let client = s.db.pool(1).get().await.unwrap();
    client
        .execute("INSERT INTO queue.jobs (queue, kind, run_at) VALUES ('nobody', 'x', now() - interval '10 minutes')", &[])
        .await
        .unwrap();
    let body = checks(&s).await;
    let queue = check(&body, "Job Queue");
    assert_eq!(
        (&queue["status"], &queue["value"]["backlog"]),
        (&json!("critical"), &json!(1))
    );
    assert_eq!(body["overall_status"], "critical", "overall is the worst");
    client
        .execute("DELETE FROM queue.jobs WHERE queue = 'nobody'", &[])
        .await
        .unwrap();

    executor_stop.trigger();
    executor.wait().await.unwrap();
    let body = wait_check(&s, "Executors", "critical").await;
    assert_eq!(check(&body, "Executors")["value"], 0);
    assert_eq!(check(&body, "Schedulers")["status"], "healthy");
    scheduler_stop.trigger();
    scheduler.wait().await.unwrap();
    wait_check(&s, "Schedulers", "critical").await;
    s.gateway_stop.trigger();
    let body = wait_check(&s, "LLM Gateway", "critical").await;
    assert_eq!(check(&body, "Auth Service")["status"], "healthy");
    wait_check(&s, "LLM Providers", "warning").await;
    s.stop().await;
}

#[tokio::test]
async fn the_auth_check_turns_red_when_auth_stops_and_system_figures_are_real() {
    let db = gathering_testkit::TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let edge = start_edge(&db, &auth, &[]).await;
    let api = edge.api();
    let (token, _) = api.user("mon@example.com", "correct horse battery").await;
    let r = api.get("/health/system", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let sys = r.body;
    assert!(sys["cpu"]["count"].as_u64().unwrap() >= 1, "{sys}");
    assert!(sys["cpu"]["percent"].is_number());
    assert!(sys["memory"]["total_gb"].as_f64().unwrap() > 0.0);
    assert!(sys["memory"]["percent"].as_f64().unwrap() > 0.0);
    assert!(sys["disk"]["total_gb"].as_f64().unwrap() > 0.0, "{sys}");
    for k in ["1min", "5min", "15min"] {
        assert!(sys["load_average"][k].is_number(), "{k}");
    }
    assert!(sys["uptime_seconds"].as_u64().unwrap() > 0);
    assert_eq!(sys["process"]["pid"], std::process::id());
    assert_eq!(
        api.get("/health/system", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get("/health/checks", None).await.status,
        StatusCode::UNAUTHORIZED
    );

    let body = api.get("/health/checks", Some(&token)).await.body;
    assert_eq!(check(&body, "Auth Service")["status"], "healthy");
    assert_eq!(check(&body, "Agents")["status"], "warning", "no agent yet");
    auth.stop().await;
    let mut red = false;
    for _ in 0..250 {
        let body = api.get("/health/checks", Some(&token)).await.body;
        if check(&body, "Auth Service")["status"] == "critical" {
            assert_eq!(body["overall_status"], "critical");
            red = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(red, "the auth check never turned red");
    edge.stop().await;
}

#[tokio::test]
async fn dashboard_routes_serve_the_database() {
    let s = stack(1).await;
    let api = s.api(0);
    let get = |path: &'static str| {
        let api = api.clone();
        let token = s.token.clone();
        async move { api.get(path, Some(&token)).await }
    };
    let config = get("/dashboard/config").await.body;
    assert_eq!(
        (&config["demo_mode"], &config["features"]["goals"]),
        (&json!(false), &Value::Null)
    );
    assert_eq!(config["features"]["agents"], true);

    let client = s.db.pool(1).get().await.unwrap();
    let circle: i64 = client
        .query_one(
            "INSERT INTO circle.circles (name, status) VALUES ('core', 'running') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    client
        .execute("INSERT INTO circle.members (circle_id, agent_id, competencies) VALUES ($1, $2, '{rust}')", &[&circle, &s.agent_id])
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO circle.tasks (circle_id, title, status, assigned_agent_id) VALUES ($1, 'one', 'pending', $2), ($1, 'two', 'completed', $2)",
            &[&circle, &s.agent_id],
        )
        .await
        .unwrap();

    let stats = get("/dashboard/stats").await.body;
    assert_eq!(
        stats["agents"],
        json!({"total": 1, "active": 1, "busy": 0, "idle": 1})
    );
    assert_eq!(
        stats["circles"],
        json!({"total": 1, "active": 1, "total_tasks": 2})
    );
    assert!(
        stats["providers"]["total"].as_i64().unwrap() > 0
            && stats["models"]["total"].as_i64().unwrap() > 0
    );
    assert_eq!(stats["demo_mode"], false);

    let agents = get("/dashboard/agents").await.body;
    assert_eq!(
        (&agents["total"], &agents["agents"][0]["name"]),
        (&json!(1), &json!("Sophie"))
    );
    let r = api
        .get(&format!("/dashboard/agents/{}", s.agent_id), Some(&s.token))
        .await;
    assert_eq!(
        (&r.body["agent"]["name"], &r.body["agent"]["circle_count"]),
        (&json!("Sophie"), &json!(1))
    );
    let r = get("/dashboard/agents/999999").await;
    assert_eq!(
        (r.status, &r.body["detail"]),
        (StatusCode::NOT_FOUND, &json!("Agent 999999 not found"))
    );

    let providers = get("/dashboard/providers").await.body;
    let openai = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap();
    assert!(openai["model_count"].as_i64().unwrap() > 0);
    let pid = openai["id"].as_i64().unwrap();
    let r = api
        .get(&format!("/dashboard/providers/{pid}"), Some(&s.token))
        .await;
    assert_eq!(r.body["provider"]["name"], "openai");
    assert_eq!(
        get("/dashboard/providers/9999").await.status,
        StatusCode::NOT_FOUND
    );
    let models = api
        .get(
            &format!("/dashboard/models?provider_id={pid}"),
            Some(&s.token),
        )
        .await
        .body;
    assert_eq!(models["provider_id"], pid);
    let list = models["models"].as_array().unwrap();
    assert!(!list.is_empty() && list.iter().all(|m| m["provider_name"] == "openai"));
    let mid = list[0]["id"].as_i64().unwrap();
    let r = api
        .get(&format!("/dashboard/models/{mid}"), Some(&s.token))
        .await;
    assert_eq!(r.body["model"]["provider_name"], "openai");
    assert_eq!(
        get("/dashboard/models/9999").await.status,
        StatusCode::NOT_FOUND
    );

    let circles = get("/dashboard/circles?is_active=true").await.body;
    let c = &circles["circles"][0];
    assert_eq!(
        (&c["name"], &c["member_count"], &c["task_count"]),
        (&json!("core"), &json!(1), &json!(2))
    );
    assert_eq!(
        get("/dashboard/circles?is_active=false").await.body["total"],
        0
    );
    let r = api
        .get(&format!("/dashboard/circles/{circle}"), Some(&s.token))
        .await;
    assert_eq!(r.body["circle"]["id"], circle);
    let r = api
        .get(
            &format!("/dashboard/circles/{circle}/members"),
            Some(&s.token),
        )
        .await;
    assert_eq!(
        (
            &r.body["circle_id"],
            &r.body["total"],
            &r.body["members"][0]["agent_name"]
        ),
        (&json!(circle), &json!(1), &json!("Sophie"))
    );
    let r = api
        .get(
            &format!("/dashboard/circles/{circle}/tasks?status=pending"),
            Some(&s.token),
        )
        .await;
    assert_eq!(
        (
            &r.body["total"],
            &r.body["status_filter"],
            &r.body["tasks"][0]["assigned_agent_name"]
        ),
        (&json!(1), &json!("pending"), &json!("Sophie"))
    );
    let r = api
        .get(
            &format!("/dashboard/circles/{circle}/tasks?status=bogus"),
            Some(&s.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for path in [
        "/dashboard/circles/9999",
        "/dashboard/circles/9999/members",
        "/dashboard/circles/9999/tasks",
    ] {
        let r = get(path).await;
        assert_eq!(
            (r.status, &r.body["detail"]),
            (StatusCode::NOT_FOUND, &json!("Circle 9999 not found")),
            "{path}"
        );
    }
    assert_eq!(
        api.get("/dashboard/stats", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

#[tokio::test]
async fn ws_dashboard_broadcasts_events_and_counts_in_stats() {
    let s = stack(1).await;
    let base = s.edges[0].base.replacen("http://", "ws://", 1);
    let mut refused = ws::connect(&format!("{base}/ws/dashboard?client_id=x")).await;
    match ws::next(&mut refused, T).await {
        Next::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1008),
        _ => panic!("expected a 1008 close without a token"),
    }
    let mut socket = ws::connect(&format!(
        "{base}/ws/dashboard?client_id=dash-1&token={}",
        s.token
    ))
    .await;
    let hello = ws::next_json(&mut socket, T).await;
    assert_eq!(
        (&hello["type"], &hello["data"]["client_id"]),
        (&json!("connection.established"), &json!("dash-1"))
    );
    ws::send_json(&mut socket, &json!({"type": "ping", "timestamp": "t-1"})).await;
    assert_eq!(
        ws::next_json(&mut socket, T).await,
        json!({"type": "pong", "timestamp": "t-1"})
    );

    let stats = s.api(0).get("/ws/stats", Some(&s.token)).await.body;
    assert_eq!(stats["active_connections"], 1);
    assert_eq!(stats["clients"][0]["client_id"], "dash-1");
    assert_eq!(stats["clients"][0]["messages_received"], 1);

    let id = crate::goals::goal(&s, "Watched", json!({})).await;
    let frame = loop {
        let f = ws::next_json(&mut socket, T).await;
        if f["type"] == "goal.created" {
            break f;
        }
    };
    assert_eq!(
        (&frame["data"]["goal_id"], &frame["source_agent_id"]),
        (&json!(id), &json!(s.agent_id))
    );
    assert!(frame["event_id"].as_i64().unwrap() > 0 && frame["timestamp"].is_string());
    for k in ["circle_id", "project_id"] {
        assert!(frame.get(k).is_some(), "{k}");
    }
    drop(socket);
    s.stop().await;
}
