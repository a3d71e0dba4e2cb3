//! `deploy/kubernetes` validated without a cluster. scripts/check-kubernetes.py renders the
//! kustomize base and overlays and checks them against the Kubernetes schemas and the sources
//! (image, commands, environment variables, probes, network policies, autoscaling); here it is
//! run against the real binary, shown to refuse broken manifests, and what it extracts is
//! checked against live processes: every probe answers 200 on the port the manifests name, and
//! every KEDA query runs on a migrated database and counts what executors would take.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gathering_testkit::{GatheringProcess, TestDb, free_port, http};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with kubernetes-validate (scripts/setup-test-python.sh).
fn python() -> PathBuf {
    let p = std::env::var("GATHERING_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".data/test-python/bin/python"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup-test-python.sh",
        p.display()
    );
    p
}

/// A scratch directory of its own for this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gathering-k8s-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the checker on `manifests` (default: the repository's); exit success and its output.
fn check(manifests: Option<&Path>, dump: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("scripts/check-kubernetes.py"))
        .arg("--repo")
        .arg(repo())
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_gathering"));
    if let Some(m) = manifests {
        cmd.arg("--manifests").arg(m);
    }
    if let Some(d) = dump {
        cmd.arg("--dump").arg(d);
    }
    let out = cmd.output().expect("python runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_manifests_pass_schema_validation_and_match_the_services() {
    let (ok, out) = check(None, None);
    assert!(ok, "{out}");
    assert!(out.contains("deploy/kubernetes: ok"), "{out}");
}

#[test]
fn the_checker_refuses_manifests_that_drift_from_the_services() {
    let dir = scratch("drift");
    copy_dir(&repo().join("deploy/kubernetes"), &dir);
    let base = dir.join("base");
    // A field Kubernetes does not know, a variable no service reads, a probe on a path that
    // does not exist, the auth gRPC port opened to everyone, a too short grace period, and an
    // executor Deployment running the wrong subcommand.
    edit(
        &base.join("scheduler.yaml"),
        "revisionHistoryLimit",
        "revisionHistoryLimitt",
    );
    edit(
        &base.join("config.yaml"),
        "  RUST_LOG: info\n",
        "  RUST_LOG: info\n  EXECUTOR_TURBO: \"1\"\n",
    );
    edit(
        &base.join("auth.yaml"),
        "path: /health/live",
        "path: /healthz",
    );
    edit(
        &base.join("network-policies.yaml"),
        "    - from:\n        - podSelector:\n            matchLabels:\n              app.kubernetes.io/name: gathering\n              app.kubernetes.io/component: edge\n      ports:\n        - protocol: TCP\n          port: 50051",
        "    - ports:\n        - protocol: TCP\n          port: 50051",
    );
    edit(
        &base.join("executor.yaml"),
        "terminationGracePeriodSeconds: 40",
        "terminationGracePeriodSeconds: 15",
    );
    edit(
        &base.join("executor.yaml"),
        "command: [\"gathering\", \"executor\"]",
        "command: [\"gathering\", \"scheduler\"]",
    );
    let (ok, out) = check(Some(&dir), None);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok, "{out}");
    for expected in [
        "'revisionHistoryLimitt' was unexpected",
        "EXECUTOR_TURBO is set for",
        "path /healthz is not one of",
        "auth:50051 is reachable from anywhere",
        "executor terminationGracePeriodSeconds 15 < EXECUTOR_SHUTDOWN_TIMEOUT_SECONDS",
        "runs `gathering scheduler`, expected executor",
    ] {
        assert!(out.contains(expected), "{expected:?} not reported:\n{out}");
    }
}

#[tokio::test]
async fn every_probe_answers_on_its_port_and_every_keda_query_runs() {
    let dir = scratch("dump");
    let dump_path = dir.join("dump.json");
    let (ok, out) = check(None, Some(&dump_path));
    assert!(ok, "{out}");
    let dump: Value = serde_json::from_str(&std::fs::read_to_string(&dump_path).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let probes = dump["probes"].as_array().unwrap();
    let queries = dump["queries"].as_array().unwrap();
    assert!(probes.len() >= 10, "{dump}");
    assert!(queries.len() >= 5, "{dump}");

    // Every service as a real process, each listening address moved to a free port (the
    // manifests' port is each address variable's default, which the checker verified).
    let db = TestDb::new().await;
    let mut env = HashMap::from([
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("GATHERING_ENV".to_string(), "development".to_string()),
        ("RUST_LOG".to_string(), "warn".to_string()),
    ]);
    let mut ports: HashMap<String, u16> = HashMap::new();
    for var in [
        "EDGE_ADDR",
        "AUTH_ADDR",
        "LLM_GATEWAY_ADDR",
        "LLM_GATEWAY_HTTP_ADDR",
        "EXECUTOR_ADMIN_ADDR",
        "SCHEDULER_ADMIN_ADDR",
    ] {
        let port = free_port();
        ports.insert(var.into(), port);
        env.insert(var.into(), format!("127.0.0.1:{port}"));
    }
    // The edge is ready only once it holds auth's signing keys: point it at this auth.
    env.insert(
        "AUTH_URL".into(),
        format!("http://127.0.0.1:{}", ports["AUTH_ADDR"]),
    );
    env.insert(
        "LLM_GATEWAY_URL".into(),
        format!("http://127.0.0.1:{}", ports["LLM_GATEWAY_ADDR"]),
    );
    let up = GatheringProcess::spawn(Path::new(env!("CARGO_BIN_EXE_gathering")), &["up"], &env);
    let client = http::client();
    for probe in probes {
        let var = probe["addr_var"].as_str().unwrap();
        let port = ports
            .get(var)
            .unwrap_or_else(|| panic!("no free port for {var}"));
        let url = format!("http://127.0.0.1:{port}{}", probe["path"].as_str().unwrap());
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let answer = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            match answer {
                Ok(r) if r.status() == 200 => break,
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                other => {
                    let (stdout, stderr) = up.output_so_far();
                    panic!("{probe}: {url} answered {other:?}\n{stdout}\n{stderr}");
                }
            }
        }
    }
    drop(up);

    // KEDA's queries on a migrated database: one number each, and ready jobs counted.
    let pool = db.pool(2);
    let conn = pool.get().await.unwrap();
    conn.execute(
        "INSERT INTO queue.jobs (queue, kind, run_at) VALUES \
         ('agents', 'k', now() - interval '90 seconds'), ('agents', 'k', now()), \
         ('agents', 'k', now() + interval '1 hour')",
        &[],
    )
    .await
    .unwrap();
    for query in queries {
        let sql = query.as_str().unwrap();
        let rows = conn.query(sql, &[]).await.unwrap();
        assert_eq!(rows.len(), 1, "{sql}");
        let value: f64 = match rows[0].try_get::<_, i64>(0) {
            Ok(n) => n as f64,
            Err(_) => rows[0].try_get::<_, f64>(0).unwrap(),
        };
        if sql.contains("queue = 'agents'") {
            assert_eq!(value, 2.0, "two agents jobs are due: {sql}");
        } else if sql.contains("min(run_at)") {
            assert!(value >= 90.0, "the oldest waits 90 s: {value} {sql}");
        } else {
            assert_eq!(value, 0.0, "{sql}");
        }
    }
}
