//! Pipelines across real processes: a run created through a real edge, its executor killed
//! with SIGKILL in the middle of a node, another executor taking the run over and completing
//! it, without running any completed node again (calls counted at a local receiver).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use gathering_testkit::{GatheringProcess, TestDb, free_port, http};
use serde_json::{Value, json};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_gathering"))
}

/// (path, idempotency key) of every request, in arrival order.
type Calls = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Records each call; the first call to `/slow` never answers (the node in flight when its
/// executor is killed), later ones answer at once.
async fn receive(State(calls): State<Calls>, uri: Uri, headers: HeaderMap) -> &'static str {
    let path = uri.path().to_owned();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let first_slow = {
        let mut c = calls.lock().unwrap();
        c.push((path.clone(), key));
        path == "/slow" && c.iter().filter(|(p, _)| p == "/slow").count() == 1
    };
    if first_slow {
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    "{\"ok\": true}"
}

fn count(calls: &Calls, path: &str) -> usize {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == path)
        .count()
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

fn executor(db: &TestDb) -> GatheringProcess {
    let port = free_port();
    GatheringProcess::spawn(
        exe(),
        &["executor"],
        &env(
            db,
            &[
                ("EXECUTOR_ADMIN_ADDR", format!("127.0.0.1:{port}")),
                ("EXECUTOR_QUEUES", "pipelines:4".into()),
                ("EXECUTOR_LEASE_SECONDS", "2".into()),
                ("GATHERING_HTTP_ALLOWLIST", "127.0.0.1".into()),
                ("LLM_GATEWAY_URL", "http://127.0.0.1:9".into()),
                ("AGENT_EMBEDDING_MODEL", "none".into()),
            ],
        ),
    )
}

#[tokio::test]
async fn heavy_executor_killed_mid_run_another_completes_it_without_rerunning_completed_nodes() {
    let db = TestDb::new().await;
    let calls: Calls = Arc::default();
    let app = Router::new().fallback(receive).with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let edge_port = free_port();
    let _edge = GatheringProcess::spawn(
        exe(),
        &["edge"],
        &env(
            &db,
            &[
                ("EDGE_ADDR", format!("127.0.0.1:{edge_port}")),
                ("DISABLE_AUTH", "true".into()),
                ("AUTH_URL", "http://127.0.0.1:9".into()),
            ],
        ),
    );
    let edge = format!("http://127.0.0.1:{edge_port}");
    http::wait_ok(&format!("{edge}/health/ready"), Duration::from_secs(60)).await;
    let mut first = executor(&db);

    let client = http::client();
    let post = |id: &str, path: &str| {
        json!({"id": id, "type": "action", "name": id,
               "config": {"action": "call_api", "tool_name": "http_post", "url": format!("{hook}{path}"), "json": {"node": id}}})
    };
    let created: Value = client
        .post(format!("{edge}/pipelines"))
        .json(&json!({
            "name": "crash test", "status": "active",
            "nodes": [
                {"id": "t", "type": "trigger", "name": "Start"},
                post("a", "/a"),
                post("d", "/d"),
                post("b", "/slow"),
                post("c", "/c"),
            ],
            "edges": [
                {"id": "e1", "from": "t", "to": "a"},
                {"id": "e2", "from": "t", "to": "d"},
                {"id": "e3", "from": "a", "to": "b"},
                {"id": "e4", "from": "b", "to": "c"},
            ],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = created["id"].as_i64().expect("pipeline created");
    let run: Value = client
        .post(format!("{edge}/pipelines/{pid}/run"))
        .json(&json!({"trigger_data": {"k": 1}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "pending");
    let run_id = run["id"].as_i64().unwrap();

    // The first executor is in the middle of node b: kill it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count(&calls, "/slow") == 0 {
        assert!(std::time::Instant::now() < deadline, "node b never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9();
    let _ = first.child_mut().wait().await;
    assert_eq!((count(&calls, "/a"), count(&calls, "/d")), (1, 1));

    // Another executor takes the run over once the dead one's lease expires.
    let _second = executor(&db);
    let run_path = format!("{edge}/pipelines/{pid}/runs/{run_id}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let run = loop {
        let run: Value = client
            .get(&run_path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if run["status"] != "running" && run["status"] != "pending" {
            break run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run not completed: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(run["status"], "completed", "{run}");

    // Completed nodes ran once; the node that was in flight ran again with the same
    // idempotency key (the same attempt), so its target could tell.
    assert_eq!(
        count(&calls, "/a"),
        1,
        "a completed before the crash: not re-run"
    );
    assert_eq!(
        count(&calls, "/d"),
        1,
        "d completed before the crash: not re-run"
    );
    assert_eq!(count(&calls, "/c"), 1);
    let slow_keys: Vec<Option<String>> = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/slow")
        .map(|(_, k)| k.clone())
        .collect();
    let key = format!("pipeline-run-{run_id}-node-b-attempt-1");
    assert_eq!(slow_keys, vec![Some(key.clone()), Some(key)]);
    let nodes: Value = client
        .get(format!("{run_path}/nodes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for n in nodes["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "completed", "{n}");
        assert_eq!(n["retry_count"], 0, "{n}");
    }
    assert_eq!(run["logs"].as_array().unwrap().len(), 5);
}
