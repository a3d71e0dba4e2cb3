//! Per-call costs of the registry's checks, without I/O: schema validation (valid and invalid
//! input), a full registry call of a no-op tool (validation + permissions + timeout wrapper),
//! path confinement, the shell's blocked-pattern scan and the SSRF guard's URL check.
//!
//! `cargo bench -p gathering-tools --bench tools` prints a table (median of 5 runs each).

use std::hint::black_box;
use std::time::Instant;

use gathering_tools::net::NetGuard;
use gathering_tools::skills::shell::{Scope, blocked};
use gathering_tools::validate::Schema;
use gathering_tools::{
    CallContext, Category, Grants, Permission, ProjectRoot, Registry, ToolDefinition, ToolOutput,
};
use serde_json::{Value, json};

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "path": {"type": "string", "minLength": 1, "maxLength": 4096},
            "content": {"type": "string", "maxLength": 10485760},
            "mode": {"type": "string", "enum": ["overwrite", "append", "create"]},
            "create_dirs": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
        },
        "required": ["path", "content"],
        "additionalProperties": false,
    })
}

/// Median nanoseconds per iteration over 5 runs of `n` iterations.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    runs.sort_by(|a, b| a.total_cmp(b));
    runs[2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let compiled = Schema::compile(&schema()).expect("schema");
    let valid = json!({"path": "src/lib.rs", "content": "fn main() {}\n".repeat(20), "mode": "overwrite", "tags": ["a", "b"]});
    let invalid = json!({"path": 5, "mode": "x", "extra": 1, "tags": ["A1"]});

    let reg = Registry::new();
    reg.register(
        ToolDefinition::new("noop", "bench", Category::Utility, "does nothing")
            .schema(schema())
            .permissions(&[Permission::Write]),
        |_c: CallContext, _i: Value| async move { Ok(ToolOutput::ok("", Value::Null)) },
    )
    .expect("register");
    let ctx = CallContext::new(Grants::all());

    let dir = std::env::temp_dir().join(format!("gt-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).expect("dir");
    std::fs::write(dir.join("src/lib.rs"), "x").expect("file");
    let root = ProjectRoot::new(&dir).expect("root");
    let guard = NetGuard::strict();
    let url = url::Url::parse("https://api.example.com/v1/items?q=1").expect("url");
    let private = url::Url::parse("http://10.1.2.3/").expect("url");

    let rows: Vec<(&str, f64)> = vec![
        (
            "schema validation, valid input",
            time(20_000, || {
                assert!(black_box(compiled.violations(black_box(&valid))).is_empty())
            }),
        ),
        (
            "schema validation, invalid input (5 violations)",
            time(20_000, || {
                assert!(!black_box(compiled.violations(black_box(&invalid))).is_empty())
            }),
        ),
        (
            "registry call of a no-op tool (all checks)",
            time(20_000, || {
                rt.block_on(async {
                    black_box(reg.call("noop", valid.clone(), &ctx).await).expect("ok")
                });
            }),
        ),
        (
            "  of which: cloning the input",
            time(20_000, || drop(black_box(valid.clone()))),
        ),
        (
            "path confinement, existing file",
            time(20_000, || {
                drop(black_box(root.resolve_sync("src/lib.rs")).expect("ok"))
            }),
        ),
        (
            "path confinement, new file",
            time(20_000, || {
                drop(black_box(root.resolve_sync("src/new/deep/file.rs")).expect("ok"))
            }),
        ),
        (
            "path refusal, %2e%2e escape",
            time(20_000, || {
                assert!(
                    root.resolve_sync(black_box("%2e%2e/%2e%2e/etc/passwd"))
                        .is_err()
                )
            }),
        ),
        (
            "shell blocked-pattern scan, allowed command",
            time(20_000, || {
                assert!(
                    blocked(
                        black_box("cargo test -p gathering-tools -- --nocapture"),
                        Scope::ShellOnly
                    )
                    .is_none()
                )
            }),
        ),
        (
            "SSRF guard, public URL",
            time(200_000, || {
                assert!(guard.check_url(black_box(&url)).is_ok())
            }),
        ),
        (
            "SSRF guard, private IP literal",
            time(200_000, || {
                assert!(guard.check_url(black_box(&private)).is_err())
            }),
        ),
    ];
    let _ = std::fs::remove_dir_all(&dir);
    println!("| operation | time per call |");
    println!("|---|---|");
    for (name, ns) in rows {
        let shown = if ns >= 1000.0 {
            format!("{:.2} µs", ns / 1000.0)
        } else {
            format!("{ns:.0} ns")
        };
        println!("| {name} | {shown} |");
    }
}
