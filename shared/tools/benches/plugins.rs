//! What calling a tool through an MCP plugin costs over a direct registry call: the same
//! `echo` tool as a native registry tool, as a plugin tool (registry → this process's MCP
//! session → a stdio server written with the official Python SDK → back), and as a bare MCP
//! session call (no registry), sequentially and with 4 concurrent callers.
//!
//! Needs the Python MCP SDK (`scripts/setup-test-python.sh`, or `GATHERING_TEST_PYTHON`).
//! `cargo bench -p gathering-tools --bench plugins` prints a table.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gathering_core::backoff::Backoff;
use gathering_tools::net::NetGuard;
use gathering_tools::plugins::manifest::{Limits, McpSpec};
use gathering_tools::plugins::session::{Launch, Session};
use gathering_tools::{
    CallContext, Category, Grants, Registry, ToolDefinition, ToolError, ToolOutput,
};
use serde_json::json;

const SERVER: &str = r#"
from mcp.server.fastmcp import FastMCP
mcp = FastMCP("bench")

@mcp.tool()
def echo(text: str) -> str:
    """Echo."""
    return text

mcp.run()
"#;

fn python() -> PathBuf {
    std::env::var("GATHERING_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.data/test-python/bin/python")
        })
}

struct Figures {
    mean_us: f64,
    p50_us: f64,
    p95_us: f64,
}

async fn measure<F, Fut>(n: usize, mut f: F) -> Figures
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Figures {
        mean_us: times.iter().sum::<f64>() / n as f64,
        p50_us: times[n / 2],
        p95_us: times[n * 95 / 100],
    }
}

fn row(name: &str, f: &Figures) {
    println!(
        "| {name} | {:.1} µs | {:.1} µs | {:.1} µs |",
        f.mean_us, f.p50_us, f.p95_us
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let py = python();
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup-test-python.sh",
        py.display()
    );
    let dir = std::env::temp_dir().join(format!("gt-bench-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("server.py"), SERVER).expect("server");
    let launch = Launch {
        plugin_id: "bench".into(),
        spec: McpSpec::Stdio {
            command: py.display().to_string(),
            args: vec!["server.py".into()],
            env: Default::default(),
        },
        dir: Some(dir.clone()),
        config: json!({}),
        limits: Limits {
            max_concurrent_calls: 4,
            ..Limits::default()
        },
        guard: NetGuard::strict(),
    };
    let started = Instant::now();
    let (session, _tools) = Session::connect(launch, Backoff::default())
        .await
        .expect("connect");
    let connect_ms = started.elapsed().as_secs_f64() * 1e3;

    let reg = Registry::new();
    let schema =
        json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]});
    reg.register(
        ToolDefinition::new("native_echo", "bench", Category::Utility, "echo")
            .schema(schema.clone()),
        |_ctx: CallContext, input: serde_json::Value| async move {
            let text = input["text"].as_str().unwrap_or_default().to_owned();
            Ok::<_, ToolError>(ToolOutput::ok(text, input))
        },
    )
    .expect("register");
    let s = session.clone();
    reg.register(
        ToolDefinition::new("bench__echo", "plugin:bench", Category::Custom, "echo")
            .schema(schema)
            .plugin("bench"),
        move |_ctx: CallContext, input: serde_json::Value| {
            let s = s.clone();
            async move {
                let r = s.call("echo", input).await?;
                Ok(ToolOutput::ok(
                    format!("{} block(s)", r.content.len()),
                    json!(null),
                ))
            }
        },
    )
    .expect("register");
    let reg = Arc::new(reg);
    let ctx = CallContext::new(Grants::all()).with_timeout(Some(Duration::from_secs(10)));
    let input = json!({"text": "hello plugin"});

    // Warm-up.
    for _ in 0..50 {
        reg.call("bench__echo", input.clone(), &ctx)
            .await
            .expect("warm-up");
    }
    let native = measure(5000, || async {
        reg.call("native_echo", input.clone(), &ctx)
            .await
            .expect("native");
    })
    .await;
    let plugin = measure(500, || async {
        reg.call("bench__echo", input.clone(), &ctx)
            .await
            .expect("plugin");
    })
    .await;
    let bare = measure(500, || async {
        session.call("echo", input.clone()).await.expect("bare");
    })
    .await;
    let total = 800;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let reg = reg.clone();
        let ctx = ctx.clone();
        let input = input.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..total / 4 {
                reg.call("bench__echo", input.clone(), &ctx)
                    .await
                    .expect("concurrent");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let rate = total as f64 / t.elapsed().as_secs_f64();

    println!("| call | mean | p50 | p95 |\n|---|---|---|---|");
    row("native registry tool (5 000 calls)", &native);
    row(
        "plugin tool: registry → MCP stdio → Python server (500 calls)",
        &plugin,
    );
    row("bare MCP session call, no registry (500 calls)", &bare);
    println!();
    println!(
        "overhead of the MCP plugin path over a direct registry call: {:.1} µs per call (p50)",
        plugin.p50_us - native.p50_us
    );
    println!(
        "registry share of a plugin call: {:.1} µs (p50)",
        plugin.p50_us - bare.p50_us
    );
    println!("4 concurrent callers, one server (max_concurrent_calls 4): {rate:.0} calls/s");
    println!("first connection (spawn + initialize + tools/list): {connect_ms:.0} ms");
    session.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
