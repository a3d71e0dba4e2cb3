//! The whole stack as real processes: `gathering up`, concurrent starts, clean stops.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use gathering_testkit::{GatheringProcess, TestDb, free_port, http};
use nix::sys::signal::Signal;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_gathering"))
}

fn base_env(db: &TestDb) -> HashMap<String, String> {
    HashMap::from([
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("GATHERING_ENV".to_string(), "development".to_string()),
        ("RUST_LOG".to_string(), "warn".to_string()),
    ])
}

#[tokio::test]
async fn up_serves_every_health_endpoint_and_ctrl_c_stops_all_children() {
    let db = TestDb::new().await;
    let mut env = base_env(&db);
    let ports: HashMap<&str, u16> = [
        ("EDGE_ADDR", free_port()),
        ("AUTH_ADDR", free_port()),
        ("LLM_GATEWAY_ADDR", free_port()),
        ("LLM_GATEWAY_HTTP_ADDR", free_port()),
        ("EXECUTOR_ADMIN_ADDR", free_port()),
        ("SCHEDULER_ADMIN_ADDR", free_port()),
    ]
    .into();
    for (var, port) in &ports {
        env.insert(var.to_string(), format!("127.0.0.1:{port}"));
    }
    let up = GatheringProcess::spawn(exe(), &["up"], &env);

    let health_urls: Vec<String> = ports
        .iter()
        .filter(|(var, _)| **var != "LLM_GATEWAY_ADDR")
        .map(|(_, port)| format!("http://127.0.0.1:{port}/health"))
        .collect();
    for url in &health_urls {
        http::wait_ok(url, Duration::from_secs(60)).await;
    }
    let client = http::client();
    let edge = format!("http://127.0.0.1:{}", ports["EDGE_ADDR"]);
    let body: serde_json::Value = client
        .get(format!("{edge}/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "healthy");
    let root: serde_json::Value = client
        .get(&edge)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root["name"], "GatheRing API");

    // Ctrl-C: SIGINT to `up` (a terminal sends it to the whole group; `up` alone must suffice).
    let stopped_at = Instant::now();
    up.signal(Signal::SIGINT);
    let (code, stdout, _stderr) = tokio::time::timeout(Duration::from_secs(10), up.wait_output())
        .await
        .expect("up exits within 10 s");
    assert_eq!(code, Some(0), "up exit status; stdout: {stdout}");
    assert!(stopped_at.elapsed() < Duration::from_secs(10));
    assert!(
        stdout.contains("edge"),
        "up prints where each service listens: {stdout}"
    );
    for url in &health_urls {
        let gone = client
            .get(url)
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_err();
        assert!(gone, "{url} still answers after up stopped");
    }
}

#[tokio::test]
async fn two_edges_started_together_on_a_fresh_database_both_come_up_and_migrate_once() {
    let db = TestDb::empty().await;
    let pool = db.pool(1);
    let mut edges = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        let mut env = base_env(&db);
        env.insert("EDGE_ADDR".into(), format!("127.0.0.1:{port}"));
        edges.push(GatheringProcess::spawn(exe(), &["edge"], &env));
        urls.push(format!("http://127.0.0.1:{port}/health"));
    }
    for url in &urls {
        http::wait_ok(url, Duration::from_secs(60)).await;
    }
    let client = pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT version, count(*) FROM refinery_schema_history GROUP BY version",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        gathering_db::migrate::embedded_migrations().len()
    );
    assert!(
        rows.iter().all(|r| r.get::<_, i64>(1) == 1),
        "each migration applied once"
    );
    let schemas: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = ANY($1)",
            &[&vec![
                "agent",
                "circle",
                "project",
                "communication",
                "memory",
                "review",
                "audit",
                "auth",
                "queue",
                "events",
            ]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(schemas, 10);
}
