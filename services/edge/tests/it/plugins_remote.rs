//! Plugins beyond local MCP servers, through a real edge: an HTTP (streamable) MCP plugin
//! behind the outbound guard, declarative plugins (HTTP template, pipeline call), and code
//! plugins refused.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::plugins::{exec, python, stack, write_plugin};
use crate::support::eventually;

/// A free local port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn an_http_plugin_goes_through_the_outbound_guard() {
    let s = stack(&[&[], &[("GATHERING_HTTP_ALLOWLIST", "127.0.0.1")]]).await;
    let py = python();
    let port = free_port();
    let dir = write_plugin(
        &s.root,
        "remote",
        json!({"url": format!("http://127.0.0.1:{port}/mcp")}),
    );
    let mut server = tokio::process::Command::new(&py)
        .args(["server.py", "http", &port.to_string()])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    assert!(
        eventually(20, || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await
    );
    let (a, b) = (s.api(0), s.api(1));
    let r = a
        .post(
            "/plugins/discover",
            Some(&s.admin),
            &json!({"directory": "remote"}),
        )
        .await;
    assert_eq!(r.body["total"], 1, "{}", r.body);

    // Without an allow-list entry, a private address is refused.
    let r = a
        .post(
            "/plugins/load",
            Some(&s.admin),
            &json!({"plugin_id": "remote"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("127.0.0.1"),
        "{}",
        r.body
    );
    let info = a.get("/plugins/remote", Some(&s.user)).await.body;
    assert_eq!(info["status"], "error");

    // The edge whose operator allowed 127.0.0.1 reaches it.
    let r = b
        .post(
            "/plugins/load",
            Some(&s.admin),
            &json!({"plugin_id": "remote"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    b.post("/plugins/remote/enable", Some(&s.admin), &json!({}))
        .await;
    let r = exec(&b, &s.user, "remote__echo", json!({"text": "over http"})).await;
    assert_eq!(r.body["message"], "over http", "{}", r.body);
    // The guarded edge has the tool too, but its calls are refused by the guard.
    let r = exec(&a, &s.user, "remote__echo", json!({"text": "x"})).await;
    assert_eq!(r.body["success"], false, "{}", r.body);
    let _ = server.kill().await;
    s.stop().await;
}

/// A one-route HTTP server answering `{"path": <request path>}`.
async fn echo_http() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let body = json!({"path": path}).to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn declarative_plugins_run_and_code_plugins_are_refused() {
    let s = stack(&[&[("GATHERING_HTTP_ALLOWLIST", "127.0.0.1")]]).await;
    let a = s.api(0);

    // Code is refused: MCP servers are the way.
    let code = json!({"plugin_id": "py", "name": "Py", "description": "d", "version": "1", "author": "x",
        "tools": [{"name": "run", "description": "runs", "category": "custom", "required_competencies": [],
                   "parameters": {}, "returns": {}, "code": "import os; os.system('id')"}],
        "competencies": []});
    assert_eq!(
        a.post("/plugins/dynamic", Some(&s.user), &code)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = a.post("/plugins/dynamic", Some(&s.admin), &code).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "tools", "0", "code"])
    );
    assert!(
        r.body["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("MCP server"),
        "{}",
        r.body
    );
    assert_eq!(a.get("/plugins", Some(&s.user)).await.body["total"], 0);

    // An HTTP call template through the guard.
    let port = echo_http().await;
    let web = json!({"plugin_id": "web", "name": "Web", "description": "items", "version": "1.0.0", "author": "x",
        "tools": [{"name": "item", "description": "an item", "category": "api",
                   "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
                   "http": {"method": "GET", "url": format!("http://127.0.0.1:{port}/items/{{{{id}}}}")}}],
        "competencies": ["lookup"]});
    let r = a.post("/plugins/dynamic", Some(&s.admin), &web).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "loaded");
    assert_eq!(r.body["competencies_count"], 1);
    a.post("/plugins/web/enable", Some(&s.admin), &json!({}))
        .await;
    let r = exec(&a, &s.user, "web__item", json!({"id": "a/b"})).await;
    assert_eq!(r.body["success"], true, "{}", r.body);
    assert_eq!(r.body["data"]["body"]["path"], "/items/a%2Fb");
    assert_eq!(
        exec(&a, &s.user, "web__item", json!({})).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // A pipeline call: the pipeline must exist; a call starts a run.
    let mut bad = web.clone();
    bad["plugin_id"] = json!("flow");
    bad["tools"] = json!([{"name": "go", "description": "runs the flow", "pipeline": {"pipeline_id": 999999}}]);
    assert_eq!(
        a.post("/plugins/dynamic", Some(&s.admin), &bad)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let p = a
        .post(
            "/pipelines",
            Some(&s.admin),
            &json!({"name": "flow", "status": "active",
        "nodes": [{"id": "t", "type": "trigger", "name": "T", "config": {}}], "edges": []}),
        )
        .await;
    assert!(p.status.is_success(), "{}", p.body);
    let pid = p.body["id"].as_i64().unwrap();
    bad["tools"][0]["pipeline"]["pipeline_id"] = json!(pid);
    let r = a.post("/plugins/dynamic", Some(&s.admin), &bad).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    a.post("/plugins/flow/enable", Some(&s.admin), &json!({}))
        .await;
    let r = exec(&a, &s.user, "flow__go", json!({"x": 1})).await;
    assert_eq!(r.body["success"], true, "{}", r.body);
    let runs: i64 =
        s.db.pool(1)
            .get()
            .await
            .unwrap()
            .query_one(
                "SELECT count(*) FROM circle.pipeline_runs WHERE pipeline_id = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(runs, 1);

    // Save writes the manifest inside a plugin folder only; it can be discovered again.
    let r = a
        .post(
            "/plugins/web/save",
            Some(&s.admin),
            &json!({"output_path": "/tmp/elsewhere"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = a
        .post(
            "/plugins/web/save",
            Some(&s.admin),
            &json!({"output_path": "saved/web"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let saved: Value = serde_json::from_slice(
        &std::fs::read(s.root.join("saved/web/gathering-plugin.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["id"], "web");
    assert_eq!(saved["tools"][0]["http"]["method"], "GET");
    s.stop().await;
}
