//! Child processes for the git, shell and code skills: argv only (never a shell), a clean
//! environment, its own process group (so everything it started dies with it), resource
//! limits set between fork and exec, a wall-clock limit, and capped output. Dropping the future
//! (a tool timeout or cancellation) kills the whole group.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::error::ToolError;

/// Resource limits applied to the child (and inherited by what it starts).
#[derive(Debug, Clone, Default)]
pub struct ResourceLimits {
    /// RLIMIT_CPU: CPU seconds before SIGXCPU (SIGKILL one second later).
    pub cpu_seconds: Option<u64>,
    /// RLIMIT_AS: address space.
    pub address_space_bytes: Option<u64>,
    /// RLIMIT_DATA: heap and private writable mappings (what V8 can live with, unlike AS).
    pub data_bytes: Option<u64>,
    /// RLIMIT_FSIZE: largest file the process may write.
    pub file_size_bytes: Option<u64>,
    /// RLIMIT_NOFILE.
    pub open_files: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The whole environment of the child (nothing is inherited but what is listed).
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub wall: Duration,
    /// Largest stdout and stderr kept, each; the process group is killed past it.
    pub max_output: usize,
    pub limits: ResourceLimits,
}

impl ExecSpec {
    pub fn new(program: impl Into<String>, args: Vec<String>, cwd: PathBuf) -> Self {
        Self {
            program: program.into(),
            args,
            cwd,
            env: base_env(),
            stdin: None,
            wall: Duration::from_secs(30),
            max_output: 1024 * 1024,
            limits: ResourceLimits::default(),
        }
    }
}

/// PATH, HOME and a UTF-8 locale from the service's environment; nothing else (no secrets).
pub fn base_env() -> Vec<(String, String)> {
    let mut env = vec![("LANG".to_owned(), "C.UTF-8".to_owned())];
    for key in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(key) {
            env.push((key.to_owned(), v));
        }
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExecOutput {
    pub exit_code: Option<i32>,
    /// Signal that ended the process, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub timed_out: bool,
    pub duration_ms: u64,
}

impl ExecOutput {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// Kills the process group when dropped (normal end, timeout, or the future being dropped).
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

pub async fn run(spec: ExecSpec) -> Result<ExecOutput, ToolError> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let limits = spec.limits.clone();
    // SAFETY: the closure runs in the child between fork and exec; it only calls setrlimit,
    // which is async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || apply_limits(&limits));
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            ToolError::Failed(format!("'{}' is not installed", spec.program))
        }
        _ => ToolError::Failed(format!("cannot start '{}': {e}", spec.program)),
    })?;
    let group = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let stdin = child.stdin.take();
    let input = spec.stdin.clone();
    let cap = spec.max_output;

    let mut out = (Vec::new(), false);
    let mut err = (Vec::new(), false);
    let work = async {
        let feed = async {
            if let (Some(mut pipe), Some(data)) = (stdin, input) {
                // A child that exits without reading its input is not an error.
                let _ = pipe.write_all(&data).await;
                let _ = pipe.shutdown().await;
            }
        };
        tokio::join!(
            read_capped(stdout, cap, &group, &mut out),
            read_capped(stderr, cap, &group, &mut err),
            feed
        );
        child.wait().await
    };
    // On timeout the partial output read so far is kept.
    let (timed_out, status) = match tokio::time::timeout(spec.wall, work).await {
        Ok(status) => (false, status.ok()),
        Err(_) => {
            group.kill();
            (true, child.wait().await.ok())
        }
    };
    drop(group);
    use std::os::unix::process::ExitStatusExt;
    Ok(ExecOutput {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        stdout: String::from_utf8_lossy(&out.0).into_owned(),
        stderr: String::from_utf8_lossy(&err.0).into_owned(),
        stdout_truncated: out.1,
        stderr_truncated: err.1,
        timed_out,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Reads up to `cap` bytes into `out`; past it, kills the group (the command is flooding)
/// and marks the output truncated.
async fn read_capped(
    pipe: Option<impl AsyncRead + Unpin>,
    cap: usize,
    group: &GroupGuard,
    out: &mut (Vec<u8>, bool),
) {
    let Some(mut pipe) = pipe else {
        return;
    };
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let room = cap.saturating_sub(out.0.len());
                if n > room {
                    out.0.extend_from_slice(&chunk[..room]);
                    out.1 = true;
                    group.kill();
                    return;
                }
                out.0.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

fn apply_limits(l: &ResourceLimits) -> std::io::Result<()> {
    let set = |r: Resource, soft: u64, hard: u64| {
        setrlimit(r, soft, hard).map_err(|e| std::io::Error::from_raw_os_error(e as i32))
    };
    set(Resource::RLIMIT_CORE, 0, 0)?;
    if let Some(cpu) = l.cpu_seconds {
        set(Resource::RLIMIT_CPU, cpu, cpu + 1)?;
    }
    if let Some(bytes) = l.address_space_bytes {
        set(Resource::RLIMIT_AS, bytes, bytes)?;
    }
    if let Some(bytes) = l.data_bytes {
        set(Resource::RLIMIT_DATA, bytes, bytes)?;
    }
    if let Some(bytes) = l.file_size_bytes {
        set(Resource::RLIMIT_FSIZE, bytes, bytes)?;
    }
    if let Some(n) = l.open_files {
        set(Resource::RLIMIT_NOFILE, n, n)?;
    }
    Ok(())
}
