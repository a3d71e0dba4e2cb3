//! The `shell` skill: one command, run with argv in the project root. There is no shell: the
//! command line is split into words with POSIX quoting (the `shlex` crate; no variables,
//! globbing, substitution, pipes or redirections). Before it runs:
//!
//! 1. the raw line is checked against the always-blocked patterns of BEHAVIOUR.md A4
//!    ([`patterns`]: destructive commands, fork bombs, pipe-to-shell, eval/exec, backticks and
//!    `$()`, privilege escalation, secret files, LD_PRELOAD, PATH=, …);
//! 2. the program and its options pass [`programs::check`]: inspection utilities need only
//!    the tool's own `read` permission, file-changing ones `write`, interpreters and build
//!    tools `execute`; options that make a program run another one are refused per program;
//!    nothing writes into `.git`;
//! 3. path-like arguments must stay inside the project root (absolute paths outside it, `~`
//!    and `..` are refused; existing paths are resolved through symlinks).
//!
//! It then runs with a clean environment, its own process group, CPU and file-size limits, a
//! wall-clock limit and capped output. This limits and confines; it is not a sandbox: a runner
//! executes project code with the service's user, which is why runners need `execute` and the
//! tool asks for confirmation.

pub mod patterns;
pub mod programs;

pub use patterns::{BLOCKED, BlockedPattern, Scope, blocked};

use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Services, parse, with};
use crate::context::CallContext;
use crate::definition::{Category, ToolDefinition};
use crate::error::ToolError;
use crate::permission::Permission;
use crate::process::{self, ExecSpec, ResourceLimits};
use crate::registry::{Registry, ToolOutput};
use crate::response::ConfirmationType;
use crate::root::ProjectRoot;

const SKILL: &str = "shell";

const OPERATORS: &[&str] = &[
    "|", "||", "&&", ";", "&", ">", ">>", "<", "<<", "2>", "2>&1", "&>", "|&",
];

/// Lexical confinement of one argument: absolute paths must be inside the root; `~` and `..`
/// are refused.
fn check_arg(root: &ProjectRoot, arg: &str) -> Result<(), ToolError> {
    let mut candidates = vec![arg];
    if arg.starts_with('-')
        && let Some((_, v)) = arg.split_once('=')
    {
        candidates.push(v);
    }
    for c in candidates {
        if c.starts_with('~') {
            return Err(ToolError::Refused(format!(
                "argument '{arg}' refers to a home folder"
            )));
        }
        let path = Path::new(c);
        if path
            .components()
            .any(|comp| matches!(comp, Component::ParentDir))
        {
            return Err(ToolError::Refused(format!(
                "argument '{arg}' escapes the project root ('..')"
            )));
        }
        if path.is_absolute() && !root.contains(path) {
            return Err(ToolError::Refused(format!(
                "argument '{arg}' is outside the project root"
            )));
        }
    }
    Ok(())
}

/// Arguments naming existing paths are resolved, symlinks included, and must stay inside.
fn check_existing(root: &ProjectRoot, cwd: &Path, arg: &str) -> Result<(), ToolError> {
    let value = match arg.split_once('=') {
        Some((_, v)) if arg.starts_with('-') => v,
        _ => arg,
    };
    if value.is_empty() || value.starts_with('-') {
        return Ok(());
    }
    let candidate = cwd.join(value);
    if std::fs::symlink_metadata(&candidate).is_ok() {
        match std::fs::canonicalize(&candidate) {
            Ok(real) if !root.contains(&real) => {
                return Err(ToolError::Refused(format!(
                    "argument '{arg}' resolves outside the project root (through a symlink)"
                )));
            }
            Err(_) => {
                return Err(ToolError::Refused(format!(
                    "argument '{arg}' is a dangling symlink"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn register(reg: &Registry, svc: &Arc<Services>) -> Result<(), ToolError> {
    let max = svc.config.shell.max_timeout.as_secs();
    reg.register(
        ToolDefinition::new("shell_exec", SKILL, Category::CodeExecution, "Run one allow-listed command (no shell) in the project root")
            // Inspection needs `read`; `programs::check` asks more of writers and runners.
            .permissions(&[Permission::Read])
            .dangerous(ConfirmationType::User)
            .timeout(svc.config.shell.max_timeout + Duration::from_secs(5))
            .schema(json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "minLength": 1, "maxLength": 16384},
                    "cwd": {"type": "string", "maxLength": 4096},
                    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": max},
                },
                "required": ["command"],
                "additionalProperties": false,
            }))
            .output("{command, argv, exit_code, stdout, stderr, stdout_truncated, stderr_truncated, timed_out, duration_ms}"),
        with(svc.clone(), shell_exec),
    )
}

#[derive(Deserialize)]
struct ShellInput {
    command: String,
    cwd: Option<String>,
    timeout_seconds: Option<u64>,
}

async fn shell_exec(
    svc: Arc<Services>,
    ctx: CallContext,
    input: Value,
) -> Result<ToolOutput, ToolError> {
    let i: ShellInput = parse(input)?;
    let root = ctx.root()?.clone();
    if let Some(name) = blocked(&i.command, Scope::ShellOnly) {
        return Err(ToolError::Refused(format!("command blocked: {name}")));
    }
    let argv = split_words(&i.command)?;
    let Some(program) = argv.first().cloned() else {
        return Err(ToolError::InvalidInput("empty command".into()));
    };
    if argv.len() > 256 {
        return Err(ToolError::TooLarge("more than 256 arguments".into()));
    }
    if let Some(op) = argv.iter().find(|a| OPERATORS.contains(&a.as_str())) {
        return Err(ToolError::InvalidInput(format!(
            "'{op}' is a shell operator: commands run without a shell, one at a time"
        )));
    }
    if program.contains('=') {
        return Err(ToolError::InvalidInput(
            "environment assignments are not supported".into(),
        ));
    }
    if program.contains('/') {
        return Err(ToolError::Refused(format!(
            "'{program}': give a program name, not a path"
        )));
    }
    let shell_cfg = &svc.config.shell;
    programs::check(&program, &argv[1..], ctx.grants, &shell_cfg.extra_allowed)?;
    for a in &argv[1..] {
        check_arg(&root, a)?;
    }
    let cwd = match &i.cwd {
        Some(c) => root.resolve_existing(c).await?,
        None => root.path().to_path_buf(),
    };
    {
        let (root, cwd, args) = (root.clone(), cwd.clone(), argv[1..].to_vec());
        tokio::task::spawn_blocking(move || {
            args.iter().try_for_each(|a| check_existing(&root, &cwd, a))
        })
        .await
        .map_err(|e| ToolError::Failed(e.to_string()))??;
    }
    let wall = i
        .timeout_seconds
        .map(Duration::from_secs)
        .unwrap_or(shell_cfg.default_timeout)
        .min(shell_cfg.max_timeout);
    let mut spec = ExecSpec::new(program, argv[1..].to_vec(), cwd);
    spec.wall = wall;
    spec.max_output = shell_cfg.max_output;
    spec.limits = ResourceLimits {
        // Two cores' worth of the wall limit.
        cpu_seconds: Some(wall.as_secs().max(1) * 2),
        file_size_bytes: Some(256 * 1024 * 1024),
        ..ResourceLimits::default()
    };
    let out = process::run(spec).await?;
    let message = if out.timed_out {
        format!(
            "command timed out after {} s and was killed",
            wall.as_secs()
        )
    } else {
        match out.exit_code {
            Some(0) => "command succeeded".to_owned(),
            Some(c) => format!("command exited with {c}"),
            None => format!("command killed by signal {}", out.signal.unwrap_or(0)),
        }
    };
    let success = out.succeeded();
    let mut data = serde_json::to_value(&out).unwrap_or(Value::Null);
    data["command"] = json!(i.command);
    data["argv"] = json!(argv);
    Ok(if success {
        ToolOutput::ok(message, data)
    } else {
        ToolOutput::failed(message, data)
    })
}

/// Splits a command line into words with POSIX quoting; nothing is expanded.
pub fn split_words(line: &str) -> Result<Vec<String>, ToolError> {
    shlex::split(line)
        .ok_or_else(|| ToolError::InvalidInput("unterminated quote or trailing backslash".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"echo "a b" 'c d' e\ f"#).unwrap(),
            vec!["echo", "a b", "c d", "e f"]
        );
        assert!(split_words("echo 'x").is_err());
    }
}
