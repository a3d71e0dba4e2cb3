//! `POST /workspace/{id}/run-python`: runs Python in the project directory with the process
//! rules of the tools (`gathering_tools::process`: clean environment, own process group killed
//! at the end, resource limits set before exec, capped output).
//!
//! The code is fed on stdin (no temporary file left in the project); a `file_path` without
//! code runs that file (confined to the root). The wall-clock limit
//! (`WORKSPACE_PYTHON_TIMEOUT_SECONDS`, 30 s) answers 408; the CPU limit is set just above it
//! so the wall clock decides; memory (`GATHERING_CODE_MEMORY_MB`), file size and open files are
//! limited, and stdout/stderr are each cut at the code tools' output limit.

use std::time::Duration;

use gathering_tools::ProjectRoot;
use gathering_tools::config::CodeLimits;
use gathering_tools::process::{self, ExecSpec, ResourceLimits};
use serde_json::{Value, json};

use crate::error::ApiError;

pub struct RunPython<'a> {
    pub code: &'a str,
    pub file_path: Option<&'a str>,
}

pub async fn run(
    root: &ProjectRoot,
    input: RunPython<'_>,
    timeout: Duration,
    limits: &CodeLimits,
) -> Result<Value, ApiError> {
    // -E: ignore PYTHON* variables, -s: no user site-packages. Not -I: the project's own
    // modules must stay importable (sys.path[0] is the project directory or the script's).
    let mut args = vec!["-E".to_owned(), "-s".to_owned()];
    let stdin = if input.code.trim().is_empty() {
        let Some(path) = input.file_path else {
            return Err(ApiError::BadRequest("code or file_path is required".into()));
        };
        let abs = root
            .resolve_existing(path)
            .await
            .map_err(|e| ApiError::BadRequest(format!("File path outside project: {e}")))?;
        args.push(root.relative(&abs));
        None
    } else {
        args.push("-".to_owned());
        Some(input.code.as_bytes().to_vec())
    };
    let mut spec = ExecSpec::new("python3", args, root.path().to_path_buf());
    spec.stdin = stdin;
    spec.wall = timeout;
    spec.max_output = limits.max_output;
    spec.env.push(("PYTHONUNBUFFERED".into(), "1".into()));
    spec.limits = ResourceLimits {
        cpu_seconds: Some(timeout.as_secs() + 2),
        address_space_bytes: Some(limits.memory_bytes),
        file_size_bytes: Some(64 * 1024 * 1024),
        open_files: Some(256),
        ..ResourceLimits::default()
    };
    let out = process::run(spec)
        .await
        .map_err(|e| ApiError::Failed(e.to_string()))?;
    if out.timed_out {
        return Err(ApiError::Timeout(format!(
            "Execution timed out after {} seconds",
            timeout.as_secs()
        )));
    }
    Ok(json!({
        "stdout": out.stdout,
        "stderr": out.stderr,
        "exit_code": out.exit_code.unwrap_or(-out.signal.unwrap_or(1)),
        "execution_time": out.duration_ms as f64 / 1000.0,
        "stdout_truncated": out.stdout_truncated,
        "stderr_truncated": out.stderr_truncated,
        "signal": out.signal,
    }))
}
