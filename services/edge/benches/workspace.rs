//! Workspace benchmark: git status uncached (the git layer) against the edge's cached answer,
//! the file tree, a file read, run-python, and completion from a warm pylsp. Prints a table.
//!
//!     scripts/setup-lsp.sh && cargo bench -p gathering-edge --bench workspace
//!
//! Auth and edge run in this process on a fresh database; the project is a generated git
//! repository of 2 000 files in 100 folders, half of them committed and a tenth modified.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gathering_core::Shutdown;
use gathering_testkit::TestDb;
use serde_json::{Value, json};

fn row(name: &str, value: String) {
    println!("| {name:<52} | {value:>30} |");
}

fn pct(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!("p50 {:.2} ms, p99 {:.2} ms", ms(at(0.5)), ms(at(0.99)))
}

fn vars(db: &TestDb, pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), db.url.clone()),
        ("GATHERING_ENV".into(), "development".into()),
        ("RUST_LOG".into(), "error".into()),
    ]);
    for (k, val) in pairs {
        v.insert((*k).into(), (*val).into());
    }
    v
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "b")
        .env("GIT_AUTHOR_EMAIL", "b@b")
        .env("GIT_COMMITTER_NAME", "b")
        .env("GIT_COMMITTER_EMAIL", "b@b")
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn make_repo() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gt-bench-ws-{}", uuid::Uuid::new_v4().simple()));
    for d in 0..100 {
        for f in 0..20 {
            let p = dir.join(format!("pkg{d}/mod{f}.py"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, format!("def f{f}():\n    return {d}\n")).unwrap();
        }
    }
    git(&dir, &["init", "-q", "-b", "main"]);
    git(&dir, &["add", "pkg[0-4]*"]);
    git(&dir, &["commit", "-q", "-m", "half"]);
    for d in 0..10 {
        std::fs::write(dir.join(format!("pkg{d}/mod0.py")), "changed = 1\n").unwrap();
    }
    std::fs::canonicalize(dir).unwrap()
}

async fn timed(n: usize, mut f: impl AsyncFnMut()) -> String {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        v.push(t.elapsed());
    }
    pct(v)
}

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let auth_cfg =
        gathering_auth::Config::from_vars(&vars(&db, &[("AUTH_ADDR", "127.0.0.1:0")])).unwrap();
    let auth = gathering_auth::start(auth_cfg, Shutdown::new())
        .await
        .unwrap();
    let auth_url = format!("http://{}", auth.addr);
    let pylsp = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.data/lsp/venv/bin/pylsp");
    let pylsp = pylsp.to_string_lossy().into_owned();
    let edge_cfg = gathering_edge::Config::from_vars(&vars(
        &db,
        &[
            ("EDGE_ADDR", "127.0.0.1:0"),
            ("AUTH_URL", auth_url.as_str()),
            ("RATE_LIMIT_ENABLED", "false"),
            ("DISABLE_AUTH", "true"),
            ("WORKSPACE_CACHE_TTL_SECONDS", "3600"),
            ("LSP_PYTHON_COMMAND", pylsp.as_str()),
        ],
    ))
    .unwrap();
    let edge = gathering_edge::start(edge_cfg, Shutdown::new())
        .await
        .unwrap();
    let base = format!("http://{}", edge.addr);
    let client = gathering_testkit::http::client();
    let dir = make_repo();
    let r: Value = client
        .post(format!("{base}/projects"))
        .json(&json!({"name": "bench", "path": dir, "auto_detect": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["id"].as_i64().unwrap();
    let ws = format!("{base}/workspace/{id}");
    let get = |url: String| {
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            assert!(r.status().is_success());
            r.bytes().await.unwrap();
        }
    };

    println!(
        "workspace benchmark — {} cores, auth + edge in this process; a repository of 2 000 files\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "| {:<52} | {:>30} |",
        "measure (sequential requests)", "latency"
    );
    println!("|{}|{}|", "-".repeat(54), "-".repeat(32));
    let root = gathering_tools::ProjectRoot::new(&dir).unwrap();
    row(
        "git status, uncached (git layer, 50 runs)",
        timed(50, async || {
            gathering_tools::git::status::status(&root).await.unwrap();
        })
        .await,
    );
    get(format!("{ws}/git/status")).await;
    row(
        "GET git/status, cached (500 requests)",
        timed(500, async || get(format!("{ws}/git/status")).await).await,
    );
    get(format!("{ws}/files")).await;
    row(
        "GET files (tree + git status), cached (200)",
        timed(200, async || get(format!("{ws}/files")).await).await,
    );
    row(
        "GET files after a write (tree + status rebuilt, 20)",
        timed(20, async || {
            client
                .put(format!("{ws}/file?path=note.txt"))
                .json(&json!({"content": "x", "create_backup": false}))
                .send()
                .await
                .unwrap();
            get(format!("{ws}/files")).await;
        })
        .await,
    );
    row(
        "GET file (read pkg1/mod1.py, 500)",
        timed(500, async || {
            get(format!("{ws}/file?path=pkg1/mod1.py")).await
        })
        .await,
    );
    row(
        "POST run-python print(1) (20)",
        timed(20, async || {
            client
                .post(format!("{ws}/run-python"))
                .json(&json!({"code": "print(1)"}))
                .send()
                .await
                .unwrap();
        })
        .await,
    );
    if std::path::Path::new(&pylsp).exists() {
        let lsp = format!("{base}/lsp/{id}/completions");
        let body = json!({"file_path": "pkg1/mod1.py", "line": 3, "character": 3,
                          "content": "import os\ndef g():\n    os.pa"});
        let t = Instant::now();
        client.post(&lsp).json(&body).send().await.unwrap();
        row(
            "first completion (pylsp start + answer)",
            format!("{:.0} ms", t.elapsed().as_secs_f64() * 1000.0),
        );
        row(
            "completion, warm pylsp, unsaved content (30)",
            timed(30, async || {
                let r = client.post(&lsp).json(&body).send().await.unwrap();
                assert!(r.status().is_success());
            })
            .await,
        );
    } else {
        row(
            "completion (pylsp)",
            "not installed: run scripts/setup-lsp.sh".into(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
