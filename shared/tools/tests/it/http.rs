//! The http skill against a real local server (allow-listed): methods, JSON, auth, limits,
//! header rules, parse_json and build_url.

use serde_json::json;

use crate::helpers::{Receiver, ctx, toolbox};

#[tokio::test]
async fn methods_bodies_and_params() {
    let rx = Receiver::start().await;
    let tb = toolbox("127.0.0.1");
    let r = tb
        .execute(
            "http_get",
            json!({"url": rx.url("/json"), "params": {"q": "a b", "n": 2}}),
            &ctx(None),
        )
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(r.data["body"]["items"], json!([1, 2]));
    let r = tb
        .execute(
            "http_post",
            json!({"url": rx.url("/echo"), "json": {"k": [1, "v"]}}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.data["body"], json!({"k": [1, "v"]}), "{r:?}");
    let r = tb.execute("http_put", json!({"url": rx.url("/echo"), "body": "plain", "headers": {"Content-Type": "text/plain"}}), &ctx(None)).await;
    assert!(r.success);
    let r = tb
        .execute(
            "http_delete",
            json!({"url": rx.url("/thing/1")}),
            &ctx(None),
        )
        .await;
    assert!(r.success);
    let r = tb
        .execute(
            "http_request",
            json!({"url": rx.url("/status/404"), "method": "PATCH"}),
            &ctx(None),
        )
        .await;
    assert!(!r.success);
    assert_eq!(
        (r.data["status"].as_u64(), r.error.as_deref()),
        (Some(404), Some("execution_failed"))
    );
    let seen = rx.seen();
    let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["GET", "POST", "PUT", "DELETE", "PATCH"]);
    assert_eq!(seen[2].body, b"plain");
    assert_eq!(seen[2].headers["content-type"], "text/plain");
}

#[tokio::test]
async fn api_call_joins_the_url_and_authenticates() {
    let rx = Receiver::start().await;
    let tb = toolbox("127.0.0.1");
    let base = rx.url("/api/v1");
    let r = tb
        .execute("api_call", json!({"base_url": base, "endpoint": "/users", "method": "POST", "json": {"name": "x"}, "auth": {"type": "bearer", "token": "tok"}}), &ctx(None))
        .await;
    assert!(r.success, "{r:?}");
    let r = tb.execute("api_call", json!({"base_url": base, "endpoint": "items", "auth": {"type": "basic", "username": "user", "password": "pass"}}), &ctx(None)).await;
    assert!(r.success);
    let r = tb.execute("api_call", json!({"base_url": base, "auth": {"type": "api_key", "token": "k1", "header": "X-Key"}}), &ctx(None)).await;
    assert!(r.success);
    let seen = rx.seen();
    assert_eq!(seen[0].path, "/api/v1/users");
    assert_eq!(seen[0].headers["authorization"], "Bearer tok");
    assert_eq!(seen[0].json(), json!({"name": "x"}));
    assert_eq!(seen[1].headers["authorization"], "Basic dXNlcjpwYXNz");
    assert_eq!(seen[2].headers["x-key"], "k1");
    let r = tb
        .execute(
            "api_call",
            json!({"base_url": base, "endpoint": "//evil.example/x"}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
}

#[tokio::test]
async fn size_time_and_header_limits() {
    let rx = Receiver::start().await;
    let tb = toolbox("127.0.0.1");
    let r = tb
        .execute(
            "http_get",
            json!({"url": rx.url("/big?n=100000"), "max_bytes": 1000}),
            &ctx(None),
        )
        .await;
    assert_eq!(
        (
            r.data["truncated"].as_bool(),
            r.data["body"].as_str().map(str::len)
        ),
        (Some(true), Some(1000)),
        "{r:?}"
    );
    let started = std::time::Instant::now();
    let r = tb
        .execute(
            "http_get",
            json!({"url": rx.url("/slow?ms=5000"), "timeout_seconds": 1}),
            &ctx(None),
        )
        .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(r.error.as_deref(), Some("execution_failed"));
    assert!(r.message.contains("timed out"), "{r:?}");
    let r = tb
        .execute(
            "http_get",
            json!({"url": rx.url("/x"), "headers": {"Host": "evil.example"}}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
    let r = tb
        .execute(
            "http_post",
            json!({"url": rx.url("/x"), "body": "x".repeat(2 * 1024 * 1024)}),
            &ctx(None),
        )
        .await;
    assert_eq!(
        r.error.as_deref(),
        Some("validation_error"),
        "over the body limit"
    );
    let no_network = gathering_tools::CallContext::new(gathering_tools::Grants::of(&[
        gathering_tools::Permission::Read,
    ]));
    let r = tb
        .execute("http_get", json!({"url": rx.url("/json")}), &no_network)
        .await;
    assert_eq!(r.error.as_deref(), Some("permission_denied"));
}

#[tokio::test]
async fn parse_json_and_build_url() {
    let tb = toolbox("");
    let r = tb
        .execute(
            "parse_json",
            json!({"text": "{\"a\": {\"b\": [10, {\"c\": \"x\"}]}}", "path": "a.b[1].c"}),
            &ctx(None),
        )
        .await;
    assert_eq!(
        (r.data["value"].as_str(), r.data["type"].as_str()),
        (Some("x"), Some("string"))
    );
    let r = tb
        .execute("parse_json", json!({"text": "{bad"}), &ctx(None))
        .await;
    assert_eq!(r.error.as_deref(), Some("invalid_input"));
    let r = tb
        .execute(
            "parse_json",
            json!({"text": "[1]", "path": "[3]"}),
            &ctx(None),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("not_found"));
    let r = tb.execute("build_url", json!({"base": "https://api.example.com/v2/", "path": "search", "params": {"q": "a&b", "page": 2}}), &ctx(None)).await;
    assert_eq!(
        r.data["url"],
        "https://api.example.com/v2/search?page=2&q=a%26b"
    );
}
