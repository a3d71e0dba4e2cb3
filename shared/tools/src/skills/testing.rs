//! The `test` skill: find which test runners a project uses (cargo, pytest, npm, go) and run
//! one, with parsed results.
//!
//! Running tests runs the project's code, so `test_run` needs the execute permission and is
//! dangerous (confirmation), like the code skill. The runner is a child process
//! ([`crate::process`]): argv only, a clean environment, its own process group killed on
//! timeout or cancellation, capped output. The working folder is confined to the project root.
//! Results are parsed from each runner's own report: cargo's `test … ok|FAILED|ignored` lines,
//! pytest's `-rA` summary, `go test -json` events, and TAP or spec lines for npm (Node's test
//! runner, tap, mocha); the counts are those of the report, and `exit_code` says whether the
//! run passed.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::parse;
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::Permission;
use crate::process::{self, ExecSpec, ResourceLimits};
use crate::registry::{Registry, ToolOutput};
use crate::response::ConfirmationType;

const SKILL: &str = "test";
const DEFAULT_TIMEOUT: u64 = 300;
const MAX_TIMEOUT: u64 = 1800;
const MAX_OUTPUT: usize = 2 * 1024 * 1024;
/// Characters of stdout/stderr returned (the end, where runners print their summary).
const TAIL_CHARS: usize = 8000;
const MAX_TESTS_LISTED: usize = 2000;

pub fn register(reg: &Registry) -> Result<(), ToolError> {
    let path = json!({"type": "string", "minLength": 1, "maxLength": 4096});
    reg.register(
        ToolDefinition::new("test_detect", SKILL, Category::Testing, "Which test runners a project (or one of its folders) uses: cargo, pytest, npm, go, with the command each would run")
            .permissions(&[Permission::Read])
            .schema(json!({
                "type": "object",
                "properties": {"path": path},
                "additionalProperties": false,
            }))
            .output("{path, runners[{framework, marker, command[]}]}"),
        test_detect,
    )?;
    reg.register(
        ToolDefinition::new("test_run", SKILL, Category::Testing, "Run a project's tests (cargo, pytest, npm or go; detected when not given) with a time limit; parsed results")
            .permissions(&[Permission::Read, Permission::Execute])
            .dangerous(ConfirmationType::User)
            .timeout(Duration::from_secs(MAX_TIMEOUT + 30))
            .schema(json!({
                "type": "object",
                "properties": {
                    "path": path,
                    "framework": {"type": "string", "enum": ["cargo", "pytest", "npm", "go"]},
                    "filter": {"type": "string", "pattern": "^[A-Za-z0-9_:./\\[\\] -]{1,200}$"},
                    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT},
                },
                "additionalProperties": false,
            }))
            .output("{framework, command[], exit_code, passed, failed, skipped, tests[{name, outcome}], failures[], timed_out, duration_ms, stdout_tail, stderr_tail}"),
        test_run,
    )?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framework {
    Cargo,
    Pytest,
    Npm,
    Go,
}

impl Framework {
    fn name(self) -> &'static str {
        match self {
            Framework::Cargo => "cargo",
            Framework::Pytest => "pytest",
            Framework::Npm => "npm",
            Framework::Go => "go",
        }
    }

    fn parse(s: &str) -> Option<Framework> {
        [
            Framework::Cargo,
            Framework::Pytest,
            Framework::Npm,
            Framework::Go,
        ]
        .into_iter()
        .find(|f| f.name() == s)
    }

    /// The argv of a run; `filter` is already restricted by the schema to a safe alphabet and
    /// always passed as its own argument (never through a shell).
    fn command(self, filter: Option<&str>) -> Vec<String> {
        let mut argv: Vec<String> = match self {
            Framework::Cargo => vec!["cargo", "test", "--color", "never"],
            Framework::Pytest => vec![
                "python3",
                "-m",
                "pytest",
                "-rA",
                "--color=no",
                "-p",
                "no:cacheprovider",
            ],
            Framework::Npm => vec!["npm", "test", "--silent"],
            Framework::Go => vec!["go", "test", "-json"],
        }
        .into_iter()
        .map(str::to_owned)
        .collect();
        match (self, filter) {
            (Framework::Cargo, Some(f)) => argv.push(f.to_owned()),
            (Framework::Pytest, Some(f)) => argv.extend(["-k".to_owned(), f.to_owned()]),
            (Framework::Go, Some(f)) => argv.extend(["-run".to_owned(), f.to_owned()]),
            (Framework::Npm, Some(f)) => argv.extend(["--".to_owned(), f.to_owned()]),
            _ => {}
        }
        if self == Framework::Go {
            argv.push("./...".into());
        }
        argv
    }
}

/// The runners `dir` declares, most specific marker first.
fn detect(dir: &Path) -> Vec<(Framework, &'static str)> {
    let mut found = Vec::new();
    let has = |name: &str| dir.join(name).is_file();
    if has("Cargo.toml") {
        found.push((Framework::Cargo, "Cargo.toml"));
    }
    let pyproject_pytest = std::fs::read_to_string(dir.join("pyproject.toml"))
        .is_ok_and(|s| s.contains("[tool.pytest") || s.contains("pytest"));
    if has("pytest.ini") {
        found.push((Framework::Pytest, "pytest.ini"));
    } else if pyproject_pytest {
        found.push((Framework::Pytest, "pyproject.toml"));
    } else if has("conftest.py") {
        found.push((Framework::Pytest, "conftest.py"));
    } else if python_tests(dir) || python_tests(&dir.join("tests")) {
        found.push((Framework::Pytest, "test_*.py"));
    }
    let npm_test = std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .is_some_and(|v| v["scripts"]["test"].is_string());
    if npm_test {
        found.push((Framework::Npm, "package.json scripts.test"));
    }
    if has("go.mod") {
        found.push((Framework::Go, "go.mod"));
    }
    found
}

fn python_tests(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten().take(1000).any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".py") && (n.starts_with("test_") || n.ends_with("_test.py"))
        })
    })
}

#[derive(Deserialize)]
struct DetectInput {
    path: Option<String>,
}

async fn folder(ctx: &CallContext, path: Option<&str>) -> Result<std::path::PathBuf, ToolError> {
    let root = ctx.root()?;
    let dir = root.resolve_existing(path.unwrap_or(".")).await?;
    if !dir.is_dir() {
        return Err(ToolError::InvalidInput(format!(
            "'{}' is not a folder",
            path.unwrap_or(".")
        )));
    }
    Ok(dir)
}

async fn test_detect(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: DetectInput = parse(input)?;
    let dir = folder(&ctx, i.path.as_deref()).await?;
    let rel = ctx.root()?.relative(&dir);
    let found = tokio::task::spawn_blocking(move || detect(&dir))
        .await
        .map_err(|e| ToolError::Failed(e.to_string()))?;
    let runners: Vec<Value> = found
        .iter()
        .map(|(f, marker)| json!({"framework": f.name(), "marker": marker, "command": f.command(None)}))
        .collect();
    Ok(ToolOutput::ok(
        if runners.is_empty() {
            "No test runner found".to_owned()
        } else {
            format!(
                "Test runner(s): {}",
                found
                    .iter()
                    .map(|(f, _)| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        json!({"path": rel, "runners": runners}),
    ))
}

#[derive(Deserialize)]
struct RunInput {
    path: Option<String>,
    framework: Option<String>,
    filter: Option<String>,
    timeout_seconds: Option<u64>,
}

async fn test_run(ctx: CallContext, input: Value) -> Result<ToolOutput, ToolError> {
    let i: RunInput = parse(input)?;
    let dir = folder(&ctx, i.path.as_deref()).await?;
    let framework = match i.framework.as_deref().and_then(Framework::parse) {
        Some(f) => f,
        None => {
            let d = dir.clone();
            let found = tokio::task::spawn_blocking(move || detect(&d))
                .await
                .map_err(|e| ToolError::Failed(e.to_string()))?;
            found.first().map(|(f, _)| *f).ok_or_else(|| {
                ToolError::InvalidInput(
                    "no test runner found here (cargo, pytest, npm or go); name one with framework"
                        .into(),
                )
            })?
        }
    };
    let argv = framework.command(i.filter.as_deref());
    let mut spec = ExecSpec::new(argv[0].clone(), argv[1..].to_vec(), dir);
    spec.wall = Duration::from_secs(
        i.timeout_seconds
            .unwrap_or(DEFAULT_TIMEOUT)
            .min(MAX_TIMEOUT),
    );
    spec.max_output = MAX_OUTPUT;
    spec.env.extend([
        ("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()),
        ("CI".to_owned(), "true".to_owned()),
        ("NO_COLOR".to_owned(), "1".to_owned()),
    ]);
    for key in ["CARGO_HOME", "RUSTUP_HOME", "GOPATH", "GOCACHE", "GOROOT"] {
        if let Ok(v) = std::env::var(key) {
            spec.env.push((key.to_owned(), v));
        }
    }
    spec.limits = ResourceLimits {
        file_size_bytes: Some(2 * 1024 * 1024 * 1024),
        ..ResourceLimits::default()
    };
    let out = process::run(spec).await?;
    let report = match framework {
        Framework::Cargo => parse_cargo(&out.stdout),
        Framework::Pytest => parse_pytest(&out.stdout),
        Framework::Go => parse_go(&out.stdout),
        Framework::Npm => parse_tap_or_spec(&format!("{}\n{}", out.stdout, out.stderr)),
    };
    let passed = report.count("passed");
    let failed = report.count("failed");
    let skipped = report.count("skipped");
    let failures: Vec<&str> = report
        .tests
        .iter()
        .filter(|(_, o)| *o == "failed")
        .map(|(n, _)| n.as_str())
        .collect();
    let tests: Vec<Value> = report
        .tests
        .iter()
        .take(MAX_TESTS_LISTED)
        .map(|(n, o)| json!({"name": n, "outcome": o}))
        .collect();
    let ok = out.succeeded();
    let message = if out.timed_out {
        format!("{} tests timed out", framework.name())
    } else {
        format!(
            "{}: {passed} passed, {failed} failed, {skipped} skipped{}",
            framework.name(),
            if ok { "" } else { " (run failed)" }
        )
    };
    let data = json!({
        "framework": framework.name(),
        "command": argv,
        "exit_code": out.exit_code,
        "passed": passed,
        "failed": failed,
        "skipped": skipped,
        "tests": tests,
        "failures": failures,
        "timed_out": out.timed_out,
        "duration_ms": out.duration_ms,
        "stdout_tail": tail(&out.stdout),
        "stderr_tail": tail(&out.stderr),
    });
    Ok(if ok {
        ToolOutput::ok(message, data)
    } else {
        ToolOutput::failed(message, data)
    })
}

fn tail(s: &str) -> String {
    let n = s.chars().count();
    s.chars().skip(n.saturating_sub(TAIL_CHARS)).collect()
}

/// Test names and outcomes (`passed`, `failed`, `skipped`).
#[derive(Default)]
struct Report {
    tests: Vec<(String, &'static str)>,
}

impl Report {
    fn count(&self, outcome: &str) -> usize {
        self.tests.iter().filter(|(_, o)| *o == outcome).count()
    }
}

/// `test path::name ... ok` (also `FAILED`, `ignored`); doc-tests have spaces in their names.
fn parse_cargo(stdout: &str) -> Report {
    let mut r = Report::default();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, outcome)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let outcome = match outcome.trim() {
            "ok" => "passed",
            "FAILED" => "failed",
            o if o.starts_with("ignored") => "skipped",
            _ => continue,
        };
        r.tests.push((name.trim().to_owned(), outcome));
    }
    r
}

/// The `-rA` short summary: `PASSED file::test`, `FAILED file::test - reason`, `SKIPPED …`,
/// `ERROR …`, `XFAIL`/`XPASS`.
fn parse_pytest(stdout: &str) -> Report {
    let mut r = Report::default();
    for line in stdout.lines() {
        let (outcome, rest) = match line.split_once(' ') {
            Some(("PASSED" | "XPASS", rest)) => ("passed", rest),
            Some(("FAILED" | "ERROR", rest)) => ("failed", rest),
            Some(("SKIPPED" | "XFAIL", rest)) => ("skipped", rest),
            _ => continue,
        };
        let name = rest.split(" - ").next().unwrap_or(rest).trim();
        r.tests.push((name.to_owned(), outcome));
    }
    r
}

/// `go test -json` events: `{"Action": "pass"|"fail"|"skip", "Package", "Test"}`.
fn parse_go(stdout: &str) -> Report {
    let mut r = Report::default();
    for line in stdout.lines() {
        let Ok(ev) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(test) = ev["Test"].as_str() else {
            continue;
        };
        let outcome = match ev["Action"].as_str() {
            Some("pass") => "passed",
            Some("fail") => "failed",
            Some("skip") => "skipped",
            _ => continue,
        };
        let pkg = ev["Package"].as_str().unwrap_or("");
        r.tests.push((format!("{pkg}/{test}"), outcome));
    }
    r
}

/// TAP (`ok 1 - name`, `not ok 2 - name`, `# SKIP`) or spec reporters (`✔ name`, `✖ name`).
fn parse_tap_or_spec(output: &str) -> Report {
    let mut r = Report::default();
    for raw in output.lines() {
        let line = raw.trim();
        let (outcome, rest) = if let Some(rest) = line.strip_prefix("not ok ") {
            ("failed", rest)
        } else if let Some(rest) = line.strip_prefix("ok ") {
            ("passed", rest)
        } else if let Some(rest) = line.strip_prefix("✔ ") {
            ("passed", rest)
        } else if let Some(rest) = line.strip_prefix("✖ ") {
            ("failed", rest)
        } else {
            continue;
        };
        // Summary lines of the spec reporter ("✖ failing tests:") are not tests.
        if rest.ends_with(':') {
            continue;
        }
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
        let rest = rest.strip_prefix("- ").unwrap_or(rest);
        let (name, directive) = rest.split_once(" # ").unwrap_or((rest, ""));
        let outcome = if directive.to_ascii_uppercase().starts_with("SKIP") {
            "skipped"
        } else {
            outcome
        };
        // Spec lines end with the duration: "name (1.2ms)".
        let name = match name.rfind(" (") {
            Some(i) if name.ends_with("ms)") => &name[..i],
            _ => name,
        };
        r.tests.push((name.trim().to_owned(), outcome));
    }
    // Node's reporters list a failing test again in their summary; keep each name once.
    let mut seen = std::collections::HashSet::new();
    r.tests.retain(|(n, o)| seen.insert((n.clone(), *o)));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reports() {
        let c = parse_cargo(
            "running 3 tests\ntest a::one ... ok\ntest a::two ... FAILED\ntest b ... ignored, slow\ntest result: FAILED.",
        );
        assert_eq!(
            (c.count("passed"), c.count("failed"), c.count("skipped")),
            (1, 1, 1)
        );
        let p = parse_pytest(
            "== short test summary info ==\nPASSED t.py::test_a\nFAILED t.py::test_b - assert 1 == 2\nSKIPPED [1] t.py:9: no\n",
        );
        assert_eq!(p.tests[1], ("t.py::test_b".to_owned(), "failed"));
        assert_eq!(p.count("skipped"), 1);
        let g = parse_go(
            "{\"Action\":\"pass\",\"Package\":\"m\",\"Test\":\"TestA\"}\n{\"Action\":\"fail\",\"Package\":\"m\",\"Test\":\"TestB\"}\n{\"Action\":\"fail\",\"Package\":\"m\"}",
        );
        assert_eq!((g.count("passed"), g.count("failed")), (1, 1));
        let t = parse_tap_or_spec(
            "TAP version 13\nok 1 - adds\nnot ok 2 - subtracts\nok 3 - later # SKIP not yet\n✔ spec test (0.5ms)\n",
        );
        assert_eq!(
            t.tests,
            vec![
                ("adds".to_owned(), "passed"),
                ("subtracts".to_owned(), "failed"),
                ("later".to_owned(), "skipped"),
                ("spec test".to_owned(), "passed"),
            ]
        );
    }
}
