//! The test, analysis and docs skills on small real projects written by the tests.

use serde_json::json;

use crate::helpers::{TempDir, ctx, toolbox};

fn cargo_project() -> TempDir {
    let dir = TempDir::new();
    dir.write(
        "Cargo.toml",
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\n[workspace]\n",
    );
    dir.write(
        "src/lib.rs",
        "//! A tiny crate.\n\n/// Adds two numbers.\npub fn add(a: i32, b: i32) -> i32 {\n    if a > 0 && b > 0 { a + b } else { a + b }\n}\n\npub fn undocumented() {}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(super::add(1, 2), 3); }\n    #[test]\n    fn fails() { assert_eq!(super::add(1, 1), 3); }\n    #[test]\n    #[ignore]\n    fn skipped() {}\n}\n",
    );
    dir
}

#[tokio::test]
async fn detects_and_runs_cargo_tests_with_parsed_results() {
    let dir = cargo_project();
    dir.write(
        "web/package.json",
        r#"{"name": "w", "scripts": {"test": "node --test"}}"#,
    );
    let tb = toolbox("");
    let r = tb.execute("test_detect", json!({}), &ctx(Some(&dir))).await;
    assert_eq!(r.data["runners"][0]["framework"], "cargo", "{r:?}");
    let r = tb
        .execute("test_detect", json!({"path": "web"}), &ctx(Some(&dir)))
        .await;
    assert_eq!(r.data["runners"][0]["framework"], "npm", "{r:?}");

    // Dangerous: not run without confirmation.
    let unconfirmed =
        gathering_tools::CallContext::new(gathering_tools::Grants::all()).project(Some(dir.root()));
    let r = tb.execute("test_run", json!({}), &unconfirmed).await;
    assert!(r.needs_confirmation, "{r:?}");

    let r = tb
        .execute(
            "test_run",
            json!({"timeout_seconds": 600}),
            &ctx(Some(&dir)),
        )
        .await;
    assert!(!r.success, "one test fails: {r:?}");
    assert_eq!(
        (
            r.data["framework"].as_str(),
            r.data["passed"].as_u64(),
            r.data["failed"].as_u64(),
            r.data["skipped"].as_u64()
        ),
        (Some("cargo"), Some(1), Some(1), Some(1)),
        "{r:?}"
    );
    assert_eq!(r.data["failures"], json!(["tests::fails"]));
    let r = tb
        .execute(
            "test_run",
            json!({"framework": "cargo", "filter": "adds", "timeout_seconds": 600}),
            &ctx(Some(&dir)),
        )
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        (r.data["passed"].as_u64(), r.data["failed"].as_u64()),
        (Some(1), Some(0))
    );
    // A filter cannot smuggle options or shell syntax.
    let r = tb
        .execute(
            "test_run",
            json!({"filter": "x; rm -rf /"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("validation_error"));
}

#[tokio::test]
async fn runs_npm_tests_and_stops_at_the_time_limit() {
    let dir = TempDir::new();
    dir.write(
        "package.json",
        r#"{"name": "w", "private": true, "scripts": {"test": "node --test --test-reporter=tap"}}"#,
    );
    dir.write(
        "test/math.test.js",
        "const test = require('node:test');\nconst assert = require('node:assert');\ntest('adds', () => assert.strictEqual(1 + 1, 2));\ntest('breaks', () => assert.strictEqual(1 + 1, 3));\ntest('later', { skip: true }, () => {});\n",
    );
    let tb = toolbox("");
    let r = tb
        .execute(
            "test_run",
            json!({"timeout_seconds": 120}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(r.data["framework"], "npm", "{r:?}");
    assert_eq!(
        (
            r.data["passed"].as_u64(),
            r.data["failed"].as_u64(),
            r.data["skipped"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{r:?}"
    );
    assert_eq!(r.data["failures"], json!(["breaks"]));

    dir.write(
        "test/slow.test.js",
        "require('node:test')('slow', () => new Promise(r => setTimeout(r, 60000)));\n",
    );
    let r = tb
        .execute("test_run", json!({"timeout_seconds": 2}), &ctx(Some(&dir)))
        .await;
    assert_eq!(r.data["timed_out"], true, "{r:?}");
    assert!(!r.success);
}

#[tokio::test]
async fn metrics_and_dependencies() {
    let dir = cargo_project();
    dir.write(
        "app/main.py",
        "# comment\nimport os\n\n\ndef f(x):\n    if x and os:\n        return 1\n    return 2\n",
    );
    dir.write(
        "app/requirements.txt",
        "requests>=2.31  # http\n-r dev.txt\nflask\n",
    );
    dir.write("app/pyproject.toml", "[project]\nname = \"app\"\ndependencies = [\"httpx>=0.27\", \"pydantic[email]==2.7\"]\n[project.optional-dependencies]\ntest = [\"pytest\"]\n");
    dir.write(
        "ui/package.json",
        r#"{"dependencies": {"react": "^18.2.0"}, "devDependencies": {"vite": "5"}}"#,
    );
    dir.write("node_modules/x/index.js", "function skipped() {}\n");
    let tb = toolbox("");
    let r = tb
        .execute("analysis_metrics", json!({}), &ctx(Some(&dir)))
        .await;
    assert!(r.success, "{r:?}");
    let py = &r.data["languages"]["python"];
    assert_eq!(
        (
            py["files"].as_u64(),
            py["lines"].as_u64(),
            py["comment_lines"].as_u64(),
            py["blank_lines"].as_u64(),
            py["functions"].as_u64()
        ),
        (Some(1), Some(8), Some(1), Some(2), Some(1)),
        "{r:?}"
    );
    assert_eq!(r.data["languages"]["rust"]["files"], 1);
    assert!(
        r.data["languages"]["javascript"].is_null(),
        "node_modules is skipped: {r:?}"
    );
    assert!(r.data["most_complex"][0]["complexity"].as_u64().unwrap() >= 2);

    let r = tb
        .execute("analysis_dependencies", json!({}), &ctx(Some(&dir)))
        .await;
    assert!(r.success, "{r:?}");
    let manifests = r.data["manifests"].as_array().unwrap();
    let of =
        |file: &str| manifests.iter().find(|m| m["file"] == file).unwrap()["dependencies"].clone();
    assert_eq!(
        of("app/requirements.txt"),
        json!([{"name": "requests", "version": ">=2.31", "kind": "normal"}, {"name": "flask", "version": null, "kind": "normal"}])
    );
    assert_eq!(
        of("app/pyproject.toml"),
        json!([{"name": "httpx", "version": ">=0.27", "kind": "normal"}, {"name": "pydantic", "version": "==2.7", "kind": "normal"}, {"name": "pytest", "version": null, "kind": "optional:test"}])
    );
    assert_eq!(of("ui/package.json").as_array().unwrap().len(), 2);
    assert_eq!(of("Cargo.toml"), json!([]));
    let r = tb
        .execute(
            "analysis_metrics",
            json!({"path": "../.."}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(r.error.as_deref(), Some("refused"));
}

#[tokio::test]
async fn docs_outline_and_extract() {
    let dir = cargo_project();
    dir.write(
        "README.md",
        "# Tiny\n\nIntro.\n\n## Usage\n\n```sh\n# not a heading\n```\n\n### Notes\n",
    );
    dir.write("docs/guide.md", "Guide\n\n# Guide title\n");
    let tb = toolbox("");
    let r = tb
        .execute("docs_outline", json!({}), &ctx(Some(&dir)))
        .await;
    assert!(r.success, "{r:?}");
    assert_eq!(
        r.data["files"],
        json!([
            {"path": "README.md", "title": "Tiny", "headings": [
                {"level": 1, "text": "Tiny", "line": 1},
                {"level": 2, "text": "Usage", "line": 5},
                {"level": 3, "text": "Notes", "line": 11}]},
            {"path": "docs/guide.md", "title": "Guide title", "headings": [{"level": 1, "text": "Guide title", "line": 3}]},
        ])
    );
    let r = tb
        .execute(
            "docs_extract",
            json!({"undocumented": true}),
            &ctx(Some(&dir)),
        )
        .await;
    assert!(r.success, "{r:?}");
    let f = &r.data["files"][0];
    assert_eq!(
        (f["path"].as_str(), f["module_doc"].as_str()),
        (Some("src/lib.rs"), Some("A tiny crate."))
    );
    assert_eq!(
        f["items"],
        json!([{"kind": "fn", "name": "add", "line": 4, "doc": "Adds two numbers."}])
    );
    assert_eq!(f["undocumented"][0]["name"], "undocumented");
    let r = tb
        .execute(
            "docs_outline",
            json!({"path": "src/lib.rs"}),
            &ctx(Some(&dir)),
        )
        .await;
    assert_eq!(
        r.data["files"][0]["items"],
        json!([{"kind": "fn", "name": "add", "line": 4}])
    );
}
