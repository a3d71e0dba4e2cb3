//! Real `gathering` processes for tests that need them: crash tests kill them with SIGKILL.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// Output kept per stream: the last bytes, so a chatty process never blocks on a full pipe.
const KEEP: usize = 1 << 20;

/// A running `gathering <args>` process. Dropping it kills it. Its stdout and stderr are
/// drained continuously (the last megabyte of each is kept for `wait_output`).
pub struct GatheringProcess {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    drains: Vec<tokio::task::JoinHandle<()>>,
}

fn drain(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let mut kept = into.lock().unwrap_or_else(|p| p.into_inner());
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > KEEP {
                        let cut = kept.len() - KEEP;
                        kept.drain(..cut);
                    }
                }
            }
        }
    })
}

impl GatheringProcess {
    /// Starts `exe args…` with `env` added to a clean environment (PATH and HOME kept).
    pub fn spawn(exe: &Path, args: &[&str], env: &HashMap<String, String>) -> GatheringProcess {
        let mut cmd = Command::new(exe);
        cmd.args(args).env_clear();
        for keep in ["PATH", "HOME", "RUST_LOG", "RUST_BACKTRACE"] {
            if let Ok(v) = std::env::var(keep) {
                cmd.env(keep, v);
            }
        }
        cmd.envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
        let (stdout, stderr) = (
            Arc::<Mutex<Vec<u8>>>::default(),
            Arc::<Mutex<Vec<u8>>>::default(),
        );
        let mut drains = Vec::new();
        if let Some(out) = child.stdout.take() {
            drains.push(drain(out, stdout.clone()));
        }
        if let Some(err) = child.stderr.take() {
            drains.push(drain(err, stderr.clone()));
        }
        GatheringProcess {
            child,
            stdout,
            stderr,
            drains,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends a signal (SIGTERM for a graceful stop, SIGKILL for a crash).
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    }

    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
    }

    /// Waits for exit; returns the exit code (None when killed by a signal) and its output.
    pub async fn wait_output(mut self) -> (Option<i32>, String, String) {
        let status = self.child.wait().await.expect("wait for process");
        for d in self.drains.drain(..) {
            let _ = d.await;
        }
        let (out, err) = self.output_so_far();
        (status.code(), out, err)
    }

    /// What the process wrote to stdout and stderr so far.
    pub fn output_so_far(&self) -> (String, String) {
        let text = |b: &Arc<Mutex<Vec<u8>>>| {
            String::from_utf8_lossy(&b.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        };
        (text(&self.stdout), text(&self.stderr))
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}
