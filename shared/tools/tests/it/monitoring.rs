//! The monitoring skill: host and process figures of this machine, and uptime checks through
//! the outbound guard against a real local HTTP server.

use serde_json::json;

use crate::helpers::{Receiver, TempDir, ctx, toolbox};

#[tokio::test]
async fn host_and_process_figures() {
    let dir = TempDir::new();
    let tb = toolbox("");
    let r = tb
        .execute("monitor_system", json!({}), &ctx(Some(&dir)))
        .await;
    assert!(r.success, "{r:?}");
    assert!(r.data["cpu"]["count"].as_u64().unwrap() >= 1);
    assert!(r.data["memory"]["total_mb"].as_f64().unwrap() > 0.0);
    assert!(r.data["disk"]["total_mb"].as_f64().unwrap() > 0.0, "{r:?}");
    assert!(r.data["uptime_seconds"].as_u64().unwrap() > 0);

    // This test binary is one of the processes.
    let me = std::env::current_exe().unwrap();
    let name: String = me
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .take(15)
        .collect();
    let r = tb
        .execute(
            "monitor_processes",
            json!({"sort_by": "memory", "name": name, "limit": 5}),
            &ctx(None),
        )
        .await;
    assert!(r.success, "{r:?}");
    let pids: Vec<u64> = r.data["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.contains(&u64::from(std::process::id())), "{r:?}");
    assert!(r.data["processes"][0]["memory_mb"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn http_checks_go_through_the_guard() {
    let server = Receiver::start().await;
    // Loopback is refused unless allow-listed.
    let r = toolbox("")
        .execute(
            "monitor_http_check",
            json!({"url": server.url("/page")}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("refused"), "{r:?}");
    assert!(server.seen().is_empty());

    let tb = toolbox("127.0.0.1");
    let r = tb
        .execute(
            "monitor_http_check",
            json!({"url": server.url("/page"), "contains": "Main heading"}),
            &ctx(None),
        )
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        (
            r.data["up"].as_bool(),
            r.data["status"].as_u64(),
            r.data["reason"].as_str()
        ),
        (Some(true), Some(200), Some("ok"))
    );
    let r = tb
        .execute(
            "monitor_http_check",
            json!({"url": server.url("/status/503")}),
            &ctx(None),
        )
        .await;
    assert_eq!(
        (r.data["up"].as_bool(), r.data["status"].as_u64()),
        (Some(false), Some(503)),
        "{r:?}"
    );
    let r = tb
        .execute(
            "monitor_http_check",
            json!({"url": server.url("/status/404"), "expected_status": 404}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.data["up"], true, "{r:?}");
    let r = tb
        .execute(
            "monitor_http_check",
            json!({"url": server.url("/page"), "contains": "absent text"}),
            &ctx(None),
        )
        .await;
    assert_eq!(
        (r.data["up"].as_bool(), r.data["reason"].as_str()),
        (
            Some(false),
            Some("the answer does not contain the expected text")
        )
    );
    let r = tb
        .execute(
            "monitor_http_check",
            json!({"url": server.url("/slow?ms=3000"), "timeout_ms": 200}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.data["up"], false, "{r:?}");
    assert!(r.data["status"].is_null());
    let r = tb
        .execute(
            "monitor_http_check",
            json!({"url": "ftp://127.0.0.1/x"}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
}
