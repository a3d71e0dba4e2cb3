//! The dashboard login flow in a real browser: tests/browser/login_flow.py (Playwright driving
//! Debian's headless chromium; scripts/setup-test-python.sh and scripts/setup-browser.sh
//! install them) against real auth and edge servers serving tests/browser/dashboard.
//! Screenshots of failures go to target/test-artefacts/browser (or
//! `GATHERING_TEST_ARTEFACTS`/browser).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use gathering_testkit::TestDb;

use crate::plugins::python;
use crate::support::{start_auth, start_edge};

const PW: &str = "correct horse battery";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn artefacts() -> PathBuf {
    std::env::var("GATHERING_TEST_ARTEFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/test-artefacts"))
        .join("browser")
}

#[tokio::test]
async fn a_browser_logs_in_uses_the_dashboard_and_logs_out() {
    let chromium =
        std::env::var("GATHERING_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/setup-browser.sh"
    );
    let python = python();
    let db = TestDb::new().await;
    let auth = start_auth(&db, &[]).await;
    let dashboard = workspace().join("tests/browser/dashboard");
    let dir = dashboard.display().to_string();
    let edge = start_edge(&db, &auth, &[("GATHERING_DASHBOARD_DIR", &dir)]).await;
    let r = edge.api().register("browser@example.com", PW).await;
    assert_eq!(r.status, reqwest::StatusCode::CREATED, "{:?}", r.body);

    let artefacts = artefacts();
    let run = tokio::process::Command::new(&python)
        .arg(workspace().join("tests/browser/login_flow.py"))
        .args([&edge.base, "browser@example.com", PW])
        .arg(&artefacts)
        .env("GATHERING_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser test took more than 120 s")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser flow failed ({}); artefacts in {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status,
        artefacts.display()
    );
    assert!(stdout.contains("login flow ok"), "{stdout}");
    edge.stop().await;
    auth.stop().await;
}
