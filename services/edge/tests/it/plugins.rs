//! Plugins through the whole stack: a real MCP server (Python, the official `mcp` SDK,
//! installed by scripts/setup-test-python.sh) discovered, loaded and enabled by an admin, its
//! tool run through `POST /tools/execute` on two edges and by an agent in chat (fake OpenAI
//! behind a real gateway), its crash restarted, its disable stopping the server on every edge;
//! an HTTP plugin behind the outbound guard; declarative plugins (HTTP template, pipeline
//! call); a code plugin refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use gathering_testkit::fake_llm::{FakeProvider, Reply, Wire};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Api, Auth, Edge, eventually, start_auth, start_edge};

const PW: &str = "correct horse battery";

/// The Python with the MCP SDK (scripts/setup-test-python.sh).
pub fn python() -> PathBuf {
    let p = std::env::var("GATHERING_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.data/test-python/bin/python")
        });
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-test-python.sh",
        p.display()
    );
    p
}

/// A small MCP server written with the official Python SDK: `echo`, `pid`, and a tool that
/// answers more than the plugin's result limit.
const SERVER: &str = r#"
import os, sys
from mcp.server.fastmcp import FastMCP

mcp = FastMCP("echo")

@mcp.tool()
def echo(text: str, times: int = 1) -> str:
    """Repeats the text."""
    return " ".join([text] * times)

@mcp.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()

@mcp.tool()
def big() -> str:
    """A large answer."""
    return "x" * 200000

if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        mcp.settings.host = "127.0.0.1"
        mcp.settings.port = int(sys.argv[2])
        mcp.run(transport="streamable-http")
    else:
        mcp.run()
"#;

/// A plugin folder `root/name` with the server and a manifest.
pub fn write_plugin(root: &Path, name: &str, mcp: Value) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("server.py"), SERVER).unwrap();
    let manifest = json!({
        "id": name, "name": "Echo", "version": "1.2.0", "description": "Echoes text",
        "author": "tests", "license": "MIT", "tags": ["test"],
        "mcp": mcp, "permissions": ["read"],
        "limits": {"timeout_ms": 20000, "max_result_bytes": 65536, "max_concurrent_calls": 2},
    });
    std::fs::write(dir.join("gathering-plugin.json"), manifest.to_string()).unwrap();
    dir
}

fn stdio(py: &Path) -> Value {
    json!({"command": py.display().to_string(), "args": ["server.py"]})
}

fn vars(db: &TestDb, pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
    ]);
    for (k, val) in pairs {
        v.insert((*k).into(), (*val).into());
    }
    v
}

pub struct Stack {
    pub db: TestDb,
    pub fake: FakeProvider,
    pub auth: Auth,
    gateway_stop: Shutdown,
    pub edges: Vec<Edge>,
    pub root: PathBuf,
    pub admin: String,
    pub user: String,
    pub agent_id: i64,
}

impl Stack {
    pub fn api(&self, i: usize) -> Api {
        self.edges[i].api()
    }

    pub async fn stop(self) {
        for e in self.edges {
            e.stop().await;
        }
        self.auth.stop().await;
        self.gateway_stop.trigger();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Auth, a gateway on a fake OpenAI, edges (each with its own extra settings), an admin, a
/// user and an agent.
pub async fn stack(edge_settings: &[&[(&str, &str)]]) -> Stack {
    let db = TestDb::new().await;
    let root = std::env::temp_dir().join(format!("gt-plugins-{}", uuid_like()));
    std::fs::create_dir_all(&root).unwrap();
    let root = std::fs::canonicalize(root).unwrap();
    let fake = FakeProvider::start(Wire::OpenAi).await;
    let base = fake.base_url();
    let gw = gathering_llm_gateway::Config::from_vars(&vars(
        &db,
        &[
            ("LLM_GATEWAY_ADDR", "127.0.0.1:0"),
            ("LLM_GATEWAY_HTTP_ADDR", "127.0.0.1:0"),
            ("OPENAI_BASE_URL", base.as_str()),
            ("OPENAI_API_KEY", "sk-test-key"),
        ],
    ))
    .unwrap();
    let gateway_stop = Shutdown::new();
    let gateway = gathering_llm_gateway::start(gw, gateway_stop.clone())
        .await
        .unwrap();
    let gateway_url = format!("http://{}", gateway.grpc_addr);
    let auth = start_auth(&db, &[]).await;
    let dirs = root.display().to_string();
    let mut edges = Vec::new();
    for extra in edge_settings {
        let mut pairs = vec![
            ("LLM_GATEWAY_URL", gateway_url.as_str()),
            ("AGENT_DEFAULT_MODEL", "openai/gpt-4o"),
            ("AGENT_EMBEDDING_MODEL", "none"),
            ("GATHERING_PLUGIN_DIRS", dirs.as_str()),
            ("GATHERING_PLUGIN_RESTART_BASE_MS", "50"),
        ];
        pairs.extend_from_slice(extra);
        edges.push(start_edge(&db, &auth, &pairs).await);
    }
    let api = edges[0].api();
    let (user, _) = api.user("user@example.com", PW).await;
    api.user("admin@example.com", PW).await;
    let client = db.pool(1).get().await.unwrap();
    client
        .execute(
            "UPDATE auth.users SET role = 'admin' WHERE email = 'admin@example.com'",
            &[],
        )
        .await
        .unwrap();
    let admin = api.login("admin@example.com", PW).await.body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent_id: i64 = client
        .query_one(
            "INSERT INTO agent.agents (name, persona_id, model_id) VALUES ('Sophie', \
                 (SELECT id FROM agent.personas ORDER BY id LIMIT 1), \
                 (SELECT m.id FROM agent.models m JOIN agent.providers p ON p.id = m.provider_id \
                  WHERE p.name = 'openai' AND m.model_name = 'gpt-4o')) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    Stack {
        db,
        fake,
        auth,
        gateway_stop,
        edges,
        root,
        admin,
        user,
        agent_id,
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Whether a process is still there (a zombie counts as gone).
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

pub(crate) async fn exec(
    api: &Api,
    token: &str,
    tool: &str,
    input: Value,
) -> crate::support::Reply {
    api.post(
        "/tools/execute",
        Some(token),
        &json!({"tool": tool, "input": input}),
    )
    .await
}

/// The pid the server reports through its `pid` tool on this edge.
async fn server_pid(api: &Api, token: &str) -> i64 {
    let r = exec(api, token, "echo__pid", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);
    r.body["message"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_mcp_server_plugin_serves_every_edge_and_agents_restarts_and_stops() {
    let s = stack(&[&[], &[]]).await;
    let py = python();
    write_plugin(&s.root, "echo", stdio(&py));
    let (a, b) = (s.api(0), s.api(1));

    // Discovery: admin-only, and only inside the plugin folders.
    let body = json!({"directory": s.root.display().to_string()});
    assert_eq!(
        a.post("/plugins/discover", Some(&s.user), &body)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = a
        .post(
            "/plugins/discover",
            Some(&s.admin),
            &json!({"directory": "/etc"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = a
        .post(
            "/plugins/discover",
            Some(&s.admin),
            &json!({"directory": format!("{}/../", s.root.display())}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = a.post("/plugins/discover", Some(&s.admin), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["discovered"][0]["plugin_id"], "echo");
    assert_eq!(
        a.get("/plugins/available", Some(&s.user)).await.body,
        json!(["echo"])
    );
    let r = b.get("/plugins/echo", Some(&s.user)).await;
    assert_eq!(r.body["status"], "unloaded", "{}", r.body);
    assert_eq!(r.body["version"], "1.2.0");

    // Load (admin-only): the server is started and lists its tools; enable registers them.
    let load = json!({"plugin_id": "echo", "config": {"greeting": "hi"}});
    assert_eq!(
        a.post("/plugins/load", Some(&s.user), &load).await.status,
        StatusCode::FORBIDDEN
    );
    let r = a.post("/plugins/load", Some(&s.admin), &load).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert_eq!(
        a.get("/plugins/echo", Some(&s.user)).await.body["tools_count"],
        3
    );
    assert_eq!(
        a.post("/plugins/echo/enable", Some(&s.user), &json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let r = a
        .post("/plugins/echo/enable", Some(&s.admin), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let tools = a.get("/plugins/echo/tools", Some(&s.user)).await.body;
    let names: Vec<&str> = tools
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["echo__echo", "echo__pid", "echo__big"]);
    let stats = a.get("/plugins/stats", Some(&s.user)).await.body;
    assert_eq!(stats["enabled_plugins"], 1);
    assert_eq!(stats["total_tools_from_plugins"], 3);

    // The tool runs through the registry on both edges, validated like every tool.
    let r = exec(&a, &s.user, "echo__echo", json!({"text": "hi", "times": 2})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["success"], true, "{}", r.body);
    assert_eq!(r.body["message"], "hi hi");
    assert_eq!(r.body["skill_name"], "plugin:echo");
    assert!(
        eventually(10, || async {
            exec(&b, &s.user, "echo__echo", json!({"text": "b"}))
                .await
                .body["message"]
                == "b"
        })
        .await,
        "edge b serves the plugin"
    );
    let r = exec(&a, &s.user, "echo__echo", json!({"times": "x"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let locs: Vec<Value> = r.body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["loc"].clone())
        .collect();
    assert!(locs.contains(&json!(["body", "input", "text"])), "{locs:?}");
    assert!(
        locs.contains(&json!(["body", "input", "times"])),
        "{locs:?}"
    );
    // Limits: a result over the plugin's size limit is refused.
    let r = exec(&a, &s.user, "echo__big", json!({})).await;
    assert_eq!(r.body["success"], false, "{}", r.body);
    assert_eq!(r.body["error"], "too_large", "{}", r.body);

    // An agent with the plugin's skill calls its tool in chat; usage is counted.
    let path = format!("/tools/agents/{}/skills/plugin:echo", s.agent_id);
    let req = a
        .client
        .patch(format!("{}{path}", a.base))
        .bearer_auth(&s.user)
        .json(&json!({"is_enabled": true}));
    assert_eq!(a.send(req).await.status, StatusCode::OK);
    s.fake.push(Reply::tool_call(
        "echo__echo",
        json!({"text": "from the agent"}),
    ));
    s.fake.push(Reply::text("The plugin said: from the agent"));
    let r = a
        .post(
            &format!("/agents/{}/chat", s.agent_id),
            Some(&s.user),
            &json!({"message": "echo please"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["tool_results"][0]["success"], true, "{}", r.body);
    let requests = s.fake.requests();
    assert!(
        requests[0].body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "echo__echo")
    );
    let tool_msg = requests[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .cloned()
        .unwrap();
    assert!(
        tool_msg["content"]
            .as_str()
            .unwrap()
            .contains("from the agent"),
        "{tool_msg}"
    );
    let tools = a
        .get(&format!("/tools/agents/{}", s.agent_id), Some(&s.user))
        .await
        .body;
    let row = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["skill_name"] == "plugin:echo")
        .cloned()
        .unwrap();
    assert_eq!(row["usage_count"], 1, "{row}");

    // A crashed server is restarted (with back-off) and serves again.
    let pid = server_pid(&a, &s.user).await;
    let health = a.get("/plugins/echo/health", Some(&s.user)).await.body;
    assert_eq!(health["details"]["pid"], pid, "{health}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        eventually(10, || async {
            a.get("/plugins/echo/health", Some(&s.user)).await.body["details"]["restarts"].as_u64()
                >= Some(1)
        })
        .await,
        "the crash was noticed"
    );
    let again = server_pid(&a, &s.user).await;
    assert_ne!(again, pid);
    assert!(!alive(pid));
    let health = a.get("/plugins/echo/health", Some(&s.user)).await.body;
    assert!(
        health["details"]["restarts"].as_u64().unwrap() >= 1,
        "{health}"
    );
    let all = b.get("/plugins/health/all", Some(&s.user)).await.body;
    assert_eq!(all["echo"]["status"], "enabled", "{all}");

    // Disabling stops the server on every edge and removes the tools.
    let pid_b = server_pid(&b, &s.user).await;
    assert!(alive(again) && alive(pid_b));
    let r = a
        .post("/plugins/echo/disable", Some(&s.admin), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        eventually(10, || async { !alive(again) }).await,
        "edge a's server stopped"
    );
    assert!(
        eventually(10, || async { !alive(pid_b) }).await,
        "edge b's server stopped"
    );
    assert_eq!(
        exec(&a, &s.user, "echo__echo", json!({"text": "x"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        eventually(10, || async {
            exec(&b, &s.user, "echo__echo", json!({"text": "x"}))
                .await
                .status
                == StatusCode::NOT_FOUND
        })
        .await
    );
    assert_eq!(
        a.get("/plugins?status_filter=disabled", Some(&s.user))
            .await
            .body["total"],
        1
    );
    let r = a
        .post("/plugins/echo/unload", Some(&s.admin), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        a.get("/plugins?include_available=false", Some(&s.user))
            .await
            .body["total"],
        0
    );
    assert_eq!(
        a.get("/plugins/nope", Some(&s.user)).await.status,
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}
